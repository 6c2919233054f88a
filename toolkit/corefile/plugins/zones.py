"""The zones a plugin serves (its arguments, else the server block's) and the step of a
plugin that is authoritative for them: it answers names there, or passes on those its
``fallthrough`` covers (CoreDNS's plugin.Zones and plugin/pkg/fall)."""

from __future__ import annotations

from collections.abc import Callable

from toolkit.corefile.addresses import normalize_address
from toolkit.corefile.document import Directive, ServerBlock
from toolkit.corefile.names import fqdn, in_zone
from toolkit.corefile.plugins.base import (
    Action,
    Context,
    DirectiveStep,
    Query,
    Step,
    at,
    falls_through_unless_known,
    passes,
)
from toolkit.corefile.plugins.fall import falls_through

ZonesOf = Callable[[Directive, ServerBlock], list[str]]


def zones_of(d: Directive, block: ServerBlock, skip_args: int = 0) -> list[str]:
    """The zones in D's arguments after the first SKIP_ARGS, else the block's zones.

    A CIDR argument (kubernetes cluster.local 10.0.0.0/16) is its reverse zone(s), as in a
    server block key (plugin.Host.NormalizeExact)."""
    zones: list[str] = []
    for a in d.args[skip_args:]:
        if a.startswith("{"):
            continue
        if "/" in a:
            zones.extend(z.zone for z in normalize_address(a))
        else:
            zones.append(fqdn(a))
    return zones or list(block.zones)


def authoritative(zones: ZonesOf) -> DirectiveStep:
    """The step of a plugin that answers the names of ZONES: the answer, or (with
    ``fallthrough``) an answer only for the names it knows."""

    def step(d: Directive, query: Query, ctx: Context) -> Step:
        served = zones(d, ctx.block)
        if not any(in_zone(query.name, z) for z in served):
            return passes(query)
        if falls_through(d, query.name):
            return falls_through_unless_known(
                query, d, f"{d.name} ({at(d)}) answers names it knows, falls through for the others")
        return Step(action=Action.ANSWER, name=query.name, directive=d,
                    outcome=f"answered by {d.name} ({at(d)}) for zone(s) {' '.join(served)}")

    return step
