"""file: zones from RFC 1035 zone files (``file DBFILE [ZONES...] { fallthrough }``;
coredns/coredns plugin/file file.go ServeDNS, lookup.go).

A name outside its zones passes on; from CoreDNS 1.14 a ``file`` that is the last handler of
the block answers it REFUSED instead ("file acts as an authoritative server"). In its zone,
with the zone file read (the trace's FileReader, dnspython's zone parser): the records of the
name and type (NOERROR), NOERROR without records for a name that has other types or is an
empty non-terminal, a referral below a delegation, a ``*`` wildcard, else NXDOMAIN.
``fallthrough`` passes on a name without records (NXDOMAIN, or the empty-non-terminal
NOERROR) when it covers the name. Without the file the trace says the outcome depends on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from toolkit.corefile.document import Directive, ServerBlock
from toolkit.corefile.names import fqdn, in_zone
from toolkit.corefile.plugins.base import (
    Action,
    Context,
    Query,
    Step,
    at,
    falls_through_unless_known,
    passes,
)
from toolkit.corefile.plugins.fall import falls_through
from toolkit.corefile.plugins.zones import zones_of


def zones(d: Directive, block: ServerBlock) -> list[str]:
    """The zones after the file name, else the block's zones."""
    return zones_of(d, block, 1)


def _load(text: str, zone: str) -> Any | None:  # Any: a dns.zone.Zone (dnspython)
    import dns.exception
    import dns.zone

    try:
        return dns.zone.from_text(text, origin=zone, relativize=False, check_origin=False)
    except (dns.exception.DNSException, ValueError, UnicodeError):
        return None


def _rdtype(qtype: str) -> int | None:
    import dns.rdatatype

    try:
        return int(dns.rdatatype.from_text(qtype))
    except (dns.rdatatype.UnknownRdatatype, ValueError):
        return None


def lookup(z: Any, zone: str, name: str, qtype: str) -> str:  # Any: a dns.zone.Zone
    """NOERROR, NODATA, NXDOMAIN, DELEGATION or EMPTY (an empty non-terminal) for NAME."""
    import dns.name
    import dns.rdatatype

    target = dns.name.from_text(name)
    apex = dns.name.from_text(zone)
    for n in reversed(range(len(apex.labels), len(target.labels))):
        cut = dns.name.Name(target.labels[-n:]) if n else dns.name.root
        node = z.get_node(cut)
        if node is not None and cut != apex and node.get_rdataset(
                z.rdclass, dns.rdatatype.NS) is not None:
            return "DELEGATION"
    node = z.get_node(target)
    rdtype = _rdtype(qtype)
    if node is not None:
        if rdtype is not None and (node.get_rdataset(z.rdclass, rdtype) is not None or
                                   node.get_rdataset(z.rdclass, dns.rdatatype.CNAME) is not None):
            return "NOERROR"
        return "NODATA"
    if any(n.is_subdomain(target) and n != target for n in z.nodes):
        return "EMPTY"
    wild = dns.name.Name((b"*",) + target.labels[1:])
    if z.get_node(wild) is not None:
        return "NOERROR" if rdtype is not None and z.get_node(wild).get_rdataset(
            z.rdclass, rdtype) is not None else "NODATA"
    return "NXDOMAIN"


def _in_zone_step(d: Directive, query: Query, zone: str, ctx: Context) -> Step:
    path = d.args[0] if d.args else ""
    text = ctx.files(path) if path else None
    z = _load(text, zone) if text is not None else None
    if z is None:
        if falls_through(d, query.name):
            return falls_through_unless_known(
                query, d, f"file ({at(d)}) answers what {path} holds, falls through for the rest")
        return Step(action=Action.ANSWER, name=query.name, directive=d,
                    outcome=f"answered by file ({at(d)}) from {path} for zone {zone}")
    result = lookup(z, zone, query.name, query.qtype)
    if result in ("NXDOMAIN", "EMPTY") and falls_through(d, query.name):
        return passes(query, f"file ({at(d)}): {query.name} has no records in {path}: falls through")
    rcode = "NXDOMAIN" if result == "NXDOMAIN" else "NOERROR"
    return Step(action=Action.ANSWER, name=query.name, directive=d, rcode=rcode,
                outcome=f"answered by file ({at(d)}) from {path}: {result.lower()}")


def handler(directives: Sequence[Directive], query: Query, ctx: Context) -> Step:
    """The zone file of the most specific zone that holds the name (file.go lookupZone)."""
    best: tuple[str, Directive] | None = None
    for d in directives:
        for z in zones(d, ctx.block):
            if in_zone(query.name, z) and (best is None or len(fqdn(z)) > len(best[0])):
                best = (fqdn(z), d)
    if best is None:
        if ctx.last_handler == "file" and ctx.semantics.at_least("1.14.0"):
            d = directives[0]
            return Step(action=Action.ERROR, name=query.name, directive=d, rcode="REFUSED",
                        outcome=f"file ({at(d)}) is the block's last plugin and the name is not "
                                "in its zones: REFUSED (CoreDNS 1.14 file.go)")
        return passes(query)
    return _in_zone_step(best[1], query, best[0], ctx)
