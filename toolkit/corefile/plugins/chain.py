"""A server block's plugin chain: its plugins in execution order (plugin.cfg, never the
order they are written in), each asked in turn what it does with the query until one
answers, fails or forwards (core/dnsserver: the chain of plugin.Handler)."""

from __future__ import annotations

from toolkit.corefile.document import Directive, ServerBlock
from toolkit.corefile.plugins.base import (
    CURRENT,
    Action,
    Context,
    FileReader,
    Query,
    Semantics,
    Step,
    no_files,
)
from toolkit.corefile.plugins.registry import HANDLERS

# Plugins the build does not know run after all the others (they do nothing to a query here).
_UNORDERED = 10_000

NO_ANSWER = "no plugin answers: CoreDNS returns SERVFAIL"
NO_HANDLER = ("the block has no plugin that handles queries: CoreDNS answers REFUSED "
              "(core/dnsserver/server.go: zone defined, but has not got any plugins)")

# Plugins that only configure the server and add no handler to the chain: a block of only
# these has a nil plugin chain (each plugin's setup.go never calls AddPlugin).
SETUP_ONLY = frozenset({
    "root", "bind", "debug", "health", "ready", "reload", "pprof", "tls", "timeouts",
    "multisocket", "proxyproto", "quic", "grpc_server", "https", "https3", "on", "view",
})


def chain(block: ServerBlock, semantics: Semantics = CURRENT
          ) -> list[tuple[str, tuple[Directive, ...]]]:
    """BLOCK's plugins in execution order, each with its directives in line order."""
    def key(d: Directive) -> tuple[int, int]:
        i = semantics.order(d.name)
        return (_UNORDERED if i is None else i, d.line)

    groups: dict[str, list[Directive]] = {}
    for d in sorted(block.directives, key=key):
        groups.setdefault(d.name, []).append(d)
    return [(name, tuple(ds)) for name, ds in groups.items()]


def walk_block(block: ServerBlock, query: Query, semantics: Semantics = CURRENT,
               files: FileReader = no_files) -> Step:
    """What BLOCK does with QUERY: the step of the plugin that decides (with the notes and
    conditional answerers of the plugins before it), REFUSED for a block without handlers,
    or DEAD_END (SERVFAIL) when no plugin answers."""
    if all(d.name in SETUP_ONLY for d in block.directives):
        return Step(action=Action.ERROR, name=query.name, outcome=NO_HANDLER, rcode="REFUSED")
    plugins = chain(block, semantics)
    last = next((p for p, _ in reversed(plugins) if p not in SETUP_ONLY), "")
    ctx = Context(block, semantics, files, last)
    name, qtype = query.name, query.qtype
    notes: list[str] = []
    conditional: list[str] = []
    unreverted = False
    for plugin, directives in plugins:
        handler = HANDLERS.get(plugin)
        if handler is None:
            continue
        step = handler(directives, Query(name, qtype), ctx)
        name, qtype = step.name, step.qtype or qtype
        unreverted = unreverted or step.unreverted
        notes.extend(step.notes)
        conditional.extend(step.conditional)
        if step.action.final:
            return Step(action=step.action, name=name, directive=step.directive,
                        outcome=step.outcome, notes=tuple(notes), conditional=tuple(conditional),
                        rcode=step.rcode, qtype=qtype, may_fail=step.may_fail,
                        unreverted=unreverted)
    return Step(action=Action.DEAD_END, name=name, outcome=NO_ANSWER, notes=tuple(notes),
                conditional=tuple(conditional), rcode="SERVFAIL", qtype=qtype,
                unreverted=unreverted)
