"""hosts: answers from a hosts file and inline entries (``hosts [FILE [ZONES...]] { IP
NAME...; fallthrough }``; coredns/coredns plugin/hosts). A trace sees the inline entries,
not the file: a name of its zones that is not inline is answered from the file, or passed on
when ``fallthrough`` covers it."""

from __future__ import annotations

from toolkit.corefile.document import Directive
from toolkit.corefile.names import fqdn, in_zone
from toolkit.corefile.plugins.base import (
    Action,
    Context,
    Handler,
    Query,
    Step,
    at,
    each,
    falls_through_unless_known,
    passes,
)
from toolkit.corefile.plugins.fall import falls_through

# Options of the hosts block; every other line is an inline entry "IP NAME...".
_OPTIONS = frozenset({"fallthrough", "ttl", "reload", "no_reverse"})


def inline_entries(d: Directive) -> dict[str, list[str]]:
    """The inline entries of D's block: name (FQDN) -> the addresses given for it."""
    entries: dict[str, list[str]] = {}
    for sub in d.block:
        if sub.name in _OPTIONS:
            continue
        for h in sub.args:
            entries.setdefault(fqdn(h), []).append(sub.name)
    return entries


def step(d: Directive, query: Query, ctx: Context) -> Step:
    """An inline entry answers; else the file answers or NXDOMAIN, unless it falls through
    (then the file answers only the names it lists)."""
    entries = inline_entries(d)
    zones = [fqdn(z) for z in d.args[1:]] or list(ctx.block.zones)
    if not any(in_zone(query.name, z) for z in zones):
        return passes(query)
    known = entries.get(fqdn(query.name))
    if known is not None:
        return Step(action=Action.ANSWER, name=query.name, directive=d,
                    outcome=f"answered by hosts ({at(d)}): {', '.join(known)}")
    hosts_file = d.args[0] if d.args else "/etc/hosts"
    if falls_through(d, query.name):
        return falls_through_unless_known(
            query, d, f"hosts ({at(d)}) answers if {hosts_file} lists the name, else falls through")
    return Step(action=Action.ANSWER, name=query.name, directive=d,
                outcome=(f"hosts ({at(d)}) owns the zone without fallthrough: answers from "
                         f"{hosts_file} or NXDOMAIN"))


handler: Handler = each(step)
