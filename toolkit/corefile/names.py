"""Names, zones and addresses as CoreDNS compares them: lower-case FQDNs, zone membership
by whole labels, the address a reverse (PTR) name stands for."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def fqdn(name: str) -> str:
    """NAME lower-cased with its trailing dot ('' and '.' are the root)."""
    n = name.strip().lower()
    if n in ("", "."):
        return "."
    return n if n.endswith(".") else n + "."


def in_zone(name: str, zone: str) -> bool:
    """Whether NAME is ZONE or under it (whole labels: a.example.org is in example.org,
    aexample.org is not)."""
    name, zone = fqdn(name), fqdn(zone)
    return zone == "." or name == zone or name.endswith("." + zone)


def reverse_ip(name: str) -> IPAddress | None:
    """The address a full reverse name stands for (4.3.2.1.in-addr.arpa. -> 1.2.3.4; 32
    nibbles under ip6.arpa.), None for anything else."""
    n = fqdn(name)
    try:
        if n.endswith(".in-addr.arpa."):
            parts = n[: -len(".in-addr.arpa.")].split(".")
            if len(parts) == 4:
                return ipaddress.ip_address(".".join(reversed(parts)))
        if n.endswith(".ip6.arpa."):
            nibbles = n[: -len(".ip6.arpa.")].split(".")
            if len(nibbles) == 32:
                h = "".join(reversed(nibbles))
                return ipaddress.ip_address(":".join(h[i:i + 4] for i in range(0, 32, 4)))
    except ValueError:
        return None
    return None


def same_ip(a: str, b: str) -> bool:
    """Whether A and B are the same address (B may carry a %zone); text equality when either
    is not an address."""
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b.split("%")[0])
    except ValueError:
        return a == b


def is_private(ip: str) -> bool:
    """A private (RFC 1918, ULA...) address that is not loopback: where a cluster's Services
    live."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a.is_private and not a.is_loopback
