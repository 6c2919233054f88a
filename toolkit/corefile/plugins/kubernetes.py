"""kubernetes: the cluster zones from the API server (Services, Pods, Endpoints) and the
reverse zones of its CIDR arguments; with ``fallthrough`` the names it does not know go on
(coredns/coredns plugin/kubernetes)."""

from __future__ import annotations

from toolkit.corefile.document import Directive, ServerBlock
from toolkit.corefile.plugins.base import Handler, each
from toolkit.corefile.plugins.zones import authoritative, zones_of


def zones(d: Directive, block: ServerBlock) -> list[str]:
    """Its zone arguments (a CIDR is its reverse zones), else the block's zones."""
    return zones_of(d, block)


handler: Handler = each(authoritative(zones))
