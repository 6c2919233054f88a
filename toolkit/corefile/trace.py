"""Which server block and plugin answer a name, and where the query goes next.

``trace_name`` walks one or more Corefiles the way CoreDNS routes a query: the server block
with the longest zone match on the port (and ``bind`` address) the query arrives on, then the
block's plugins in CoreDNS's execution order (plugin.cfg, not file order): ``rewrite`` changes
the name, ``template``/``hosts``/``kubernetes``/``file``... answer for their zones unless they
fall through, ``forward``/``grpc`` send the query on. A forward target that is the listen
address of another given Corefile (``bind``, ``--service-ip``, or the CoreDNS-Service
heuristic) continues the walk there: pod -> NodeLocal -> CoreDNS -> final upstream.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolkit.model import Report

from toolkit.corefile.parser import Corefile, Directive, ServerBlock, normalize_address
from toolkit.corefile.plugins import order_index
from toolkit.corefile.roles import (
    CLUSTER_DNS_PILLARS,
    DOMAIN_PILLAR,
    PILLAR_RE,
    Assembly,
    CorefileRole,
    RoleAssignment,
    assemble,
    pillar_note,
    role_json,
    role_rows,
)

_CACHE_ROLES = (CorefileRole.NODE_CACHE, CorefileRole.NODE_CACHE_SECONDARY)

MAX_HOPS = 8


# --- forward targets -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One upstream of ``forward``/``grpc``: as written, and what it is."""

    raw: str
    scheme: str             # dns, tls, grpc, file
    host: str
    port: int | None
    kind: str               # ip, file, placeholder, not-an-address
    note: str = ""

    @property
    def address(self) -> str | None:
        return self.host if self.kind == "ip" else None

    @property
    def label(self) -> str:
        if self.kind != "ip":
            return self.raw
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "" if self.scheme == "dns" else f"{self.scheme}://"
        return f"{scheme}{host}:{self.port}"


def parse_target(raw: str, plugin: str = "forward") -> Target:
    scheme = "grpc" if plugin == "grpc" else "dns"
    rest = raw
    if "://" in raw:
        s, _, rest = raw.partition("://")
        scheme = s.lower()
    if rest.startswith("/") or rest.startswith("./"):
        return Target(raw, "file", rest, None, "file",
                      "the nameservers listed in this resolv.conf-style file (for /etc/resolv.conf: "
                      "the CoreDNS pod's, i.e. the node's resolver with dnsPolicy Default)")
    note = pillar_note(rest)
    if note is not None:
        return Target(raw, scheme, rest, None, "placeholder", f"not an address yet: {note}")
    if "{$" in rest or "{%" in rest:
        return Target(raw, scheme, rest, None, "placeholder",
                      "not an address: an unresolved environment placeholder")
    default_port = {"tls": 853, "grpc": 443}.get(scheme, 53)
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
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
        return Target(raw, scheme, str(ip), port, "ip")
    except ValueError:
        return Target(raw, scheme, host, port, "not-an-address",
                      "not an address: masked or a hostname (CoreDNS forward needs an IP)")


@dataclass(frozen=True)
class ForwardSpec:
    plugin: str
    from_zone: str
    targets: tuple[Target, ...]
    excepts: tuple[str, ...]
    force_tcp: bool
    prefer_udp: bool
    policy: str | None
    line: int

    def transport(self, incoming: str, target: Target | None = None) -> str:
        if target is not None and target.scheme in ("tls", "grpc", "https"):
            return target.scheme
        if self.force_tcp:
            return "tcp"
        if self.prefer_udp:
            return "udp"
        return incoming


def forward_spec(d: Directive) -> ForwardSpec:
    args = list(d.args)
    from_zone = fqdn(args[0]) if args else "."
    targets = tuple(parse_target(a, d.name) for a in args[1:])
    excepts: list[str] = []
    policy = None
    for sub in d.block:
        if sub.name == "except":
            excepts.extend(fqdn(a) for a in sub.args)
        elif sub.name == "policy" and sub.args:
            policy = sub.args[0]
    return ForwardSpec(d.name, from_zone, targets, tuple(excepts), d.has("force_tcp"),
                       d.has("prefer_udp"), policy, d.line)


# --- names and zones -------------------------------------------------------------------------


def fqdn(name: str) -> str:
    n = name.strip().lower()
    if n in ("", "."):
        return "."
    return n if n.endswith(".") else n + "."


def in_zone(name: str, zone: str) -> bool:
    name, zone = fqdn(name), fqdn(zone)
    return zone == "." or name == zone or name.endswith("." + zone)


def _zones_of(d: Directive, block: ServerBlock, skip_args: int = 0) -> list[str]:
    # A CIDR argument (kubernetes cluster.local 10.0.0.0/16) is its reverse zone(s), as in a
    # server block key (plugin.Host.NormalizeExact).
    zones: list[str] = []
    for a in d.args[skip_args:]:
        if a.startswith("{"):
            continue
        if "/" in a:
            zones.extend(z.zone for z in normalize_address(a))
        else:
            zones.append(fqdn(a))
    return zones or list(block.zones)


def _at(d: Directive) -> str:
    """Where D is: its line, and the file or snippet it was imported from."""
    return f"line {d.line}" + (f" of {d.imported_from}" if d.imported_from else "")


def _fallthrough(d: Directive, name: str) -> bool:
    # Only the last `fallthrough` line counts: each one calls fall.F.SetZonesFromArgs, which
    # replaces the zones the previous one set (coredns/coredns plugin/kubernetes/setup.go,
    # plugin/pkg/fall/fall.go; hosts, file, template... parse it the same way).
    subs = [sub for sub in d.block if sub.name == "fallthrough"]
    if not subs:
        return False
    last = subs[-1]
    return not last.args or any(in_zone(name, z) for z in last.args)


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NextHop:
    target: str
    transport: str
    kind: str
    note: str = ""
    targets: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Hop:
    corefile: str
    block: str
    line: int
    file_line: int | None
    zones: tuple[str, ...]
    port: int | None
    name: str
    plugin: str | None
    plugin_line: int | None
    next: NextHop | None
    via: str
    outcome: str
    notes: tuple[str, ...] = ()
    stub_forward: bool = False
    role: str | None = None
    # Plugins that answer first when they know the name (kubernetes, hosts with fallthrough).
    conditional: tuple[str, ...] = ()


@dataclass(frozen=True)
class TraceResult:
    name: str
    qtype: str
    hops: tuple[Hop, ...]
    outcome: str
    final: NextHop | None
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())
    roles: tuple[RoleAssignment, ...] = ()
    assembly: Assembly | None = field(default=None, repr=False, compare=False)


# --- block selection -------------------------------------------------------------------------


def select_block(cf: Corefile, name: str, port: int | None = 53, address: str | None = None,
                 transport: str = "dns", aliases: Mapping[str, str] | None = None
                 ) -> tuple[ServerBlock, str] | None:
    """The server block (and its zone) that answers NAME on PORT/ADDRESS: longest zone match.

    ``aliases`` maps placeholder zones (``__pillar__dns__domain__.``) to what fills them."""
    best: tuple[int, ServerBlock, str] | None = None
    for b in cf.blocks:
        # A bind to a placeholder (__PILLAR__LOCAL__DNS__) says nothing about the address.
        bind = tuple(x for x in b.bind if not PILLAR_RE.fullmatch(x))
        if address and bind and not any(_same_ip(address, x) for x in bind):
            continue
        for a in b.addresses:
            if aliases and a.zone in aliases:
                a = replace(a, zone=aliases[a.zone])
            if port is not None and a.port is not None and a.port != port:
                continue
            if transport and a.transport != transport and not (transport in ("udp", "tcp", "dns")
                                                                and a.transport == "dns"):
                continue
            if not in_zone(name, a.zone):
                continue
            if a.network:
                try:
                    ip = _reverse_ip(name)
                    if ip is not None and ip not in ipaddress.ip_network(a.network):
                        continue
                except ValueError:
                    pass
            depth = 0 if a.zone == "." else a.zone.count(".")
            if best is None or depth > best[0]:
                best = (depth, b, a.zone)
    return None if best is None else (best[1], best[2])


def _reverse_ip(name: str):
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


def _same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b.split("%")[0])
    except ValueError:
        return a == b


# --- the walk inside one block ---------------------------------------------------------------


def _apply_rewrite(d: Directive, name: str) -> tuple[str, str | None]:
    """(new name, note) for ``rewrite [continue|stop] name [TYPE] FROM TO``; unknown forms:
    name unchanged and a note saying the rewrite was not evaluated."""
    args = list(d.args)
    if args and args[0] in ("continue", "stop"):
        args = args[1:]
    if not args and d.has_block:
        # `rewrite [stop] { name ... ; answer ... }` (the block form the AKS docs use): the
        # `name` line rewrites the question, `answer` lines only the response.
        for sub in d.block:
            if sub.name == "name":
                return _apply_rewrite(Directive(name="rewrite", args=("name",) + sub.args, line=sub.line,
                                                column=sub.column), name)
        return name, None
    if not args or args[0] != "name":
        return name, None
    args = args[1:]
    mtype = "exact"
    if args and args[0] in ("exact", "prefix", "suffix", "substring", "regex"):
        mtype, args = args[0], args[1:]
    if len(args) < 2:
        return name, f"rewrite at line {d.line} not evaluated (unexpected arguments)"
    frm, to = args[0].lower(), args[1].lower()
    n = fqdn(name)
    new = None
    if mtype == "exact":
        if n == fqdn(frm):
            new = fqdn(to)
    elif mtype == "prefix":
        if n.startswith(frm):
            new = to + n[len(frm):]
    elif mtype == "suffix":
        f2 = frm if frm.endswith(".") else frm + "."
        t2 = to if to.endswith(".") else to + "."
        if n.endswith(f2):
            new = n[: -len(f2)] + t2
    elif mtype == "substring":
        if frm in n:
            new = n.replace(frm, to, 1)
    elif mtype == "regex":
        try:
            m = re.search(frm, n)
        except re.error:
            return name, f"rewrite regex at line {d.line} not evaluated"
        if m:
            new = re.sub(r"\{(\d+)\}", lambda g: m.group(int(g.group(1))) or ""
                         if int(g.group(1)) <= (m.re.groups or 0) else "", to)
    if new is None or fqdn(new) == n:
        return name, None
    return fqdn(new), f"rewrite at line {d.line}: {n} -> {fqdn(new)}"


def _decide(block: ServerBlock, name: str, qtype: str,
            maybe: list[str] | None = None) -> tuple[str, Directive | None, list[str], str]:
    """Walk BLOCK's plugins in execution order: (name after rewrites, deciding directive,
    notes, outcome). MAYBE collects the plugins that answer first when they know the name."""
    notes: list[str] = []
    if maybe is None:
        maybe = []
    ordered = sorted(block.directives,
                     key=lambda d: (order_index(d.name) if order_index(d.name) is not None else 10_000,
                                    d.line))
    for d in ordered:
        p = d.name
        if p == "cache":
            notes.append(f"cache ({_at(d)}) answers first when the entry is warm")
        elif p == "rewrite":
            name, note = _apply_rewrite(d, name)
            if note:
                notes.append(note)
        elif p == "template":
            args = list(d.args)
            cls = args[0].upper() if args else "ANY"
            typ = args[1].upper() if len(args) > 1 else "ANY"
            zones = [fqdn(z) for z in args[2:]] or list(block.zones)
            if cls not in ("IN", "ANY") or typ not in (qtype, "ANY"):
                continue
            if not any(in_zone(name, z) for z in zones):
                continue
            regexes = [a for s in d.sub("match") for a in s.args] or [".*"]
            matched = False
            for rx in regexes:
                try:
                    if re.search(rx, fqdn(name)):
                        matched = True
                        break
                except re.error:
                    matched = True  # cannot evaluate: assume it may match
                    notes.append(f"template regex at {_at(d)} not evaluated")
                    break
            if matched:
                return name, d, notes, f"answered by template ({_at(d)})"
            if not _fallthrough(d, name):
                return name, d, notes, (f"template ({_at(d)}) owns the zone but no regex "
                                        "matches and it does not fall through: error answer")
        elif p == "hosts":
            entries: dict[str, list[str]] = {}
            for sub in d.block:
                if sub.name in ("fallthrough", "ttl", "reload", "no_reverse"):
                    continue
                for h in sub.args:
                    entries.setdefault(fqdn(h), []).append(sub.name)
            zones = [fqdn(z) for z in d.args[1:]] or list(block.zones)
            if not any(in_zone(name, z) for z in zones):
                continue
            if fqdn(name) in entries:
                return name, d, notes, (f"answered by hosts ({_at(d)}): "
                                        f"{', '.join(entries[fqdn(name)])}")
            hosts_file = d.args[0] if d.args else "/etc/hosts"
            if _fallthrough(d, name):
                notes.append(f"hosts ({_at(d)}) answers if {hosts_file} lists the name, "
                             "else falls through")
                maybe.append(f"hosts ({_at(d)})")
                continue
            return name, d, notes, (f"hosts ({_at(d)}) owns the zone without fallthrough: "
                                    f"answers from {hosts_file} or NXDOMAIN")
        elif p in ("kubernetes", "k8s_external", "etcd", "file", "auto", "secondary", "route53",
                   "azure", "clouddns", "nomad"):
            if p == "file":
                zones = _zones_of(d, block, 1)
            elif p in ("route53", "azure", "clouddns"):
                zones = [fqdn(a.split(":")[0]) for a in d.args] or list(block.zones)
            elif p == "auto":
                zones = _zones_of(d, block, 0)
            else:
                zones = _zones_of(d, block, 0)
            if not any(in_zone(name, z) for z in zones):
                continue
            if _fallthrough(d, name):
                notes.append(f"{p} ({_at(d)}) answers names it knows, falls through for "
                             "the others")
                maybe.append(f"{p} ({_at(d)})")
                continue
            return name, d, notes, f"answered by {p} ({_at(d)}) for zone(s) {' '.join(zones)}"
        elif p in ("whoami", "erratic"):
            return name, d, notes, f"answered by {p} ({_at(d)})"
        elif p in ("forward", "grpc", "proxy"):
            # proxy: forward's predecessor (removed in CoreDNS 1.6), same FROM TO... syntax
            spec = forward_spec(d)
            if not in_zone(name, spec.from_zone):
                continue
            if any(in_zone(name, e) for e in spec.excepts):
                notes.append(f"{p} ({_at(d)}) excepts this name")
                continue
            return name, d, notes, f"forwarded by {p} ({_at(d)})"
    return name, None, notes, "no plugin answers: CoreDNS returns SERVFAIL"


# --- the walk across Corefiles ---------------------------------------------------------------


def _listen_map(corefiles: Sequence[Corefile], service_ips: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, cf in enumerate(corefiles):
        for b in cf.blocks:
            for ip in b.bind:
                try:
                    out.setdefault(str(ipaddress.ip_address(ip)), i)
                except ValueError:
                    pass
    for ip, i in service_ips.items():
        out[str(ipaddress.ip_address(ip))] = i
    return out


def _downstream(corefiles: Sequence[Corefile], listen: Mapping[str, int]) -> set[int]:
    targets: set[int] = set()
    for i, cf in enumerate(corefiles):
        for b in cf.blocks:
            for d in b.directives:
                if d.name in ("forward", "grpc"):
                    for t in forward_spec(d).targets:
                        j = listen.get(t.host) if t.kind == "ip" else None
                        if j is not None and j != i:
                            targets.add(j)
    return targets


def _start_index(corefiles: Sequence[Corefile], assembly: Assembly, listen: Mapping[str, int],
                 nameserver: str | None) -> int:
    """The Corefile a pod asks first: the one that listens on --nameserver; else the node
    cache (NodeLocal sits in front of the cluster DNS); else the one no other forwards to."""
    if nameserver:
        try:
            j = listen.get(str(ipaddress.ip_address(nameserver)))
        except ValueError:
            j = None
        if j is not None:
            return j
    nc = assembly.first(CorefileRole.NODE_CACHE)
    if nc is not None:
        return nc
    downstream = _downstream(corefiles, listen)
    cands = [i for i in range(len(corefiles)) if i not in downstream]
    cd = assembly.first(CorefileRole.CLUSTER_DNS)
    if cd is not None and cd in cands:
        return cd
    return cands[0] if cands else 0


def _service_port(cf: Corefile, port: int) -> int | None:
    """The port a query sent to a Service's port PORT reaches in CF: PORT itself when a block
    listens there, else CF's one listen port (a Service maps port -> targetPort; OpenShift's
    dns-default Service maps 53 to CoreDNS's 5353: cluster-dns-operator
    pkg/manifests/assets/dns/service.yaml). None when that is ambiguous."""
    ports = {a.port for b in cf.blocks for a in b.addresses if a.port is not None}
    if port in ports or len(ports) != 1:
        return None
    return next(iter(ports))


def trace_name(name: str, corefiles: Sequence[Corefile], *, qtype: str = "A",
               port: int | None = None,
               service_ip: str | None = None, start: int | None = None,
               nameserver: str | None = None, assembly: Assembly | None = None) -> TraceResult:
    """Follow NAME through the Corefiles (a node cache and the cluster DNS given together are
    chained; custom import files are spliced into the Corefile that imports them).

    ``service_ip``: the address the cluster DNS Corefile listens on (its Service ClusterIP);
    ``start``: index (in ``assembly.corefiles``) of the Corefile the client asks first (default:
    see _start_index); ``nameserver``: the address the client asks (selects by ``bind``);
    ``assembly``: roles and spliced Corefiles from roles.assemble (computed when None);
    ``port``: the port the client asks (default: 53, the Service port, mapped to a Corefile's
    only listen port when it listens elsewhere, e.g. OpenShift's 5353).
    """
    mapped = port is None
    port = 53 if port is None else port
    qtype = qtype.upper()
    notes: list[str] = []
    problems: list[str] = []
    if assembly is None:
        assembly = assemble(corefiles, service_ip=service_ip)
    corefiles = list(assembly.corefiles)
    if not corefiles:
        return TraceResult(fqdn(name), qtype, (), "no Corefile given", None,
                           roles=assembly.roles, assembly=assembly)
    notes.extend(assembly.notes)
    roles = [assembly.role_of(cf) for cf in corefiles]
    cluster_idx = assembly.first(CorefileRole.CLUSTER_DNS)
    svc: dict[str, int] = {}
    if service_ip:
        target_idx = cluster_idx if cluster_idx is not None else next(
            (i for i, r in enumerate(roles) if r is None or r.role not in _CACHE_ROLES),
            len(corefiles) - 1)
        svc[service_ip] = target_idx
    listen = _listen_map(corefiles, svc)
    if start is None:
        start = _start_index(corefiles, assembly, listen, nameserver)
    # NodeLocal's cluster-domain block is written __PILLAR__DNS__DOMAIN__ until installed.
    domain = assembly.cluster_domain()
    aliases = {DOMAIN_PILLAR.lower() + ".": domain}
    hops: list[Hop] = []
    cur_name = fqdn(name)
    idx, cur_port, address, incoming = start, port, nameserver, "udp"
    via = f"client query for {cur_name} ({qtype})" + (f" to {nameserver}" if nameserver else "")
    visited: set[tuple[int, int]] = set()
    final: NextHop | None = None
    outcome = ""
    for _ in range(MAX_HOPS):
        cf = corefiles[idx]
        role = roles[idx]
        if mapped and cur_port == 53:
            target_port = _service_port(cf, cur_port)
            if target_port is not None:
                notes.append(f"{cf.name} listens on port {target_port} only: taken to be the "
                             f"target port of a Service on port 53")
                cur_port = target_port
        sel = select_block(cf, cur_name, cur_port, address, aliases=aliases)
        if sel is None:
            outcome = (f"{cf.name}: no server block serves {cur_name} on port {cur_port}"
                       + (f" at {address}" if address else "") + ": CoreDNS answers REFUSED")
            problems.append(outcome)
            break
        block, zone = sel
        if zone in aliases.values() and any(a.zone in aliases for a in block.addresses):
            notes.append(f"{cf.name}: zone {DOMAIN_PILLAR} taken to be {domain} (the install "
                         "step fills it with the cluster domain)")
        bi = cf.blocks.index(block)
        if (idx, bi) in visited:
            outcome = f"forwarding loop: back at {cf.name} block {block.label}"
            problems.append(outcome)
            break
        visited.add((idx, bi))
        maybe: list[str] = []
        new_name, d, hop_notes, hop_outcome = _decide(block, cur_name, qtype, maybe)
        nxt: NextHop | None = None
        next_idx = None
        stub = False
        if d is not None and d.name in ("forward", "grpc", "proxy"):
            spec = forward_spec(d)
            if not spec.targets:
                hop_outcome += ": no upstream given"
            first = spec.targets[0] if spec.targets else None
            transport = spec.transport(incoming, first)
            kind = first.kind if first else "none"
            note = first.note if first else ""
            is_cache = role is not None and role.role in _CACHE_ROLES
            cluster_targets = set(role.cluster_dns_targets) if is_cache else set()
            for t in spec.targets:
                j = listen.get(t.host) if t.kind == "ip" else None
                why = ""
                if j is None and is_cache and cluster_idx is not None and cluster_idx != idx:
                    if t.raw in cluster_targets or t.raw.upper() in CLUSTER_DNS_PILLARS:
                        # A node cache sends the cluster zones to the cluster DNS Service
                        # (nodelocaldns.yaml: `forward . __PILLAR__CLUSTER__DNS__`).
                        j = cluster_idx
                        why = (f"{t.raw} is the cluster DNS of node cache {cf.name}: continued in "
                               f"{corefiles[j].name}")
                    elif t.kind == "ip" and _private(t.host) and block.zones != (".",):
                        j = cluster_idx
                        why = (f"{t.host} taken to be the address of {corefiles[j].name} (the "
                               "CoreDNS Service); pass --service-ip to say so")
                if j is not None and j != idx:
                    if why:
                        hop_notes.append(why)
                    first, next_idx = t, j
                    transport = spec.transport(incoming, t)
                    kind, note = "corefile", f"served by {corefiles[j].name}"
                    break
            nxt = NextHop(first.label if first else "", transport, kind, note,
                          tuple(t.label for t in spec.targets))
            stub = zone != "." and _is_stub(cf, block, zone, spec, role)
            if stub:
                hop_notes.append(f"block {block.label} is a stub forward: it sends {zone} to "
                                 f"{', '.join(t.label for t in spec.targets)}, not to the "
                                 "default upstream of the '.' block")
        hops.append(Hop(
            corefile=cf.name, block=block.label, line=block.line,
            file_line=_block_file_line(cf, block), zones=block.zones, port=cur_port, name=new_name,
            plugin=d.name if d else None, plugin_line=d.line if d else None, next=nxt, via=via,
            outcome=hop_outcome, notes=tuple(hop_notes), stub_forward=stub,
            role=role.role.value if role else None, conditional=tuple(maybe)))
        cur_name = new_name
        if next_idx is None:
            final = nxt
            outcome = hop_outcome
            if nxt is not None:
                outcome += f" to {', '.join(nxt.targets) or '(none)'} over {nxt.transport}"
                if nxt.kind not in ("ip", "corefile"):
                    outcome += f" ({nxt.note})" if nxt.note else ""
            if maybe and d is not None and d.name in ("forward", "grpc", "proxy"):
                outcome += f", unless {' or '.join(maybe)} knows the name"
            if d is None:
                problems.append(f"{cf.name} block {block.label}: {hop_outcome}")
            break
        t = next((x for x in spec.targets if x.label == nxt.target), None)
        via = f"{d.name} {nxt.target} over {nxt.transport} from {cf.name} line {d.line}"
        idx, incoming = next_idx, nxt.transport
        address = t.host if t and t.kind == "ip" else None
        cur_port = t.port if t and t.port else 53
    else:
        outcome = f"gave up after {MAX_HOPS} hops"
        problems.append(outcome)
    return TraceResult(fqdn(name), qtype, tuple(hops), outcome, final, tuple(notes),
                       tuple(problems), roles=assembly.roles, assembly=assembly)


def _block_file_line(cf: Corefile, block: ServerBlock) -> int | None:
    """File line of BLOCK; None for a block spliced in from another file (custom imports)."""
    return None if block.imported_from else cf.file_line(block.line)


def _private(ip: str) -> bool:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a.is_private and not a.is_loopback


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


def _is_stub(cf: Corefile, block: ServerBlock, zone: str, spec: ForwardSpec,
             role: RoleAssignment | None = None) -> bool:
    """A non-root block that forwards its zone elsewhere than the config's default upstream.
    Not for a node cache sending a cluster zone to the cluster DNS: that is NodeLocal's design
    (cluster/addons/dns/nodelocaldns/nodelocaldns.yaml, kubespray nodelocaldns-config.yml.j2)."""
    if role is not None and role.role in _CACHE_ROLES and spec.targets and \
            {t.raw for t in spec.targets} <= set(role.cluster_dns_targets) | CLUSTER_DNS_PILLARS:
        return False
    port = next((a.port for a in block.addresses if a.zone == zone), None)
    default = default_forward(cf, port)
    if default is None:
        return False
    return {t.raw for t in default.targets} != {t.raw for t in spec.targets}


def trace_report(result: TraceResult) -> Report:
    """The Report of ``corefile trace``: ``ok`` unless the path ends in a stub forward, no
    server block, no answering plugin or a loop (then ``dns-error``: the config misroutes)."""
    from toolkit.model import Finding, Report, Severity, Table, Verdict

    findings: list[Finding] = []
    for h in result.hops:
        if h.stub_forward and h.next is not None:
            findings.append(Finding(
                code="trace-stub-forward", severity=Severity.WARNING,
                summary=f"{result.name} is answered by stub block {h.block} of {h.corefile} (line {h.line}), "
                f"which forwards to {', '.join(h.next.targets)} instead of the default upstream",
                evidence=tuple(n for n in h.notes if "stub" in n) + (f"via: {h.via}",),
                remedy="check the stub target answers like the default upstream (`podtriage corefile "
                "check`); re-point or delete the block, then flush the caches",
                verdict=None, data={"corefile": h.corefile, "block": list(h.zones), "line": h.line,
                       "file_line": h.file_line, "targets": list(h.next.targets)}))
    for p in result.problems:
        findings.append(Finding(code="trace-dead-end", severity=Severity.WARNING, summary=p, evidence=(),
                                remedy="add a server block or plugin that answers this name", verdict=None, data={}))
    if result.final is not None and result.final.kind not in ("ip", "corefile"):
        findings.append(Finding(code="trace-upstream-not-address", severity=Severity.INFO,
                                summary=f"final upstream {result.final.target}: {result.final.note}", evidence=(), remedy="",
                                verdict=None, data={"target": result.final.target}))
    verdict = Verdict.DNS_ERROR if any(f.severity is not Severity.INFO for f in findings) \
        else Verdict.OK
    rows = tuple((str(i + 1), h.corefile, h.block, str(h.line) + (
        f" ({h.file_line})" if h.file_line and h.file_line != h.line else ""), h.name,
        h.plugin or "-", (f"{h.next.target} over {h.next.transport}" if h.next else "-"))
        for i, h in enumerate(result.hops))
    table = Table(f"Path of {result.name}", ("hop", "corefile", "block", "line (file line)",
                                             "name", "plugin", "next"), rows)
    hops = []
    for h in result.hops:
        hops.append({"corefile": h.corefile, "block": h.block, "line": h.line,
                     "file_line": h.file_line, "zones": h.zones, "port": h.port, "name": h.name,
                     "plugin": h.plugin, "plugin_line": h.plugin_line,
                     "next": ({"target": h.next.target, "transport": h.next.transport,
                               "kind": h.next.kind, "note": h.next.note,
                               "targets": h.next.targets} if h.next else None),
                     "via": h.via, "outcome": h.outcome, "notes": h.notes,
                     "stub_forward": h.stub_forward, "role": h.role,
                     "conditional_answerers": h.conditional})
    notes = tuple(n for h in result.hops for n in h.notes) + result.notes
    roles_table = Table("Corefiles (what each was taken for)",
                        ("corefile", "role", "from", "why"),
                        role_rows(result.assembly) if result.assembly else ())
    return Report(command="corefile trace", verdict=verdict, findings=tuple(findings),
                  data={"name": result.name, "qtype": result.qtype, "hops": hops,
                        "corefiles": role_json(result.assembly) if result.assembly else [],
                        "outcome": result.outcome,
                        "final": ({"target": result.final.target,
                                   "transport": result.final.transport,
                                   "kind": result.final.kind, "note": result.final.note,
                                   "targets": result.final.targets} if result.final else None)},
                  tables=(table, roles_table), subject=result.name,
                  notes=(result.outcome,) + notes)
