"""What a plugin is asked and what it answers.

The trace walks a server block's plugins in execution order (``chain``) and asks each one,
with all its directives of the block, what it does with the query: a ``Step``. A plugin that
passes (not its zone, or it only notes or rewrites the name) lets the next one run; one that
answers, fails or forwards ends the block (CoreDNS's ``plugin.Handler.ServeDNS`` either
writes a response or calls ``NextOrFailure``).

``Semantics`` says which CoreDNS build the block runs on (plugins.versions: the plugin order
of its plugin.cfg, the plugins compiled in, behaviour that changed between releases).
``Context.files`` reads the files a plugin names (hosts files, zone files) when the caller
has them; a plugin whose file cannot be read says what it would do with each outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from toolkit.corefile.document import Directive, ServerBlock
from toolkit.corefile.plugins.versions import Build, coredns_build, parse_version


class Action(StrEnum):
    """What a plugin does with a query."""

    PASS = "pass"                # not for this name (perhaps noted): the next plugin runs
    REWRITE = "rewrite"          # changed the name; the next plugin runs with the new one
    FALLTHROUGH = "fallthrough"  # answers if it knows the name, else the next plugin runs
    ANSWER = "answer"            # answers here (records, or NXDOMAIN for its zone)
    ERROR = "error"              # owns the name but can only answer an error
    FORWARD = "forward"          # sends the query to upstreams
    DEAD_END = "dead-end"        # (a whole block) no plugin answers: CoreDNS returns SERVFAIL

    @property
    def final(self) -> bool:
        """Whether the query ends in this block here (no later plugin runs)."""
        return self in _FINAL


_FINAL = frozenset({Action.ANSWER, Action.ERROR, Action.FORWARD, Action.DEAD_END})


@dataclass(frozen=True)
class Query:
    """The question a plugin is asked about: the name (an FQDN, after earlier rewrites) and
    the query type."""

    name: str
    qtype: str


@dataclass(frozen=True, kw_only=True)
class Step:
    """What a plugin (or a whole server block) does with a query.

    ``name``: the name after it (rewrites change it); ``directive``: the directive that
    decided (for a final action); ``outcome``: the words for a final action; ``notes``: what
    the reader should know on the way; ``conditional``: plugins that answer first when they
    know the name (``hosts`` and ``kubernetes`` with ``fallthrough``); ``rcode``: the rcode
    of an answer decided here (None: it depends on data the trace cannot see: an upstream,
    the API server, a file not given)."""

    action: Action
    name: str
    directive: Directive | None = None
    outcome: str = ""
    notes: tuple[str, ...] = ()
    conditional: tuple[str, ...] = ()
    rcode: str | None = None
    qtype: str | None = None  # the query type after this step (a type rewrite), None: unchanged
    # An answer that is SERVFAIL unless a file the trace could not read lists the name.
    may_fail: bool = False
    # A rewrite whose answer keeps the rewritten question: clients drop it (see rewrite).
    unreverted: bool = False


@dataclass(frozen=True)
class Semantics:
    """Which CoreDNS build runs the Corefile (default: the newest pinned CoreDNS)."""

    build: Build = field(default_factory=coredns_build)

    @property
    def version(self) -> str:
        """The CoreDNS version (for node-cache: the CoreDNS it is built on)."""
        return self.build.version

    def order(self, plugin: str) -> int | None:
        """Position of PLUGIN in this CoreDNS's plugin.cfg (None: not listed)."""
        return self.build.index(plugin)

    def at_least(self, version: str) -> bool:
        """Whether this CoreDNS is VERSION or newer."""
        mine, other = parse_version(self.build.version), parse_version(version)
        return mine is not None and other is not None and mine >= other


CURRENT = Semantics()

# Reads a file a plugin names (a hosts file, a zone file): its text, or None when the trace
# was not given it.
FileReader = Callable[[str], "str | None"]


def no_files(path: str) -> str | None:  # noqa: ARG001 - the FileReader signature
    """The FileReader of a trace given no files."""
    return None


@dataclass(frozen=True)
class Context:
    """Where a plugin is asked: the server block it is in, on which CoreDNS, and the files
    the trace can read."""

    block: ServerBlock
    semantics: Semantics = CURRENT
    files: FileReader = no_files
    last_handler: str = ""  # the block's last plugin that handles queries (its Next is nil)


# A plugin: all its directives of one block (in line order), the query, where it runs.
Handler = Callable[[Sequence[Directive], Query, Context], Step]
# One directive of a plugin whose directives act one after the other (see ``each``).
DirectiveStep = Callable[[Directive, Query, Context], Step]


def each(step: DirectiveStep) -> Handler:
    """A plugin whose directives act one after another, each on the name the previous ones
    left: the first that decides ends the plugin; notes and conditional answerers add up."""

    def handler(directives: Sequence[Directive], query: Query, ctx: Context) -> Step:
        name = query.name
        notes: list[str] = []
        conditional: list[str] = []
        acted = Action.PASS
        for d in directives:
            s = step(d, Query(name, query.qtype), ctx)
            notes.extend(s.notes)
            conditional.extend(s.conditional)
            name = s.name
            if s.action.final:
                return Step(action=s.action, name=name, directive=s.directive, outcome=s.outcome,
                            notes=tuple(notes), conditional=tuple(conditional), rcode=s.rcode,
                            may_fail=s.may_fail)
            if s.action is not Action.PASS:
                acted = s.action
        return Step(action=acted, name=name, notes=tuple(notes), conditional=tuple(conditional))

    return handler


def passes(query: Query, *notes: str) -> Step:
    """The plugin lets the query through unchanged (with NOTES for the reader)."""
    return Step(action=Action.PASS, name=query.name, notes=notes)


def falls_through_unless_known(query: Query, d: Directive, note: str) -> Step:
    """D answers QUERY only if it knows the name, else passes it on (``fallthrough``): NOTE
    says so, and D is a conditional answerer of the hop."""
    return Step(action=Action.FALLTHROUGH, name=query.name, notes=(note,),
                conditional=(f"{d.name} ({at(d)})",))


def at(d: Directive) -> str:
    """Where D is: its line, and the file or snippet it was imported from."""
    return f"line {d.line}" + (f" of {d.imported_from}" if d.imported_from else "")
