"""Server block keys as CoreDNS reads them: ``[scheme://]zone-or-CIDR[:port]``, a CIDR
expanded to its reverse zones (plugin.Host.NormalizeExact)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DEFAULT_PORTS = {"dns": 53, "tls": 853, "quic": 853, "grpc": 443, "https": 443, "https3": 443}
_MAX_REVERSE_ZONES = 256


@dataclass(frozen=True, kw_only=True)
class ZoneAddress:
    """One server block key, normalized the way CoreDNS does: transport, zone FQDN, port."""

    key: str
    transport: str
    zone: str
    port: int | None
    network: str | None = None  # the CIDR when the key was reverse notation
    problem: str | None = None
    # CoreDNS's own error when it refuses the key at start (core/dnsserver/register.go
    # InspectServerBlocks returns plugin.SplitHostPort's error: "error inspecting server blocks")
    refused: str | None = None

    @property
    def label(self) -> str:
        """The key as CoreDNS shows it: [scheme://]zone[:port]."""
        scheme = "" if self.transport == "dns" else f"{self.transport}://"
        port = "" if self.port is None else f":{self.port}"
        return f"{scheme}{self.zone}{port}"


_SCHEMES = ("dns", "tls", "quic", "grpc", "https", "https3")


def _reverse_zones(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    step = 8 if net.version == 4 else 4
    boundary = -(-net.prefixlen // step) * step  # round up to the next octet/nibble boundary
    if boundary == net.prefixlen or boundary - net.prefixlen > 8:
        subnets = [net]
    else:
        subnets = list(net.subnets(new_prefix=boundary))
    if len(subnets) > _MAX_REVERSE_ZONES:
        subnets = [net]
    out = []
    for sub in subnets:
        labels = sub.network_address.reverse_pointer.split(".")
        if sub.version == 4:
            keep = sub.prefixlen // 8
            zone = ".".join(labels[4 - keep:]) if keep else "in-addr.arpa"
        else:
            keep = sub.prefixlen // 4
            zone = ".".join(labels[32 - keep:]) if keep else "ip6.arpa"
        out.append(zone.lower() + ".")
    return out


_KNOWN_SCHEMES = ("tls://", "dns://", "quic://", "grpc://", "https://", "unix://")


def _refused(key: str) -> str | None:
    """The error CoreDNS refuses KEY with (plugin/normalize.go SplitHostPort, after
    parse.Transport strips a known scheme): data must follow the last colon; a zone is at
    most 255 characters."""
    rest = key
    for scheme in _KNOWN_SCHEMES:
        if rest.startswith(scheme):
            rest = rest[len(scheme):]
            break
    if rest.endswith(":"):
        return f'expecting data after last colon: "{rest}"'
    host, _, port = rest.rpartition(":")
    if not (host and port.isascii() and port.isdigit()):
        host = rest
    if len(host) > 255:
        return f"specified zone is too long: {len(host)} > 255"
    return None


def normalize_address(key: str) -> list[ZoneAddress]:
    """A server block key as CoreDNS reads it: [scheme://]zone-or-CIDR[:port].

    Never raises: what CoreDNS would reject is kept with ``problem`` set (lint reports it).
    """
    raw = key
    refused = _refused(key)
    if refused is not None:
        return [ZoneAddress(key=raw, transport="dns", zone=key.lower(), port=None,
                            problem=refused, refused=refused)]
    transport = "dns"
    problem = None
    if "://" in key:
        scheme, _, key = key.partition("://")
        scheme = scheme.lower()
        if scheme in _SCHEMES:
            transport = scheme
        else:
            problem = f"unknown scheme {scheme}://"
            transport = scheme
    host, port_s = key, ""
    if key.startswith("["):
        end = key.find("]")
        if end != -1:
            host = key[1:end]
            rest = key[end + 1:]
            port_s = rest[1:] if rest.startswith(":") else ""
    elif key.count(":") == 1:
        host, _, port_s = key.partition(":")
    port: int | None = DEFAULT_PORTS.get(transport, 53)
    if port_s:
        if port_s.isascii() and port_s.isdigit() and int(port_s) <= 65535:
            port = int(port_s)
        elif port_s.startswith("{$") or port_s.startswith("{%"):
            port = None
            problem = problem or f"port is an environment placeholder ({port_s})"
        else:
            port = None
            problem = problem or f"invalid port {port_s!r}"
    if "/" in host:
        try:
            net = ipaddress.ip_network(host, strict=False)
        except ValueError:
            return [ZoneAddress(key=raw, transport=transport, zone=host.lower().rstrip(".") + ".",
                                port=port, network=None,
                                problem=problem or f"{host!r} is neither a zone nor a CIDR")]
        return [ZoneAddress(key=raw, transport=transport, zone=z, port=port, network=str(net),
                            problem=problem) for z in _reverse_zones(net)]
    zone = host.lower()
    if zone in ("", "."):
        zone = "."
    elif not zone.endswith("."):
        zone += "."
    if zone.startswith(".") and zone != ".":
        problem = problem or f"zone {host!r} starts with a dot"
    return [ZoneAddress(key=raw, transport=transport, zone=zone, port=port, network=None, problem=problem)]

