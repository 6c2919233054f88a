"""ICMP echo: a raw socket (NET_RAW) or the unprivileged ICMP datagram socket.

The datagram ("ping") socket, ``socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)``, is allowed only
for groups in ``net.ipv4.ping_group_range`` (default "1 0": nobody). With IP_RECVERR it also
reports ICMP errors (host-unreachable from the last router...) through the error queue.
"""

from __future__ import annotations

import errno
import os
import random
import select
import socket
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
from toolkit.sockerr import enable_recverr, read_errqueue
from toolkit.sockerr import IcmpOrigin


def ping_socket_allowed(v6: bool = False) -> tuple[bool, str]:
    """Can this process open an ICMP datagram socket? (allowed, why not)"""
    try:
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM,
                          socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    except OSError as exc:
        try:
            with open("/proc/sys/net/ipv4/ping_group_range", encoding="ascii") as fh:
                rng = " ".join(fh.read().split())
        except OSError:
            rng = "?"
        code = errno.errorcode.get(exc.errno, exc.errno) if exc.errno is not None else None
        return False, (f"the ICMP datagram socket is not allowed ({code}; "
                       f"net.ipv4.ping_group_range = {rng}, gid {os.getegid()})")
    s.close()
    return True, ""


def raw_echo(address: str, end: float, *, kind: ProbeKind = ProbeKind.ICMP_ECHO) -> ProbeResult:
    """One echo request on a raw ICMP(v6) socket, replies and errors read until ``end``.

    Needs NET_RAW (PermissionError escapes: the caller decides to fall back)."""
    v6 = ":" in address
    probe = ProbeSpec(address=address, kind=kind)
    if v6:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        sock.setblocking(False)
        ident, seq = random.getrandbits(16), random.getrandbits(16)
        t0 = time.monotonic()
        sock.sendto(packets.icmp_echo(ident, seq, v6=v6), (address, 0))
        res = receive([(sock, _echo_matcher(probe, ident, seq, t0, v6=v6))], end, probe)
        if res is not None:
            return res
        return probe.result(ProbeOutcome.SILENCE, privileged=True,
                            detail=f"no echo reply or ICMP error in {end - t0:.1f} s")
    finally:
        sock.close()


def _echo_matcher(probe: ProbeSpec, ident: int, seq: int, t0: float, *, v6: bool) -> Matcher:
    """The raw ICMP(v6) socket's matcher: our echo reply, or an error quoting our request."""
    def match(data: bytes, src: str) -> ProbeResult | None:
        if v6:
            msg = packets.parse_icmp(data, v6=True)
        else:  # an IPv4 raw socket hands us the IP header
            ip = packets.parse_ipv4(data)
            if ip is None or ip.proto != packets.IPPROTO_ICMP:
                return None
            src, msg = ip.src, packets.parse_icmp(ip.payload)
        return _match(msg, src, probe.address, ident, seq, t0, probe.kind, v6, privileged=True)
    return match


def _match(msg: packets.IcmpMessage | None, src: str, address: str, ident: int | None, seq: int, t0: float,
           kind: ProbeKind, v6: bool, *, privileged: bool) -> ProbeResult | None:
    """An ICMP(v6) message from ``src``: our echo reply (``ident`` None: the kernel chose
    it, datagram socket), or an error quoting our echo request."""
    if msg is None:
        return None
    probe = ProbeSpec(address=address, kind=kind)
    reply_type = 129 if v6 else 0
    if msg.icmp_type == reply_type:
        if src == address and msg.seq == seq and (ident is None or msg.ident == ident):
            return probe.result(ProbeOutcome.REPLY, reply_from=src, icmp_type=msg.icmp_type, icmp_code=msg.code,
                                rtt_ms=ms_since(t0), detail="echo reply", privileged=privileged)
        return None
    if msg.inner_dst != address:
        return None
    echo = msg.inner_echo
    if echo is None or echo[1] != seq or (ident is not None and echo[0] != ident):
        return None
    result = result_from_icmp(msg.icmp_type, msg.code, tcp=False, v6=v6)
    return probe.result(result, reply_from=src, icmp_type=msg.icmp_type, icmp_code=msg.code, rtt_ms=ms_since(t0),
                        detail=f"ICMP{'v6' if v6 else ''} {msg.icmp_type}/{msg.code} from {src}",
                        privileged=privileged)


def dgram_echo(address: str, end: float, *, kind: ProbeKind = ProbeKind.ICMP_ECHO) -> ProbeResult:
    """One echo request on the unprivileged ICMP datagram socket (errors via IP_RECVERR).

    Returns ``not-run`` when net.ipv4.ping_group_range does not allow this process. The
    socket is connected: the kernel matches the answers and queues the ICMP errors on the
    error queue, which poll() reports as POLLERR (``watch``, not ``receive``)."""
    v6 = ":" in address
    probe = ProbeSpec(address=address, kind=kind)
    try:
        sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM,
                             socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    except OSError:
        _ok, why = ping_socket_allowed(v6)
        return probe.not_run(why or "no ICMP datagram socket")
    try:
        enable_recverr(sock)
        sock.setblocking(False)
        seq = random.getrandbits(16)
        t0 = time.monotonic()
        try:
            sock.connect((address, 0))
            sock.send(packets.icmp_echo(0, seq, v6=v6))  # the kernel sets the id and checksum
        except OSError as exc:
            return _local_error(sock, probe, exc.errno or 0, t0)
        res = watch(sock, select.POLLIN | select.POLLERR, end, probe, lambda: _dgram_news(sock, probe, seq, t0, v6=v6))
        if res is not None:
            return res
        return probe.result(ProbeOutcome.SILENCE, detail=f"no echo reply or ICMP error in {end - t0:.1f} s")
    finally:
        sock.close()


def _dgram_news(sock: socket.socket, probe: ProbeSpec, seq: int, t0: float, *, v6: bool) -> ProbeResult | None:
    """The ping socket woke up: a queued ICMP error, our echo reply, or nothing of ours."""
    for e in read_errqueue(sock):
        if e.origin in ("icmp", "icmp6"):
            res = result_from_icmp(e.icmp_type, e.icmp_code, tcp=False, v6=v6)
            return probe.result(res, reply_from=e.offender, icmp_type=e.icmp_type, icmp_code=e.icmp_code,
                                rtt_ms=ms_since(t0), detail=e.describe())
    try:
        data = sock.recv(65535)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError as exc:
        return _local_error(sock, probe, exc.errno or 0, t0)
    return _match(packets.parse_icmp(data, v6=v6), probe.address, probe.address, None, seq, t0, probe.kind, v6,
                  privileged=False)


def _local_error(sock: socket.socket, probe: ProbeSpec, err: int, t0: float) -> ProbeResult:
    """send()/recv() failed: the queued ICMP error says why, else the errno (local)."""
    for e in read_errqueue(sock):
        if e.origin in ("icmp", "icmp6"):
            res = result_from_icmp(e.icmp_type, e.icmp_code, tcp=False, v6=e.origin is IcmpOrigin.ICMP6)
            return probe.result(res, reply_from=e.offender, icmp_type=e.icmp_type, icmp_code=e.icmp_code,
                                rtt_ms=ms_since(t0), detail=e.describe())
    res = result_from_errno(err)
    if res is ProbeOutcome.CLOSED:
        res = ProbeOutcome.ERROR
    return probe.result(res, rtt_ms=ms_since(t0), detail=f"{errno.errorcode.get(err, err)} (local)")
