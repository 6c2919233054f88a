"""TCP probes of one port: a raw SYN (NET_RAW) or a non-blocking connect() (unprivileged).

Raw SYN: a hand-built SYN from a port reserved by binding a TCP socket (so no other socket
gets it, and our kernel answers the SYN-ACK with a RST: the probe stays half-open, the
application never sees a connection). Replies are read on raw TCP and ICMP(v6) sockets
(toolkit.probe.receive): SYN-ACK -> open, RST -> closed, an ICMP error quoting our SYN ->
its type/code and the router that sent it. Unlike IPv4, an IPv6 raw socket never hands us
the IP header (RFC 3542 3): the sender comes from recvfrom(), the data starts at the TCP
header (or the ICMPv6 message, whose body quotes our SYN: RFC 4443 3.1).

connect(): with IP_RECVERR the kernel queues the ICMP error that failed a SYN_SENT socket,
so the exact type/code and the sender are read from the error queue (measured on kernel
6.18: 3/1 from the last router ~3.07 s after the SYN, 3/13 from the filtering router at
once). Without a queued error only the errno is left, and EHOSTUNREACH then means either
host-unreachable or admin-prohibited: ``detail`` says so.
"""

from __future__ import annotations

import errno
import os
import random
import select
import socket
import struct
import time

from toolkit.probe import packets
from toolkit.probe.model import (
    ProbeKind,
    ProbeOutcome,
    ProbeResult,
    ProbeSpec,
    result_from_errno,
    result_from_icmp,
)
from toolkit.probe.receive import Matcher, ms_since, receive, watch
from toolkit.sockerr import IcmpError, enable_recverr, read_errqueue
from toolkit.sockerr import IcmpOrigin

CONNECT_POLLS = 2000  # bound on poll rounds; each returns at news or after a 0.2 s slice


def syn_probe(address: str, port: int, source: str, end: float, *,
              kind: ProbeKind = ProbeKind.TCP_SYN) -> ProbeResult:
    """One raw SYN to ``address:port`` from ``source``, answers read until ``end`` (monotonic).

    IPv4 and IPv6; needs NET_RAW (PermissionError escapes: the caller decides to fall back)."""
    v6 = ":" in address
    family = socket.AF_INET6 if v6 else socket.AF_INET
    probe = ProbeSpec(address=address, kind=kind, port=port)
    reserve = socket.socket(family, socket.SOCK_STREAM)
    tx = rx_icmp = None
    try:
        reserve.bind((source, 0))
        sport = reserve.getsockname()[1]
        tx = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_TCP)
        rx_icmp = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
        tx.bind((source, 0))
        for s in (tx, rx_icmp):
            s.setblocking(False)
        seq = random.getrandbits(32)
        segment = (packets.tcp_syn6 if v6 else packets.tcp_syn)(source, address, sport, port, seq)
        t0 = time.monotonic()
        tx.sendto(segment, (address, 0))
        res = receive([(tx, _tcp_matcher(probe, sport, seq, t0, v6=v6)),
                       (rx_icmp, _icmp_matcher(probe, sport, t0, v6=v6))], end, probe)
        if res is not None:
            return res
        return probe.result(ProbeOutcome.SILENCE, privileged=True,
                            detail=f"no SYN-ACK, RST or ICMP{'v6' if v6 else ''} error in {end - t0:.1f} s")
    finally:
        for sock in (tx, rx_icmp, reserve):
            if sock is not None:
                sock.close()


def _tcp_matcher(probe: ProbeSpec, sport: int, seq: int, t0: float, *, v6: bool) -> Matcher:
    """The raw TCP socket's matcher: our SYN-ACK or RST (IPv4 packets carry their IP header)."""
    address, port = probe.address, probe.port or 0
    if v6:
        return lambda data, src: (_match_segment(packets.parse_tcp(data), address, port, sport, seq, t0, probe.kind)
                                  if src == address else None)
    return lambda data, _src: _match_tcp(data, address, port, sport, seq, t0, probe.kind)


def _icmp_matcher(probe: ProbeSpec, sport: int, t0: float, *, v6: bool) -> Matcher:
    """The raw ICMP(v6) socket's matcher: an error that quotes our SYN."""
    address, port = probe.address, probe.port or 0
    if v6:
        return lambda data, src: _match_icmp_msg(packets.parse_icmp(data, v6=True), src, address, port, sport,
                                                 t0, probe.kind, v6=True)
    return lambda data, _src: _match_icmp(data, address, port, sport, t0, probe.kind)


def _match_segment(tcp: packets.TcpReply | None, address: str, port: int, sport: int, seq: int, t0: float,
                   kind: ProbeKind) -> ProbeResult | None:
    """A TCP segment from ``address``: SYN-ACK acknowledging our SYN -> open, RST -> closed."""
    if tcp is None or tcp.sport != port or tcp.dport != sport:
        return None
    probe = ProbeSpec(address=address, kind=kind, port=port)
    if tcp.syn_ack and tcp.ack == (seq + 1) & 0xFFFFFFFF:
        return probe.result(ProbeOutcome.OPEN, reply_from=address, rtt_ms=ms_since(t0), privileged=True,
                            detail="SYN-ACK")
    if tcp.rst:
        return probe.result(ProbeOutcome.CLOSED, reply_from=address, rtt_ms=ms_since(t0), privileged=True,
                            detail="RST")
    return None


def _match_icmp_msg(msg: packets.IcmpMessage | None, src: str, address: str, port: int, sport: int, t0: float,
                    kind: ProbeKind, *, v6: bool) -> ProbeResult | None:
    """An ICMP(v6) error from ``src`` quoting our SYN -> what it says about the port."""
    if (msg is None or msg.inner_dst != address or msg.inner_proto != packets.IPPROTO_TCP
            or msg.inner_ports != (sport, port)):
        return None
    result = result_from_icmp(msg.icmp_type, msg.code, tcp=True, v6=v6)
    return ProbeSpec(address=address, kind=kind, port=port).result(
        result, reply_from=src, icmp_type=msg.icmp_type, icmp_code=msg.code, rtt_ms=ms_since(t0),
        detail=f"ICMP{'v6' if v6 else ''} {msg.icmp_type}/{msg.code} from {src}", privileged=True)


def _match_tcp(data: bytes, address: str, port: int, sport: int, seq: int, t0: float,
               kind: ProbeKind) -> ProbeResult | None:
    """An IPv4 packet of the raw TCP socket (IP header included)."""
    ip = packets.parse_ipv4(data)
    if ip is None or ip.proto != packets.IPPROTO_TCP or ip.src != address:
        return None
    return _match_segment(packets.parse_tcp(ip.payload), address, port, sport, seq, t0, kind)


def _match_icmp(data: bytes, address: str, port: int, sport: int, t0: float,
                kind: ProbeKind) -> ProbeResult | None:
    """An IPv4 packet of the raw ICMP socket (IP header included)."""
    ip = packets.parse_ipv4(data)
    if ip is None or ip.proto != packets.IPPROTO_ICMP:
        return None
    return _match_icmp_msg(packets.parse_icmp(ip.payload), ip.src, address, port, sport, t0, kind, v6=False)


def connect_probe(address: str, port: int, end: float, *,
                  kind: ProbeKind = ProbeKind.TCP_CONNECT) -> ProbeResult:
    """A non-blocking connect() with IP_RECVERR, watched until ``end`` (monotonic).

    An open port completes the handshake (the socket is then reset with SO_LINGER 0)."""
    probe = ProbeSpec(address=address, kind=kind, port=port)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        recverr = enable_recverr(sock)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t0 = time.monotonic()
        err = sock.connect_ex((address, port))
        if err not in (0, errno.EINPROGRESS):
            return _connect_failed(sock, probe, err, t0, recverr)
        res = watch(sock, select.POLLOUT | select.POLLERR | select.POLLHUP, end, probe,
                    lambda: _connect_news(sock, probe, t0, recverr), rounds=CONNECT_POLLS)
        if res is not None:
            return res
        return probe.result(
            ProbeOutcome.SILENCE,
            detail=f"connect() got no answer in {end - t0:.1f} s (the kernel retransmits the SYN after 1 s and 3 s)")
    finally:
        sock.close()


def _connect_news(sock: socket.socket, probe: ProbeSpec, t0: float, recverr: bool) -> ProbeResult | None:
    """The connecting socket woke up: connected, failed, or an ICMP error queued (None: a
    spurious wake-up, keep waiting)."""
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err != 0:
        return _connect_failed(sock, probe, err, t0, recverr)
    try:
        sock.getpeername()
    except OSError:
        # Not connected yet: an ICMP error that arrived while connect() held the socket lock
        # is only a "soft" error (SO_ERROR stays 0, the kernel keeps retransmitting) but it
        # is in the error queue already: that is the answer.
        errs = [e for e in read_errqueue(sock) if e.origin in ("icmp", "icmp6")]
        if errs:
            return _icmp_result(probe, errs[0], t0, "SYN_SENT soft error")
        time.sleep(0.01)  # spurious wake-up: do not spin
        return None
    return probe.result(ProbeOutcome.OPEN, reply_from=probe.address, rtt_ms=ms_since(t0),
                        detail="connect() completed (SYN-ACK)")


def _connect_failed(sock: socket.socket, probe: ProbeSpec, err: int, t0: float, recverr: bool) -> ProbeResult:
    rtt = ms_since(t0)
    name = errno.errorcode.get(err, str(err))
    if err == errno.ECONNREFUSED:
        # ECONNREFUSED: a RST, or an ICMP port-unreachable (the queue says which).
        for e in read_errqueue(sock):
            if e.origin in ("icmp", "icmp6"):
                return probe.result(ProbeOutcome.CLOSED, reply_from=e.offender, icmp_type=e.icmp_type,
                                    icmp_code=e.icmp_code, rtt_ms=rtt, detail=f"{name}: {e.describe()}")
        return probe.result(ProbeOutcome.CLOSED, reply_from=probe.address, rtt_ms=rtt, detail=f"{name} (RST)")
    for e in read_errqueue(sock):
        if e.origin in ("icmp", "icmp6"):
            return _icmp_result(probe, e, t0, name)
    result = result_from_errno(err)
    detail = f"{name}: {os.strerror(err)}"
    if err == errno.EHOSTUNREACH:
        detail += (" (no ICMP details: EHOSTUNREACH means host-unreachable or admin-prohibited "
                   "3/9, 3/10, 3/13 alike" + ("" if recverr else "; IP_RECVERR unavailable") + ")")
    return probe.result(result, rtt_ms=rtt, detail=detail)


def _icmp_result(probe: ProbeSpec, e: IcmpError, t0: float, what: str) -> ProbeResult:
    res = result_from_icmp(e.icmp_type, e.icmp_code, tcp=True, v6=e.origin is IcmpOrigin.ICMP6)
    return probe.result(res, reply_from=e.offender, icmp_type=e.icmp_type, icmp_code=e.icmp_code,
                        rtt_ms=ms_since(t0), detail=f"{what}: {e.describe()}")
