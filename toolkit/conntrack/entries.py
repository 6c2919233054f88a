"""Conntrack entries of DNS flows: parsing (ctnetlink dicts, /proc/net/nf_conntrack lines)
and grouping by the backend a Service address was DNATed to.

The DNAT target is read from the reply tuple: the original direction goes to
``orig_dst:orig_dport`` (e.g. the ClusterIP 10.96.0.10:53), the reply comes from
``reply_src:reply_sport``; when they differ the kernel translated the destination, and the
reply source is the backend that got the query.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FlowProto(StrEnum):
    """The transport of a flow: DNS flows are UDP (and TCP for large answers, use-vc)."""

    UDP = "udp"
    TCP = "tcp"


# include/uapi/linux/netfilter/nf_conntrack_common.h
IPS_SEEN_REPLY = 1 << 1
IPS_ASSURED = 1 << 2
IPS_CONFIRMED = 1 << 3
IPS_SRC_NAT = 1 << 4
IPS_DST_NAT = 1 << 5
IPS_OFFLOAD = 1 << 14
_STATUS_BITS = ((IPS_SEEN_REPLY, "SEEN_REPLY"), (IPS_ASSURED, "ASSURED"), (IPS_CONFIRMED, "CONFIRMED"),
                (IPS_SRC_NAT, "SRC_NAT"), (IPS_DST_NAT, "DST_NAT"), (IPS_OFFLOAD, "OFFLOAD"))

TCP_STATES = {1: "SYN_SENT", 2: "SYN_RECV", 3: "ESTABLISHED", 4: "FIN_WAIT", 5: "CLOSE_WAIT",
              6: "LAST_ACK", 7: "TIME_WAIT", 8: "CLOSE", 9: "SYN_SENT2"}
PROTOS = {socket.IPPROTO_UDP: FlowProto.UDP, socket.IPPROTO_TCP: FlowProto.TCP}


def _hp(addr: str, port: int | None) -> str:
    host = f"[{addr}]" if ":" in addr else addr
    return host if port is None else f"{host}:{port}"


@dataclass(frozen=True, kw_only=True)
class FlowEntry:
    """One conntrack entry: its original and reply tuples, status bits, timeout and (TCP) state."""

    family: str  # "ipv4" | "ipv6"
    proto: FlowProto
    orig_src: str
    orig_dst: str
    orig_sport: int
    orig_dport: int
    reply_src: str
    reply_dst: str
    reply_sport: int
    reply_dport: int
    status: tuple[str, ...]  # SEEN_REPLY, ASSURED, DST_NAT, ...
    timeout_s: int | None  # seconds left before the entry expires
    state: str | None = None  # TCP state
    orig_packets: int | None = None  # with net.netfilter.nf_conntrack_acct=1
    reply_packets: int | None = None
    # seconds since the entry was created, only with net.netfilter.nf_conntrack_timestamp=1
    # when it was created (the kernel attaches the timestamp extension at creation)
    age_s: int | None = None

    __json_properties__ = ("unreplied", "dnat_target", "backend", "service")

    @property
    def unreplied(self) -> bool:
        """No packet came back (IPS_SEEN_REPLY unset)."""
        return "SEEN_REPLY" not in self.status

    @property
    def dnat_target(self) -> str | None:
        """Where the kernel sent the flow when it translated the destination."""
        if (self.reply_src, self.reply_sport) != (self.orig_dst, self.orig_dport):
            return _hp(self.reply_src, self.reply_sport)
        return None

    @property
    def service(self) -> str:
        """The address the client asked (e.g. the ClusterIP:53)."""
        return _hp(self.orig_dst, self.orig_dport)

    @property
    def backend(self) -> str:
        """Who actually got the query: the DNAT target, else the original destination."""
        return self.dnat_target or self.service

    @property
    def original(self) -> str:
        """The original direction, "src:sport -> dst:dport"."""
        return f"{_hp(self.orig_src, self.orig_sport)} -> {_hp(self.orig_dst, self.orig_dport)}"

    @property
    def reply(self) -> str:
        """The reply direction, "src:sport -> dst:dport"."""
        return f"{_hp(self.reply_src, self.reply_sport)} -> {_hp(self.reply_dst, self.reply_dport)}"

    def is_dns(self, port: int = 53) -> bool:
        """A flow to (or answered from) the DNS ``port``."""
        return self.orig_dport == port or self.reply_sport == port


def status_names(bits: int) -> tuple[str, ...]:
    """The IPS_* status bits we report, by name."""
    return tuple(name for bit, name in _STATUS_BITS if bits & bit)


def from_netlink_dict(d: Mapping[str, Any], now_ns: int | None = None) -> FlowEntry | None:
    """From the flat dict of one ctnetlink entry (toolkit.conntrack.ctnetlink makes it; the
    recorded samples hold it). Not UDP/TCP: None."""
    proto = PROTOS.get(int(d.get("proto", 0)))
    if proto is None:
        return None
    o, r = d["orig"], d["reply"]
    state = d.get("tcp_state")
    return FlowEntry(
        family="ipv6" if int(d.get("family", socket.AF_INET)) == socket.AF_INET6 else "ipv4",
        proto=proto, orig_src=o["src"], orig_dst=o["dst"], orig_sport=int(o["sport"]),
        orig_dport=int(o["dport"]), reply_src=r["src"], reply_dst=r["dst"],
        reply_sport=int(r["sport"]), reply_dport=int(r["dport"]),
        status=status_names(int(d.get("status") or 0)),
        timeout_s=None if d.get("timeout") is None else int(d["timeout"]),
        state=TCP_STATES.get(int(state), str(state)) if state is not None and proto is FlowProto.TCP else None,
        orig_packets=d.get("orig_packets"), reply_packets=d.get("reply_packets"),
        age_s=_age(d.get("start_ns"), now_ns),
    )


def _age(start_ns: Any, now_ns: int | None) -> int | None:
    """CTA_TIMESTAMP_START is wall-clock nanoseconds (ktime_get_real_ns, nf_conntrack_timestamp.h)."""
    if not isinstance(start_ns, int) or start_ns <= 0:
        return None
    now = now_ns if now_ns is not None else time.time_ns()
    return max(0, (now - start_ns) // 1_000_000_000)


def parse_proc_line(line: str) -> FlowEntry | None:
    """One line of /proc/net/nf_conntrack, e.g.

    ``ipv4 2 udp 17 27 src=10.244.1.10 dst=10.96.0.10 sport=40001 dport=53 [UNREPLIED]
    src=10.245.0.3 dst=10.244.1.10 sport=53 dport=40001 mark=0 zone=0 use=2``
    """
    tok = line.split()
    if len(tok) < 6 or tok[2] not in tuple(FlowProto):
        return None
    family, proto = tok[0], FlowProto(tok[2])
    try:
        timeout = int(tok[4])
    except ValueError:
        return None
    rest = tok[5:]
    state = None
    if proto is FlowProto.TCP and rest and "=" not in rest[0] and not rest[0].startswith("["):
        state, rest = rest[0], rest[1:]
    tuples: list[dict[str, str]] = []
    flags: set[str] = set()
    age: int | None = None
    for t in rest:
        if t.startswith("[") and t.endswith("]"):
            flags.add(t[1:-1])
            continue
        key, sep, val = t.partition("=")
        if not sep:
            continue
        if key == "delta-time" and val.isdigit():  # CONFIG_NF_CONNTRACK_TIMESTAMP (ct_show_delta_time)
            age = int(val)
            continue
        if key == "src":
            tuples.append({})
        if tuples and key in ("src", "dst", "sport", "dport", "packets", "bytes") and key not in tuples[-1]:
            tuples[-1][key] = val
    if len(tuples) < 2 or not all(k in tp for tp in tuples[:2] for k in ("src", "dst", "sport", "dport")):
        return None
    o, r = tuples[0], tuples[1]
    status: list[str] = []
    if "UNREPLIED" not in flags:
        status.append("SEEN_REPLY")
    if "ASSURED" in flags:
        status.append("ASSURED")
    if "OFFLOAD" in flags or "HW_OFFLOAD" in flags:
        status.append("OFFLOAD")
    if (r["src"], r["sport"]) != (o["dst"], o["dport"]):
        status.append("DST_NAT")
    if (r["dst"], r["dport"]) != (o["src"], o["sport"]):
        status.append("SRC_NAT")
    return FlowEntry(family=family, proto=proto, orig_src=o["src"], orig_dst=o["dst"],
                     orig_sport=int(o["sport"]), orig_dport=int(o["dport"]), reply_src=r["src"],
                     reply_dst=r["dst"], reply_sport=int(r["sport"]), reply_dport=int(r["dport"]),
                     status=tuple(status), timeout_s=timeout, state=state,
                     orig_packets=int(o["packets"]) if "packets" in o else None,
                     reply_packets=int(r["packets"]) if "packets" in r else None, age_s=age)


@dataclass(frozen=True, kw_only=True)
class BackendGroup:
    """The DNS flows that reached one backend (the DNAT target, or the address asked)."""

    backend: str  # ip:port that answered (the DNAT target, or the address asked)
    services: tuple[str, ...]  # the addresses clients asked (ClusterIP:53 ...)
    entries: int
    unreplied: int
    udp: int
    tcp: int

    __json_properties__ = ("unreplied_ratio",)

    @property
    def unreplied_ratio(self) -> float:
        """The share of this backend's flows that saw no reply."""
        return self.unreplied / self.entries if self.entries else 0.0


def group_by_backend(entries: Iterable[FlowEntry]) -> tuple[BackendGroup, ...]:
    """Flows by backend, the most unreplied first."""
    acc: dict[str, _Tally] = {}
    for e in entries:
        g = acc.setdefault(e.backend, _Tally())
        if e.dnat_target:
            g.services.add(e.service)
        g.entries += 1
        g.unreplied += int(e.unreplied)
        g.by_proto[e.proto] += 1
    out = [BackendGroup(backend=b, services=tuple(sorted(g.services)), entries=g.entries, unreplied=g.unreplied,
                        udp=g.by_proto[FlowProto.UDP], tcp=g.by_proto[FlowProto.TCP])
           for b, g in acc.items()]
    return tuple(sorted(out, key=lambda g: (-g.unreplied, -g.entries, g.backend)))


@dataclass
class _Tally:
    services: set[str] = field(default_factory=set)
    entries: int = 0
    unreplied: int = 0
    by_proto: dict[FlowProto, int] = field(default_factory=lambda: dict.fromkeys(FlowProto, 0))
