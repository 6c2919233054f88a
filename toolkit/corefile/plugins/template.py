"""template: answers from Go templates (``template CLASS TYPE [ZONES...] { match REGEX... ;
answer ... ; rcode RCODE ; fallthrough [ZONES...] }``; coredns/coredns plugin/template).

All ``template`` lines of a block are one handler (template.go ServeDNS): a name outside
every template's zones passes on; otherwise each template in line order: another zone, class
or type lets the next template try; a regex (default ``.*``, RE2 as in Go) that matches
answers with the template's rcode (NOERROR unless ``rcode`` says otherwise); no regex
matching ends in SERVFAIL unless the template's ``fallthrough`` covers the name, which lets
the next template try. When no template answers, the query passes on.
"""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.corefile import regex
from toolkit.corefile.document import Directive
from toolkit.corefile.names import in_zone
from toolkit.corefile.plugins.base import Action, Context, Query, Step, at, passes
from toolkit.corefile.plugins.fall import falls_through
from toolkit.corefile.plugins.zones import zones_of

_RCODES = frozenset({"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                     "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"})


def _rcode(d: Directive) -> str:
    for sub in d.sub("rcode"):
        if sub.args and sub.args[0].upper() in _RCODES:
            return sub.args[0].upper()
    return "NOERROR"


def _matches(d: Directive, name: str) -> tuple[bool, str | None]:
    """(whether a ``match`` regex matches NAME, a note when one cannot be evaluated)."""
    for rx in [a for s in d.sub("match") for a in s.args] or [".*"]:
        try:
            if regex.search(rx, name) is not None:
                return True, None
        except regex.RegexError as exc:
            return False, f"template regex at {at(d)} not evaluated ({exc})"
    return False, None


def _answer(d: Directive, query: Query) -> Step:
    rcode = _rcode(d)
    return Step(action=Action.ANSWER if rcode != "SERVFAIL" else Action.ERROR, name=query.name,
                directive=d, rcode=rcode, outcome=f"answered by template ({at(d)}): {rcode}")


def handler(directives: Sequence[Directive], query: Query, ctx: Context) -> Step:
    """What template.go ServeDNS does with QUERY (see the module docstring)."""
    zoned = [(d, zones_of(d, ctx.block, 2)) for d in directives]
    if not any(in_zone(query.name, z) for _, zs in zoned for z in zs):
        return passes(query)
    notes: list[str] = []
    for d, zones in zoned:
        args = d.args
        cls = args[0].upper() if args else "ANY"
        typ = args[1].upper() if len(args) > 1 else "ANY"
        if not any(in_zone(query.name, z) for z in zones) or cls not in ("IN", "ANY") \
                or typ not in (query.qtype, "ANY"):
            continue
        matched, note = _matches(d, query.name)
        if note:
            notes.append(note)
        if matched:
            return _answer(d, query)
        if not falls_through(d, query.name):
            return Step(action=Action.ERROR, name=query.name, directive=d, rcode="SERVFAIL",
                        notes=tuple(notes),
                        outcome=(f"template ({at(d)}) owns the zone but no regex matches and it "
                                 "does not fall through: SERVFAIL"))
    return passes(query, *notes)
