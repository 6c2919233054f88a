"""file: one zone from an RFC 1035 zone file (``file DBFILE [ZONES...]``; coredns/coredns
plugin/file)."""

from __future__ import annotations

from toolkit.corefile.document import Directive, ServerBlock
from toolkit.corefile.plugins.base import Handler, each
from toolkit.corefile.plugins.zones import authoritative, zones_of


def zones(d: Directive, block: ServerBlock) -> list[str]:
    """The zones after the file name, else the block's zones."""
    return zones_of(d, block, 1)


handler: Handler = each(authoritative(zones))
