"""Wildcard probes: one query for a name nobody created, to learn whether a domain (or the
resolver itself) answers *any* name under it.

A wildcard record (``*.example.net``, RFC 4592) answers every name under its domain that does
not exist; a resolver that rewrites NXDOMAIN (a captive portal, some ISP and enterprise
resolvers) answers every name that does not exist anywhere. Either way a name in the pod's
search list can answer for a name the application meant absolutely. The probe name is a
random label under the domain, spelled so that whoever reads a server's query log can tell
what it was: ``podtriage-wildcard-probe-<hex>``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from toolkit.deadline import Deadline
from toolkit.dns.query import QueryResult, Transport, query

PROBE_LABEL = "podtriage-wildcard-probe"
ROOT = "."


def probe_name(domain: str) -> str | None:
    """A random absolute name directly under ``domain`` ("." for the root); None when no name
    can be made under it (a search domain read from a file may be anything)."""
    import dns.exception
    import dns.name

    label = f"{PROBE_LABEL}-{secrets.token_hex(4)}"
    base = domain.strip(".")
    for first in (label, secrets.token_hex(4)):  # the short label when the long one does not fit
        name = f"{first}.{base}." if base else f"{first}."
        try:
            dns.name.from_text(name).to_wire()  # labels <= 63 octets, the name <= 255 (RFC 1035 2.3.4)
        except (dns.exception.DNSException, UnicodeError, ValueError):
            continue
        return name
    return None


@dataclass(frozen=True, kw_only=True)
class WildcardProbe:
    """What one server answered for a random name under ``domain``."""

    domain: str  # the domain probed, absolute ("." for the root: does the resolver rewrite NXDOMAIN?)
    result: QueryResult  # the query, its qname the random name

    __json_properties__ = ("qname", "resolves", "addresses")

    @property
    def qname(self) -> str:
        """The random name asked."""
        return self.result.qname

    @property
    def resolves(self) -> bool:
        """The name nobody created has records: a wildcard (or a rewriting resolver) answered."""
        return self.result.has_answers

    @property
    def addresses(self) -> tuple[str, ...]:
        """What it resolves to, sorted."""
        return tuple(sorted(self.result.answers))

    def describe(self) -> str:
        """One evidence line, labelled as the probe it is."""
        where = "the root" if self.domain == ROOT else self.domain.rstrip(".")
        got = ", ".join(self.addresses) if self.resolves else self.result.outcome()
        return (f"wildcard probe (a random name nobody created, under {where}): {self.qname} "
                f"{self.result.qtype} via {self.result.server}/{self.result.transport} -> {got}")


def probe_domain(server: str, domain: str, deadline: Deadline, timeout: float, *, port: int = 53,
                 transport: Transport = Transport.UDP, qtype: str = "A") -> WildcardProbe | None:
    """One query for a random name under ``domain`` (absolute, "." for the root); None when
    no name can be made under that domain."""
    absolute = domain if domain.endswith(".") else domain + "."
    qname = probe_name(absolute)
    if qname is None:
        return None
    res = query(server, qname, qtype, transport, deadline.timeout(timeout), port=port)
    return WildcardProbe(domain=absolute, result=res)
