"""Addresses a DNS answer should never point a pod at.

An A/AAAA record inside one of these ranges is wrong for an ordinary service name however
consistently the resolvers agree on it (RFC 6890 special-purpose registries, RFC 5737 /
RFC 3849 documentation ranges).
"""

from __future__ import annotations

import ipaddress

# NodeLocal DNSCache's well-known link-local listen addresses (kubespray: 169.254.25.10,
# upstream manifests: 169.254.20.10). They are legitimate as nameservers, not as answers.
NODELOCAL_ADDRESSES = frozenset({"169.254.20.10", "169.254.25.10"})

_RESERVED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "'this network' (RFC 1122): not a destination"),
    ("127.0.0.0/8", "loopback: the pod itself, not the service"),
    ("169.254.0.0/16", "link-local (RFC 3927): not routed"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (class E)"),
    ("255.255.255.255/32", "limited broadcast"),
    ("192.0.2.0/24", "documentation range TEST-NET-1 (RFC 5737)"),
    ("198.51.100.0/24", "documentation range TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation range TEST-NET-3 (RFC 5737)"),
    ("::/128", "unspecified address"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local: not routed"),
    ("ff00::/8", "multicast"),
    ("2001:db8::/32", "documentation range (RFC 3849)"),
)
_NETWORKS = tuple((ipaddress.ip_network(net), why) for net, why in _RESERVED)


def reserved_reason(address: str, *, name: str = "") -> str | None:
    """Why ``address`` is no place to send a pod's traffic, or None when it is fine.

    Loopback is accepted for names that are about the local host (``localhost``).
    """
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return None
    if str(ip) in NODELOCAL_ADDRESSES:
        return None
    bare = name.rstrip(".").lower()
    for net, why in _NETWORKS:
        if ip.version == net.version and ip in net:
            if ip.is_loopback and (bare == "localhost" or bare.startswith("localhost.")):
                return None
            return f"{ip} is {why}"
    return None
