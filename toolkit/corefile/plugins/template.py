"""template: answers names of its zones that match one of its regexes, from a Go template
(``template CLASS TYPE [ZONES...] { match REGEX... ; answer ... ; fallthrough }``;
coredns/coredns plugin/template). A name of its zones that no regex matches gets an error
answer unless ``fallthrough`` covers it."""

from __future__ import annotations

import re

from toolkit.corefile.document import Directive
from toolkit.corefile.names import fqdn, in_zone
from toolkit.corefile.plugins.base import Action, Context, Handler, Query, Step, at, each, passes
from toolkit.corefile.plugins.fall import falls_through


def _matches(d: Directive, name: str) -> tuple[bool, str | None]:
    """(whether a ``match`` regex matches NAME, a note when one cannot be evaluated: then it
    is taken to match)."""
    for rx in [a for s in d.sub("match") for a in s.args] or [".*"]:
        try:
            if re.search(rx, fqdn(name)):
                return True, None
        except re.error:
            return True, f"template regex at {at(d)} not evaluated"
    return False, None


def step(d: Directive, query: Query, ctx: Context) -> Step:
    """Answer when class, type, zone and a regex match; an error answer for a name of its
    zones that no regex matches, unless it falls through."""
    args = d.args
    cls = args[0].upper() if args else "ANY"
    typ = args[1].upper() if len(args) > 1 else "ANY"
    zones = [fqdn(z) for z in args[2:]] or list(ctx.block.zones)
    if cls not in ("IN", "ANY") or typ not in (query.qtype, "ANY"):
        return passes(query)
    if not any(in_zone(query.name, z) for z in zones):
        return passes(query)
    matched, note = _matches(d, query.name)
    if matched:
        return Step(action=Action.ANSWER, name=query.name, directive=d,
                    outcome=f"answered by template ({at(d)})", notes=(note,) if note else ())
    if not falls_through(d, query.name):
        return Step(action=Action.ERROR, name=query.name, directive=d,
                    outcome=(f"template ({at(d)}) owns the zone but no regex matches and it does "
                             "not fall through: error answer"))
    return passes(query)


handler: Handler = each(step)
