"""TCP probes of one port: a raw SYN (NET_RAW) or a non-blocking connect() (unprivileged).

Raw SYN (IPv4): a hand-built SYN from a port reserved by binding a TCP socket (so no other
socket gets it, and our kernel answers the SYN-ACK with a RST: the probe stays half-open,
the application never sees a connection). Replies are read on raw TCP and ICMP sockets:
SYN-ACK -> open, RST -> closed, an ICMP error quoting our SYN -> its type/code and the
router that sent it.

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

from toolkit import signals
from toolkit.probe import packets
from toolkit.probe.model import ProbeOutcome, ProbeResult, result_from_errno, result_from_icmp
from toolkit.sockerr import enable_recverr, read_errqueue

MAX_PACKETS = 100_000  # bound on packets examined per attempt (raw sockets see all traffic)


def _ms(t0: float) -> float:
    return (time.monotonic() - t0) * 1000.0


def syn_probe(address: str, port: int, source: str, end: float, *, kind: str = "tcp-syn") -> ProbeResult:
    """One raw SYN to ``address:port`` from ``source``, answers read until ``end`` (monotonic).

    IPv4 and IPv6; needs NET_RAW (PermissionError escapes: the caller decides to fall back)."""
    if ":" in address:
        return syn_probe6(address, port, source, end, kind=kind)
    reserve = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tx = rx_icmp = None
    try:
        reserve.bind((source, 0))
        sport = reserve.getsockname()[1]
        tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        rx_icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        tx.bind((source, 0))
        for s in (tx, rx_icmp):
            s.setblocking(False)
        seq = random.getrandbits(32)
        segment = packets.tcp_syn(source, address, sport, port, seq)
        t0 = time.monotonic()
        tx.sendto(segment, (address, 0))
        seen = 0
        while seen < MAX_PACKETS:
            if signals.stopped():  # SIGINT/SIGTERM: not observed, never "silence"
                return ProbeResult(address=address, kind=kind, port=port, result=ProbeOutcome.NOT_RUN,
                                   detail=signals.cut_detail())
            left = end - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([tx, rx_icmp], [], [], signals.tick(left))
            for s in ready:
                while seen < MAX_PACKETS:
                    try:
                        data = s.recv(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    seen += 1
                    res = (_match_tcp(data, address, port, sport, seq, t0, kind) if s is tx
                           else _match_icmp(data, address, port, sport, t0, kind))
                    if res is not None:
                        return res
        return ProbeResult(
            address=address, kind=kind, port=port, result=ProbeOutcome.SILENCE, rtt_ms=None,
            privileged=True, detail=f"no SYN-ACK, RST or ICMP error in {end - t0:.1f} s")
    finally:
        for s in (tx, rx_icmp, reserve):
            if s is not None:
                s.close()


def syn_probe6(address: str, port: int, source: str, end: float, *, kind: str = "tcp-syn") -> ProbeResult:
    """The IPv6 raw SYN. Unlike IPv4, an IPv6 raw socket never hands us the IP header
    (RFC 3542 3): the sender comes from recvfrom(), the data starts at the TCP header (or
    the ICMPv6 message, whose body quotes our SYN: RFC 4443 3.1)."""
    reserve = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    tx = rx_icmp = None
    try:
        reserve.bind((source, 0))
        sport = reserve.getsockname()[1]
        tx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP)
        rx_icmp = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        tx.bind((source, 0))
        for s in (tx, rx_icmp):
            s.setblocking(False)
        seq = random.getrandbits(32)
        segment = packets.tcp_syn6(source, address, sport, port, seq)
        t0 = time.monotonic()
        tx.sendto(segment, (address, 0))
        seen = 0
        while seen < MAX_PACKETS:
            if signals.stopped():  # SIGINT/SIGTERM: not observed, never "silence"
                return ProbeResult(address=address, kind=kind, port=port, result=ProbeOutcome.NOT_RUN,
                                   detail=signals.cut_detail())
            left = end - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([tx, rx_icmp], [], [], signals.tick(left))
            for s in ready:
                while seen < MAX_PACKETS:
                    try:
                        data, addr = s.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    seen += 1
                    src = addr[0].split("%")[0]
                    if s is tx:
                        res = (_match_segment(packets.parse_tcp(data), address, port, sport, seq, t0, kind)
                               if src == address else None)
                    else:
                        res = _match_icmp_msg(packets.parse_icmp(data, v6=True), src, address, port,
                                              sport, t0, kind, v6=True)
                    if res is not None:
                        return res
        return ProbeResult(address=address, kind=kind, port=port, result=ProbeOutcome.SILENCE, rtt_ms=None, privileged=True,
                           detail=f"no SYN-ACK, RST or ICMPv6 error in {end - t0:.1f} s")
    finally:
        for s in (tx, rx_icmp, reserve):
            if s is not None:
                s.close()


def _match_segment(tcp, address: str, port: int, sport: int, seq: int, t0: float,
                   kind: str) -> ProbeResult | None:
    if tcp is None or tcp.sport != port or tcp.dport != sport:
        return None
    if tcp.syn_ack and tcp.ack == (seq + 1) & 0xFFFFFFFF:
        return ProbeResult(address=address, kind=kind, port=port, result=ProbeOutcome.OPEN, reply_from=address, rtt_ms=_ms(t0), privileged=True,
                           detail="SYN-ACK")
    if tcp.rst:
        return ProbeResult(address=address, kind=kind, port=port, result=ProbeOutcome.CLOSED, reply_from=address, rtt_ms=_ms(t0), privileged=True,
                           detail="RST")
    return None


def _match_icmp_msg(msg, src: str, address: str, port: int, sport: int, t0: float, kind: str, *,
                    v6: bool) -> ProbeResult | None:
    if (msg is None or msg.inner_dst != address or msg.inner_proto != packets.IPPROTO_TCP
            or msg.inner_ports != (sport, port)):
        return None
    result = result_from_icmp(msg.icmp_type, msg.code, tcp=True, v6=v6)
    return ProbeResult(address=address, kind=kind, port=port, result=result, reply_from=src, icmp_type=msg.icmp_type, icmp_code=msg.code, rtt_ms=_ms(t0),
                       detail=f"ICMP{'v6' if v6 else ''} {msg.icmp_type}/{msg.code} from {src}", privileged=True)


def _match_tcp(data: bytes, address: str, port: int, sport: int, seq: int, t0: float,
               kind: str) -> ProbeResult | None:
    ip = packets.parse_ipv4(data)
    if ip is None or ip.proto != packets.IPPROTO_TCP or ip.src != address:
        return None
    tcp = packets.parse_tcp(ip.payload)
    if tcp is None or tcp.sport != port or tcp.dport != sport:
        return None
    if tcp.syn_ack and tcp.ack == (seq + 1) & 0xFFFFFFFF:
        return ProbeResult(
            address=address, kind=kind, port=port, result=ProbeOutcome.OPEN, reply_from=address,
            rtt_ms=_ms(t0), privileged=True, detail="SYN-ACK")
    if tcp.rst:
        return ProbeResult(
            address=address, kind=kind, port=port, result=ProbeOutcome.CLOSED, reply_from=address,
            rtt_ms=_ms(t0), privileged=True, detail="RST")
    return None


def _match_icmp(data: bytes, address: str, port: int, sport: int, t0: float,
                kind: str) -> ProbeResult | None:
    ip = packets.parse_ipv4(data)
    if ip is None or ip.proto != packets.IPPROTO_ICMP:
        return None
    msg = packets.parse_icmp(ip.payload)
    if (msg is None or msg.inner_dst != address or msg.inner_proto != packets.IPPROTO_TCP
            or msg.inner_ports != (sport, port)):
        return None
    result = result_from_icmp(msg.icmp_type, msg.code, tcp=True)
    return ProbeResult(
        address=address, kind=kind, port=port, result=result, reply_from=ip.src, icmp_type=msg.icmp_type,
        icmp_code=msg.code, rtt_ms=_ms(t0), detail=f"ICMP {msg.icmp_type}/{msg.code} from {ip.src}",
        privileged=True)


def connect_probe(address: str, port: int, end: float, *, kind: str = "tcp-connect") -> ProbeResult:
    """A non-blocking connect() with IP_RECVERR, watched until ``end`` (monotonic).

    An open port completes the handshake (the socket is then reset with SO_LINGER 0)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        recverr = enable_recverr(sock)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t0 = time.monotonic()
        err = sock.connect_ex((address, port))
        if err not in (0, errno.EINPROGRESS):
            return _connect_failed(sock, address, port, err, t0, kind, recverr)
        poller = select.poll()
        poller.register(sock, select.POLLOUT | select.POLLERR | select.POLLHUP)
        for _ in range(2000):  # bounded: poll returns at once only when there is news, or a 0.2 s slice ends
            if signals.stopped():  # SIGINT/SIGTERM: not observed, never "silence"
                return ProbeResult(address=address, kind=kind, port=port, result=ProbeOutcome.NOT_RUN,
                                   detail=signals.cut_detail())
            left = end - time.monotonic()
            if left <= 0:
                break
            if not poller.poll(max(1, int(signals.tick(left) * 1000))):
                continue
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                return _connect_failed(sock, address, port, err, t0, kind, recverr)
            try:
                sock.getpeername()
            except OSError:
                # Not connected yet: an ICMP error that arrived while connect() held the
                # socket lock is only a "soft" error (SO_ERROR stays 0, the kernel keeps
                # retransmitting) but it is in the error queue already: that is the answer.
                errs = [e for e in read_errqueue(sock) if e.origin in ("icmp", "icmp6")]
                if errs:
                    return _icmp_result(address, port, errs[0], t0, kind, "SYN_SENT soft error")
                time.sleep(0.01)  # spurious wake-up: do not spin
                continue
            return ProbeResult(
                address=address, kind=kind, port=port, result=ProbeOutcome.OPEN, reply_from=address,
                rtt_ms=_ms(t0), detail="connect() completed (SYN-ACK)")
        return ProbeResult(
            address=address, kind=kind, port=port, result=ProbeOutcome.SILENCE,
            detail=f"connect() got no answer in {end - t0:.1f} s " "(the kernel retransmits the SYN after 1 s and 3 s)")
    finally:
        sock.close()


def _connect_failed(sock: socket.socket, address: str, port: int, err: int, t0: float,
                    kind: str, recverr: bool) -> ProbeResult:
    rtt = _ms(t0)
    name = errno.errorcode.get(err, str(err))
    if err == errno.ECONNREFUSED:
        # ECONNREFUSED: a RST, or an ICMP port-unreachable (the queue says which).
        for e in read_errqueue(sock):
            if e.origin in ("icmp", "icmp6"):
                return ProbeResult(
                    address=address, kind=kind, port=port, result=ProbeOutcome.CLOSED,
                    reply_from=e.offender, icmp_type=e.icmp_type, icmp_code=e.icmp_code, rtt_ms=rtt,
                    detail=f"{name}: {e.describe()}")
        return ProbeResult(
            address=address, kind=kind, port=port, result=ProbeOutcome.CLOSED, reply_from=address,
            rtt_ms=rtt, detail=f"{name} (RST)")
    for e in read_errqueue(sock):
        if e.origin in ("icmp", "icmp6"):
            return _icmp_result(address, port, e, t0, kind, name)
    result = result_from_errno(err)
    detail = f"{name}: {os.strerror(err)}"
    if err == errno.EHOSTUNREACH:
        detail += (" (no ICMP details: EHOSTUNREACH means host-unreachable or admin-prohibited "
                   "3/9, 3/10, 3/13 alike" + ("" if recverr else "; IP_RECVERR unavailable") + ")")
    return ProbeResult(
        address=address, kind=kind, port=port, result=result, rtt_ms=rtt, detail=detail)


def _icmp_result(address: str, port: int, e, t0: float, kind: str, what: str) -> ProbeResult:
    res = result_from_icmp(e.icmp_type, e.icmp_code, tcp=True, v6=e.origin == "icmp6")
    return ProbeResult(
        address=address, kind=kind, port=port, result=res, reply_from=e.offender, icmp_type=e.icmp_type,
        icmp_code=e.icmp_code, rtt_ms=_ms(t0), detail=f"{what}: {e.describe()}")
