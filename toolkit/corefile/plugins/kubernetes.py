"""kubernetes: the cluster zones from the API server (Services, Pods, Endpoints) and the
reverse zones of its CIDR arguments; with ``fallthrough`` the names it does not know go on
(coredns/coredns plugin/kubernetes). Whether a name exists is the API server's to say: the
trace gives no rcode for it (NOERROR for a Service or Pod it has, NXDOMAIN otherwise; SERVFAIL
while it has not synced with the API: handler.go)."""

from __future__ import annotations

from toolkit.corefile.document import Directive, ServerBlock
from toolkit.corefile.plugins.base import Handler, each
from toolkit.corefile.plugins.zones import authoritative, zones_of


def zones(d: Directive, block: ServerBlock) -> list[str]:
    """Its zone arguments (a CIDR is its reverse zones), else the block's zones."""
    return zones_of(d, block)


handler: Handler = each(authoritative(zones))
