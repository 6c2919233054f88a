"""auto: zones from every zone file in a directory whose name matches (coredns/coredns
plugin/auto); here the zones are its arguments or the block's."""

from __future__ import annotations

from toolkit.corefile.document import Directive, ServerBlock
from toolkit.corefile.plugins.base import Handler, each
from toolkit.corefile.plugins.zones import authoritative, zones_of


def zones(d: Directive, block: ServerBlock) -> list[str]:
    """Its zone arguments, else the block's zones."""
    return zones_of(d, block)


handler: Handler = each(authoritative(zones))
