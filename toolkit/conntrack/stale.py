"""Stale DNS conntrack: DNS flows the kernel still DNATs to a backend that is no longer a live
endpoint of the DNS Service (kubernetes/kubernetes#125467, #48370, #129617).

A UDP conntrack entry keeps its NAT binding for as long as packets refresh it
(nf_conntrack_udp_timeout_stream, 120 s by default, restarts with every packet of an assured
flow: net/netfilter/nf_conntrack_proto_udp.c, nf_conntrack_udp_packet), so a socket that
keeps sending to the Service (NodeLocal DNSCache's upstream sockets, a resolver with a fixed
source port) keeps talking to the old pod's address after the pod is gone. kube-proxy deletes
the UDP entries of endpoints it removes (pkg/proxy/conntrack/cleanup.go), but not those
created after its cleanup or while it was down or lagging.

The live endpoints come from ``--dns-endpoints`` or, on a node, from kube-proxy's own rules
for the kube-dns Service (iptables-save, or its nftables table). Without either nothing is
guessed. Pure functions except ``read_live_endpoints`` and ``local_sockets``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from toolkit.conntrack.entries import FlowEntry, FlowProto

MAX_LISTED = 50  # source ports, timeouts and ages listed per dead target (the data contract)
DNS_SERVICE = "kube-system/kube-dns"  # kube-proxy's comment / chain name of the DNS Service
DNS_PORT_NAMES = ("dns", "dns-tcp")  # the kube-dns Service's port names (CoreDNS's manifest)
RULES_TIMEOUT_S = 5.0  # iptables-save / nft on a large node take about a second


class EndpointsSource(StrEnum):
    """Where the live endpoints of the DNS Service were read (``data.endpoints_source``)."""

    FLAG = "flag"
    IPTABLES = "kube-proxy-iptables"
    NFTABLES = "kube-proxy-nftables"


@dataclass(frozen=True, kw_only=True)
class LiveEndpoints:
    """The DNS Service's live endpoints and, when known, its Service addresses."""

    addresses: tuple[str, ...]  # the endpoints' IPs
    source: EndpointsSource
    # The Service (ClusterIP) addresses the endpoints serve: only flows to them are judged.
    # Empty (the flag alone): every DNATed DNS flow is judged.
    services: tuple[str, ...] = ()

    def covers(self, e: FlowEntry) -> bool:
        """The flow was sent to the DNS Service (or, without known Services, to any)."""
        return not self.services or e.orig_dst in self.services

    def is_live(self, address: str) -> bool:
        """``address`` is one of the live endpoints (compared as addresses, not strings)."""
        return _norm(address) in {_norm(a) for a in self.addresses}


def _norm(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


@dataclass(frozen=True, kw_only=True)
class SocketOwner:
    """A local socket and the process that holds it (owners of stale flows)."""

    proto: FlowProto
    local_ip: str
    local_port: int
    pid: int
    process: str


@dataclass(frozen=True, kw_only=True)
class StaleGroup:
    """The DNS flows DNATed to one backend that is not a live endpoint."""

    dead_target: str
    port: int
    entries: tuple[FlowEntry, ...]  # by source port
    live: LiveEndpoints
    owners: tuple[SocketOwner, ...]
    # kube-proxy's own rules when the endpoints came from elsewhere (the flag): if they still
    # DNAT to the dead target, kube-proxy is down or lagging and new flows go there too
    proxy_rules: LiveEndpoints | None = None

    @property
    def proxy_lagging(self) -> bool:
        """kube-proxy's rules still name the dead target as an endpoint."""
        return self.proxy_rules is not None and self.proxy_rules.is_live(self.dead_target)

    @property
    def services(self) -> tuple[str, ...]:
        """The original destinations (the Service addresses the clients asked)."""
        return tuple(sorted({e.orig_dst for e in self.entries}))

    @property
    def protos(self) -> tuple[str, ...]:
        """The transports of the flows ("udp" before "tcp")."""
        return tuple(p.value for p in FlowProto if any(e.proto is p for e in self.entries))

    @property
    def ages(self) -> tuple[int, ...] | None:
        """Seconds since creation, where the kernel keeps timestamps; None when none does."""
        ages = [e.age_s for e in self.entries if e.age_s is not None]
        return tuple(ages[:MAX_LISTED]) if ages else None

    @property
    def remedy_command(self) -> str:
        """The narrowest delete: this backend and its port, per transport; never a flush."""
        return "; ".join(remedy_command(self.dead_target, self.port, p) for p in self.protos)


def remedy_command(target: str, port: int, proto: str) -> str:
    """``conntrack -D`` of the entries whose reply comes from ``target:port`` (conntrack(8):
    --reply-src / --reply-port-src match the reply tuple, i.e. the DNAT target)."""
    fam = " -f ipv6" if ":" in target else ""
    return f"conntrack -D{fam} -p {proto} --reply-src {shlex.quote(target)} --reply-port-src {port}"


def stale_groups(entries: Iterable[FlowEntry], live: LiveEndpoints, port: int = 53,
                 sockets: Sequence[SocketOwner] = (),
                 proxy_rules: LiveEndpoints | None = None) -> tuple[StaleGroup, ...]:
    """The DNATed DNS flows (udp/tcp, backend port ``port``) whose target is not live,
    grouped by dead target, the largest group first. A TCP entry counts only ESTABLISHED:
    a connection that still carries queries; SYN_SENT, TIME_WAIT, FIN_WAIT... are attempts and
    endings whose sockets are gone or giving up (the next connect is a new flow, DNATed anew)."""
    acc: dict[str, list[FlowEntry]] = {}
    for e in entries:
        if e.dnat_target is None or e.reply_sport != port or not live.covers(e):
            continue
        if e.proto is FlowProto.TCP and e.state not in (None, "ESTABLISHED"):
            continue
        if live.is_live(e.reply_src):
            continue
        acc.setdefault(e.reply_src, []).append(e)
    out = []
    for target, flows in acc.items():
        flows.sort(key=lambda e: (e.orig_sport, e.proto))
        out.append(StaleGroup(dead_target=target, port=port, entries=tuple(flows), live=live,
                              owners=owners_of(flows, sockets), proxy_rules=proxy_rules))
    return tuple(sorted(out, key=lambda g: (-len(g.entries), g.dead_target)))


def owners_of(flows: Sequence[FlowEntry], sockets: Sequence[SocketOwner]) -> tuple[SocketOwner, ...]:
    """The local sockets that own ``flows``: same transport and source port, bound to the
    flow's source address or a wildcard. One per process."""
    wild = {"0.0.0.0", "::", ""}
    keys = {(e.proto, e.orig_sport) for e in flows}
    srcs = {_norm(e.orig_src) for e in flows}
    seen: dict[int, SocketOwner] = {}
    for s in sockets:
        if (s.proto, s.local_port) in keys and (s.local_ip in wild or _norm(s.local_ip) in srcs):
            seen.setdefault(s.pid, s)
    return tuple(sorted(seen.values(), key=lambda s: s.pid))


def group_data(g: StaleGroup) -> dict[str, Any]:  # Any: the JSON values of the contract
    """The finding's ``data`` (issue 26's contract: every key present, these JSON types)."""
    ports = sorted({e.orig_sport for e in g.entries})
    return {
        "dead_target": g.dead_target, "port": g.port, "services": list(g.services),
        "entries": len(g.entries), "protos": list(g.protos), "source_ports": ports[:MAX_LISTED],
        "timeouts": [e.timeout_s for e in g.entries if e.timeout_s is not None][:MAX_LISTED],
        "ages": None if g.ages is None else list(g.ages),
        "owners": [{"pid": o.pid, "process": o.process} for o in g.owners],
        "live_endpoints": list(g.live.addresses), "endpoints_source": g.live.source.value,
        "remedy_command": g.remedy_command,
    }


# ----------------------------------------------------------------------------- kube-proxy's rules

_COMMENT = re.compile(r'--comment "?(?P<c>[^"]*?)"? (?:-|$)')
_DEST = re.compile(r"-d (?P<ip>[0-9a-fA-F:.]+)(?:/\d+)?\b")
_DPORT = re.compile(r"--dport (?P<p>\d+)")
_TO = re.compile(r"--to-destination \[?(?P<ip>[0-9a-fA-F:.]+?)\]?:(?P<p>\d+)\b")


def _dns_comment(line: str) -> str | None:
    """The kube-dns port name of a rule's comment ("dns", "dns-tcp"), None for other rules."""
    m = _COMMENT.search(line)
    if m is None:
        return None
    svc, _, port_name = m.group("c").partition(":")
    port_name = port_name.split(" ", 1)[0]
    return port_name if svc == DNS_SERVICE and port_name in DNS_PORT_NAMES else None


def parse_iptables_save(text: str, port: int = 53) -> LiveEndpoints | None:
    """kube-proxy's iptables rules (``iptables-save -t nat``) -> the kube-dns Service's
    addresses (KUBE-SERVICES ``-d``) and endpoints (KUBE-SEP ``DNAT --to-destination``,
    pkg/proxy/iptables/proxier.go). None when no rule names the kube-dns Service."""
    services: set[str] = set()
    endpoints: set[str] = set()
    named = False
    for line in text.splitlines():
        if not line.startswith("-A ") or _dns_comment(line) is None:
            continue
        named = True
        chain = line.split()[1]
        dport, to = _DPORT.search(line), _TO.search(line)
        if chain == "KUBE-SERVICES" and (d := _DEST.search(line)) and dport and int(dport.group("p")) == port:
            services.add(d.group("ip"))
        elif chain.startswith("KUBE-SEP-") and to is not None:
            endpoints.add(to.group("ip"))
    if not named:
        return None
    return LiveEndpoints(addresses=tuple(sorted(endpoints)), source=EndpointsSource.IPTABLES,
                         services=tuple(sorted(services)))


def parse_nft_json(text: str, port: int = 53) -> LiveEndpoints | None:
    """kube-proxy's nftables table (``nft -j list table ip kube-proxy``) -> the kube-dns
    Service's addresses (the ``service-ips`` map's keys ip . proto . port) and endpoints (the
    ``dnat to`` of the endpoint chains its service chains jump to, pkg/proxy/nftables/proxier.go).
    None when no chain names the kube-dns Service."""
    try:
        items = json.loads(text).get("nftables", [])
    except (ValueError, AttributeError):
        return None
    svc_chains = {f"{DNS_SERVICE}/{p}/{n}" for p, n in (("udp", "dns"), ("tcp", "dns-tcp"))}
    named = False
    services: set[str] = set()
    endpoints: set[str] = set()
    for it in items if isinstance(items, list) else []:
        if not isinstance(it, dict):
            continue
        chain, rule, mapping = it.get("chain"), it.get("rule"), it.get("map")
        if isinstance(chain, dict) and any(str(chain.get("name", "")).endswith(s) for s in svc_chains):
            named = True
        if isinstance(rule, dict):
            rchain = str(rule.get("chain", ""))
            if "endpoint-" in rchain and any(s + "__" in rchain for s in svc_chains):
                endpoints.update(_nft_dnat(rule.get("expr", [])))
        if isinstance(mapping, dict) and mapping.get("name") == "service-ips":
            services.update(_nft_service_ips(mapping.get("elem", []), svc_chains, port))
    if not named:
        return None
    return LiveEndpoints(addresses=tuple(sorted(endpoints)), source=EndpointsSource.NFTABLES,
                         services=tuple(sorted(services)))


def _nft_dnat(exprs: Sequence[Mapping[str, Any]]) -> list[str]:  # Any: nft's JSON
    out = []
    for x in exprs:
        dnat = x.get("dnat") if isinstance(x, Mapping) else None
        if isinstance(dnat, Mapping) and isinstance(dnat.get("addr"), str):
            out.append(dnat["addr"])
    return out


def _nft_service_ips(elems: Sequence[Any], svc_chains: set[str], port: int) -> list[str]:  # Any: nft's JSON
    """Elements ``[{"concat": [ip, proto, port]}, {"goto": {"target": chain}}]``."""
    out = []
    for el in elems:
        if not (isinstance(el, list) and len(el) == 2 and isinstance(el[0], Mapping)):
            continue
        key, verdict = el[0].get("concat"), el[1]
        target = ""
        if isinstance(verdict, Mapping):
            jump = verdict.get("goto") or verdict.get("jump") or {}
            target = str(jump.get("target", "")) if isinstance(jump, Mapping) else ""
        if isinstance(key, list) and len(key) == 3 and key[2] == port and \
                any(target.endswith(s) for s in svc_chains):
            out.append(str(key[0]))
    return out


def _run(cmd: Sequence[str], timeout: float) -> str | None:
    """A rules dump's stdout; None when the tool is missing or fails."""
    if shutil.which(cmd[0]) is None or timeout <= 0:
        return None
    try:
        # explicit deadline: a wedged xtables lock must not hang the run
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def split_flag(values: Iterable[str]) -> tuple[str, ...]:
    """``--dns-endpoints`` values (repeatable, comma-separated) -> the addresses, once each."""
    return tuple(dict.fromkeys(a.strip() for v in values for a in v.split(",") if a.strip()))


def read_live_endpoints(flag: Sequence[str] = (), port: int = 53,
                        timeout: float = RULES_TIMEOUT_S) -> tuple[LiveEndpoints | None, str]:
    """The live endpoints and how they were found (or why not): the flag first, else
    kube-proxy's iptables rules, else its nftables table."""
    if flag:
        return (LiveEndpoints(addresses=tuple(dict.fromkeys(flag)), source=EndpointsSource.FLAG),
                f"live DNS endpoints from --dns-endpoints: {', '.join(flag)}")
    tried = []
    for cmd, parse in ((("iptables-save", "-t", "nat"), parse_iptables_save),
                       (("nft", "-j", "list", "table", "ip", "kube-proxy"), parse_nft_json)):
        text = _run(cmd, timeout)
        live = parse(text, port) if text is not None else None
        if live is not None:
            return live, (f"live DNS endpoints from kube-proxy's rules ({' '.join(cmd)}): "
                          f"{', '.join(live.addresses) or 'none'}")
        tried.append(" ".join(cmd) + (": no kube-dns rules" if text is not None else ": unavailable"))
    return None, ("live DNS endpoints unknown (no --dns-endpoints, no kube-proxy rules for "
                  f"{DNS_SERVICE} here: {'; '.join(tried)}): stale DNS conntrack not judged")


def local_sockets() -> tuple[SocketOwner, ...]:
    """The UDP/TCP sockets of this network namespace with their processes (psutil: /proc/net
    and /proc/PID/fd; sockets of processes we cannot see have no owner)."""
    import psutil

    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        return ()
    names: dict[int, str] = {}
    out = []
    for c in conns:
        if c.pid is None or not c.laddr:
            continue
        if c.pid not in names:
            try:
                names[c.pid] = psutil.Process(c.pid).name()
            except (psutil.Error, OSError):
                names[c.pid] = "?"
        out.append(SocketOwner(proto=FlowProto.TCP if c.type == 1 else FlowProto.UDP, local_ip=c.laddr.ip,
                               local_port=c.laddr.port, pid=c.pid, process=names[c.pid]))
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class StaleCheck:
    """What the stale-conntrack rule needs beside the snapshot: the live endpoints (None:
    unknown), how they were found or why not, and this namespace's sockets (the owners)."""

    live: LiveEndpoints | None
    how: str
    sockets: tuple[SocketOwner, ...] = ()
    proxy_rules: LiveEndpoints | None = None  # kube-proxy's rules, read beside the flag


def stale_check(flag: Sequence[str] = (), port: int = 53, timeout: float = RULES_TIMEOUT_S) -> StaleCheck:
    """Read the live endpoints (flag, else kube-proxy's rules), kube-proxy's rules beside a
    flag (do they agree?) and the local sockets."""
    from toolkit.errors import best_effort

    live, how = read_live_endpoints(flag, port, timeout)
    proxy_rules = read_live_endpoints((), port, timeout)[0] if flag else None
    if live is not None and proxy_rules is not None and not live.services:
        # the flag names the endpoints, kube-proxy's rules the Service addresses they serve
        live = replace(live, services=proxy_rules.services)
    sockets: tuple[SocketOwner, ...] = ()
    if live is not None:
        with best_effort(None, "listing local sockets"):  # owners are optional evidence
            sockets = local_sockets()
    return StaleCheck(live=live, how=how, sockets=sockets, proxy_rules=proxy_rules)
