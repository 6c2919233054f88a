"""Which server block of a Corefile receives a query: the longest zone match among the
blocks that listen on the query's port, transport and (``bind``) address
(core/dnsserver/server.go ServeDNS walks the name's labels from the full name down to '.')."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import replace

from toolkit.corefile.addresses import ZoneAddress
from toolkit.corefile.document import Corefile, ServerBlock
from toolkit.corefile.names import in_zone, reverse_ip, same_ip
from toolkit.corefile.roles import PILLAR_RE


def _listens(a: ZoneAddress, name: str, port: int | None, transport: str) -> bool:
    """Whether key A takes NAME arriving on PORT over TRANSPORT (plain DNS keys take UDP and
    TCP; a reverse key written as a CIDR only the addresses inside it)."""
    if port is not None and a.port is not None and a.port != port:
        return False
    if transport and a.transport != transport and not (transport in ("udp", "tcp", "dns")
                                                        and a.transport == "dns"):
        return False
    if not in_zone(name, a.zone):
        return False
    if a.network:
        try:
            ip = reverse_ip(name)
            if ip is not None and ip not in ipaddress.ip_network(a.network):
                return False
        except ValueError:
            pass
    return True


def select_block(cf: Corefile, name: str, port: int | None = 53, address: str | None = None,
                 transport: str = "dns", aliases: Mapping[str, str] | None = None
                 ) -> tuple[ServerBlock, str] | None:
    """The server block (and its zone) that answers NAME on PORT/ADDRESS: longest zone match.

    ``aliases`` maps placeholder zones (``__pillar__dns__domain__.``) to what fills them."""
    best: tuple[int, ServerBlock, str] | None = None
    for b in cf.blocks:
        # A bind to a placeholder (__PILLAR__LOCAL__DNS__) says nothing about the address.
        bind = tuple(x for x in b.bind if not PILLAR_RE.fullmatch(x))
        if address and bind and not any(same_ip(address, x) for x in bind):
            continue
        for a in b.addresses:
            if aliases and a.zone in aliases:
                a = replace(a, zone=aliases[a.zone])
            if not _listens(a, name, port, transport):
                continue
            depth = 0 if a.zone == "." else a.zone.count(".")
            if best is None or depth > best[0]:
                best = (depth, b, a.zone)
    return None if best is None else (best[1], best[2])


def block_file_line(cf: Corefile, block: ServerBlock) -> int | None:
    """File line of BLOCK; None for a block spliced in from another file (custom imports)."""
    return None if block.imported_from else cf.file_line(block.line)


def listens(cf: Corefile, port: int | None, address: str | None) -> bool:
    """Whether some block of CF listens on PORT (and ADDRESS, by ``bind``): when none does,
    nothing answers there at all (no REFUSED: no socket)."""
    for b in cf.blocks:
        bind = tuple(x for x in b.bind if not PILLAR_RE.fullmatch(x))
        if address and bind and not any(same_ip(address, x) for x in bind):
            continue
        if any(port is None or a.port is None or a.port == port for a in b.addresses):
            return True
    return False
