"""The ``fallthrough [ZONES...]`` option many plugins share (CoreDNS's plugin/pkg/fall):
when the plugin has no answer for a name in those zones (all zones without arguments), the
query goes on to the next plugin instead of getting NXDOMAIN."""

from __future__ import annotations

from toolkit.corefile.document import Directive
from toolkit.corefile.names import in_zone


def falls_through(d: Directive, name: str) -> bool:
    """Whether D passes NAME on when it has no answer for it.

    Only the last ``fallthrough`` line counts: each one calls fall.F.SetZonesFromArgs, which
    replaces the zones the previous one set (coredns/coredns plugin/kubernetes/setup.go,
    plugin/pkg/fall/fall.go; hosts, file, template... parse it the same way)."""
    subs = [sub for sub in d.block if sub.name == "fallthrough"]
    if not subs:
        return False
    last = subs[-1]
    return not last.args or any(in_zone(name, z) for z in last.args)
