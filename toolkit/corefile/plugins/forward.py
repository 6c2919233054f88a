"""forward (and grpc, and proxy, forward's predecessor removed in CoreDNS 1.6, with the same
``FROM TO...`` syntax): sends the names under FROM, except the ``except`` zones, to upstreams
(coredns/coredns plugin/forward, plugin/grpc). What an upstream written in the Corefile is,
and the config's default upstream (the root block's forward)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from toolkit.corefile.document import Corefile, Directive, ServerBlock
from toolkit.corefile.names import fqdn, in_zone
from toolkit.corefile.plugins.base import Action, Context, Handler, Query, Step, at, each, passes
from toolkit.corefile.roles import CLUSTER_DNS_PILLARS, CorefileRole, RoleAssignment, pillar_note

# Plugins that take FROM TO... and send queries on (proxy: removed in CoreDNS 1.6).
FORWARD_PLUGINS = frozenset({"forward", "grpc", "proxy"})
_CACHE_ROLES = (CorefileRole.NODE_CACHE, CorefileRole.NODE_CACHE_SECONDARY)


class TargetKind(StrEnum):
    """What an upstream written in the Corefile is (and, for a hop, where it leads)."""

    IP = "ip"                          # an address: a DNS server
    FILE = "file"                      # a resolv.conf-style file of nameservers
    PLACEHOLDER = "placeholder"        # __PILLAR__ or {$ENV}: not an address yet
    NOT_AN_ADDRESS = "not-an-address"  # a hostname or a masked value
    COREFILE = "corefile"              # (a hop) another given Corefile listens there
    NONE = "none"                      # (a hop) no upstream given


class UpstreamTransport(StrEnum):
    """How a query travels to the next server."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"
    GRPC = "grpc"
    HTTPS = "https"


# Schemes of an upstream that are a transport of their own.
_SCHEME_TRANSPORTS = {"tls": UpstreamTransport.TLS, "grpc": UpstreamTransport.GRPC, "https": UpstreamTransport.HTTPS}


@dataclass(frozen=True, kw_only=True)
class Target:
    """One upstream of ``forward``/``grpc``: as written, and what it is."""

    raw: str
    scheme: str             # as written: dns, tls, grpc, file...
    host: str
    port: int | None
    kind: TargetKind
    note: str = ""

    @property
    def address(self) -> str | None:
        """The address, when it is one."""
        return self.host if self.kind is TargetKind.IP else None

    @property
    def label(self) -> str:
        """How to show it: [scheme://]address:port for an address, else as written."""
        if self.kind is not TargetKind.IP:
            return self.raw
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "" if self.scheme == "dns" else f"{self.scheme}://"
        return f"{scheme}{host}:{self.port}"


def _host_port(rest: str, default_port: int) -> tuple[str, int]:
    """HOST[:PORT] or [HOST]:PORT, with DEFAULT_PORT when none is given."""
    host, port = rest, default_port
    if rest.startswith("["):
        end = rest.find("]")
        if end != -1:
            host = rest[1:end]
            tail = rest[end + 1:]
            if tail.startswith(":") and tail[1:].isascii() and tail[1:].isdigit():
                port = int(tail[1:])
    elif rest.count(":") == 1:
        h, _, p = rest.partition(":")
        if p.isascii() and p.isdigit():
            host, port = h, int(p)
    return host, port


def parse_target(raw: str, plugin: str = "forward") -> Target:
    """One upstream as ``forward``/``grpc`` reads it: [scheme://]address[:port], a file, or
    a placeholder."""
    scheme = "grpc" if plugin == "grpc" else "dns"
    rest = raw
    if "://" in raw:
        s, _, rest = raw.partition("://")
        scheme = s.lower()
    if rest.startswith("/") or rest.startswith("./"):
        return Target(raw=raw, scheme="file", host=rest, port=None, kind=TargetKind.FILE,
                      note="the nameservers listed in this resolv.conf-style file (for "
                           "/etc/resolv.conf: the CoreDNS pod's, i.e. the node's resolver with "
                           "dnsPolicy Default)")
    note = pillar_note(rest)
    if note is not None:
        return Target(raw=raw, scheme=scheme, host=rest, port=None, kind=TargetKind.PLACEHOLDER,
                      note=f"not an address yet: {note}")
    if "{$" in rest or "{%" in rest:
        return Target(raw=raw, scheme=scheme, host=rest, port=None, kind=TargetKind.PLACEHOLDER,
                      note="not an address: an unresolved environment placeholder")
    host, port = _host_port(rest, {"tls": 853, "grpc": 443}.get(scheme, 53))
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
        return Target(raw=raw, scheme=scheme, host=str(ip), port=port, kind=TargetKind.IP)
    except ValueError:
        return Target(raw=raw, scheme=scheme, host=host, port=port,
                      kind=TargetKind.NOT_AN_ADDRESS,
                      note="not an address: masked or a hostname (CoreDNS forward needs an IP)")


@dataclass(frozen=True, kw_only=True)
class ForwardSpec:
    """One ``forward``/``grpc``/``proxy`` directive: what it forwards where, and how."""

    plugin: str
    from_zone: str
    targets: tuple[Target, ...]
    excepts: tuple[str, ...]
    force_tcp: bool
    prefer_udp: bool
    policy: str | None
    line: int

    def transport(self, incoming: UpstreamTransport, target: Target | None = None) -> UpstreamTransport:
        """How a query that came in over INCOMING goes to TARGET."""
        if target is not None and target.scheme in _SCHEME_TRANSPORTS:
            return _SCHEME_TRANSPORTS[target.scheme]
        if self.force_tcp:
            return UpstreamTransport.TCP
        if self.prefer_udp:
            return UpstreamTransport.UDP
        return incoming

    @property
    def raw_targets(self) -> frozenset[str]:
        """The upstreams as written (to compare two forwards)."""
        return frozenset(t.raw for t in self.targets)


def forward_spec(d: Directive) -> ForwardSpec:
    """What D forwards where: ``forward FROM TO... { except ZONES; force_tcp; ... }``."""
    args = d.args
    from_zone = fqdn(args[0]) if args else "."
    targets = tuple(parse_target(a, d.name) for a in args[1:])
    excepts: list[str] = []
    policy = None
    for sub in d.block:
        if sub.name == "except":
            excepts.extend(fqdn(a) for a in sub.args)
        elif sub.name == "policy" and sub.args:
            policy = sub.args[0]
    return ForwardSpec(plugin=d.name, from_zone=from_zone, targets=targets,
                       excepts=tuple(excepts), force_tcp=d.has("force_tcp"),
                       prefer_udp=d.has("prefer_udp"), policy=policy, line=d.line)


def default_forward(cf: Corefile, port: int | None) -> ForwardSpec | None:
    """The forward of the root ('.') block on PORT: the config's default upstream."""
    for b in cf.blocks:
        if any(a.zone == "." and (port is None or a.port == port) for a in b.addresses):
            for d in b.directives:
                if d.name in ("forward", "grpc"):
                    spec = forward_spec(d)
                    if spec.from_zone == ".":
                        return spec
    return None


def to_cluster_dns(role: RoleAssignment | None, spec: ForwardSpec) -> bool:
    """A node cache sending a zone to the cluster DNS Service: NodeLocal DNSCache's design
    (cluster/addons/dns/nodelocaldns/nodelocaldns.yaml and kubespray
    nodelocaldns-config.yml.j2 forward the cluster domain and the reverse zones to
    __PILLAR__CLUSTER__DNS__ / the CoreDNS Service), not a stub forward."""
    if role is None or role.role not in _CACHE_ROLES:
        return False
    raws = spec.raw_targets
    return bool(raws) and raws <= set(role.cluster_dns_targets) | CLUSTER_DNS_PILLARS


def is_stub(cf: Corefile, block: ServerBlock, zone: str, spec: ForwardSpec,
            role: RoleAssignment | None = None) -> bool:
    """A non-root block that forwards its zone elsewhere than the config's default upstream.
    Not for a node cache sending a cluster zone to the cluster DNS (see to_cluster_dns)."""
    if to_cluster_dns(role, spec):
        return False
    port = next((a.port for a in block.addresses if a.zone == zone), None)
    default = default_forward(cf, port)
    if default is None:
        return False
    return default.raw_targets != spec.raw_targets


def step(d: Directive, query: Query, ctx: Context) -> Step:  # noqa: ARG001 - the Handler signature
    """Forward the names under FROM that no ``except`` zone covers."""
    spec = forward_spec(d)
    if not in_zone(query.name, spec.from_zone):
        return passes(query)
    if any(in_zone(query.name, e) for e in spec.excepts):
        return passes(query, f"{d.name} ({at(d)}) excepts this name")
    return Step(action=Action.FORWARD, name=query.name, directive=d,
                outcome=f"forwarded by {d.name} ({at(d)})")


handler: Handler = each(step)
