"""Live capture: an AF_PACKET socket with a kernel BPF filter, decoded on the fast path.

Why not ``scapy.sniff()``: DESIGN.md measured it dropping packets at ~1.5k/s because it
dissects every frame in Python; a plain AF_PACKET socket with a BPF filter stayed lossless to
~16k/s. So scapy does what it is good at here, compiling the BPF filter (through libpcap,
``scapy.arch.common.compile_filter``; imported lazily, never at CLI import), and the frames go
straight from ``recvmsg`` to the pcap writer and ``toolkit.capture.decode``.

The socket is ``SOCK_DGRAM`` (cooked): every interface, ``any`` included, hands over frames
starting at the IP header, so one filter compiled for raw IP fits all of them, and the pcap
is written as Linux cooked SLL (what ``tcpdump -i any`` writes). Kernel receive timestamps
(SO_TIMESTAMPNS) keep latencies right even when the reader falls behind. The kernel's drop
counter (PACKET_STATISTICS) is read at the end and reported.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from toolkit import signals
from toolkit.capture.analysis import Analyzer, AnalyzerConfig
from toolkit.capture.decode import Decoder, DnsEvent
from toolkit.capture.pcapio import LINKTYPE_LINUX_SLL, PcapWriter
from toolkit.capture.session import CaptureResult
from toolkit.errors import CannotObserve, MissingCapability, reraise_bug

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35
DLT_RAW = 12  # libpcap's DLT for "starts at the IP header" on Linux
RCVBUF = 32 << 20
SNAPLEN = 65535
IDLE_TICK_S = 0.2
PROGRESS_EVERY_S = 1.0
DRAIN_S = 0.25  # at the stop, read what is queued for at most this long (inside --deadline's grace)
_TS = struct.Struct("=qq")
_SLL = struct.Struct("!HHH8sH")


def default_filter(ports: tuple[int, ...]) -> str:
    """DNS on its ports (UDP and TCP), plus ICMP errors that may quote DNS packets."""
    ps = sorted(set(ports) | {53})
    return "(" + " or ".join(f"port {p}" for p in ps) + ") or icmp or icmp6"


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def attach_bpf(sock: socket.socket, expression: str) -> tuple[bool, str | None]:
    """Compile ``expression`` for raw IP with libpcap (via scapy) and attach it.

    Returns (attached, reason it was not). Without a kernel filter the capture still works
    (the decoder ignores what is not DNS) but costs more CPU per packet."""
    try:
        from scapy.arch.common import compile_filter  # lazy: ~0.5 s, and only for live capture
    except Exception as exc:  # noqa: BLE001 - scapy/libpcap missing: degrade, say so
        reraise_bug(exc)
        return False, f"cannot load libpcap through scapy ({exc})"
    try:
        prog = compile_filter(expression, linktype=DLT_RAW)
    except Exception as exc:  # noqa: BLE001 - a bad expression is reported by the caller
        reraise_bug(exc)
        raise CannotObserve(f"--filter {expression!r}: libpcap cannot compile it ({exc})",
                            hint="use tcpdump filter syntax, e.g. 'udp port 53 or tcp port 53'") from None
    fprog = _Fprog(prog.bf_len, ctypes.cast(prog.bf_insns, ctypes.c_void_p))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))
    return True, None


def _stats(sock: socket.socket) -> tuple[int, int]:
    try:
        raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        return struct.unpack("=II", raw)
    except OSError:
        return 0, 0


def open_socket(interface: str) -> socket.socket:
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    except PermissionError:
        raise MissingCapability("NET_RAW", "live capture") from None
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise MissingCapability("NET_RAW", "live capture") from None
        raise CannotObserve(f"cannot open a packet socket: {exc.strerror or exc}") from None
    if interface and interface != "any":
        try:
            sock.bind((interface, ETH_P_ALL))
        except OSError as exc:
            sock.close()
            raise CannotObserve(f"interface {interface!r}: {exc.strerror or exc}",
                                hint="list the pod's interfaces with `ip -br link`, or use --interface any") from None
    return sock


def capture_live(*, interface: str = "any", duration: float | None = None, count: int | None = None,
                 bpf: str | None = None, ports: tuple[int, ...] = (53,), write: str | None = None,
                 config: AnalyzerConfig | None = None, sink: Callable[[Any], None] | None = None,
                 on_progress: Callable[[int, float], None] | None = None, deadline: Any = None,
                 who: Callable | None = None, stop: threading.Event | None = None,
                 on_ready: Callable[[str], None] | None = None) -> CaptureResult:
    """Capture until ``duration``, ``count``, ``deadline``, SIGINT/SIGTERM or ``stop``.

    Always closes the pcap (valid to the last packet: it is flushed per packet) and returns
    the analysis of what was seen."""
    expression = bpf or default_filter(ports)
    sock = open_socket(interface)
    notes: list[str] = []
    writer = None
    stop = stop or threading.Event()
    try:
        try:
            with signals.abortable():
                attached, why = attach_bpf(sock, expression)
        except KeyboardInterrupt:
            if not signals.stopped():
                raise
            # SIGINT/SIGTERM while scapy/libpcap loaded: no packet was read yet; the loop
            # below sees the stop at once and the (empty) report says so.
            attached, why = False, f"{signals.describe()} arrived before the filter was compiled"
        if not attached:
            notes.append(f"no kernel filter ({why}): every packet is read and filtered in Python")
        # Packets queued between socket() and the filter are unfiltered: drain them.
        sock.setblocking(False)
        for _ in range(100_000):
            try:
                sock.recv(1)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
        _stats(sock)  # reading resets the counters
        for opt, val in ((SO_RCVBUFFORCE, RCVBUF), (socket.SO_RCVBUF, RCVBUF)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, val)
                break
            except OSError:
                continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            notes.append("no kernel timestamps: latencies include the reader's own delay")
        sock.settimeout(IDLE_TICK_S)
        if write:
            writer = PcapWriter(write, LINKTYPE_LINUX_SLL, snaplen=SNAPLEN)
        decoder = Decoder(ports)
        analyzer = Analyzer(config, sink=sink, who=who)
        if who is not None and hasattr(who, "start"):
            who.start(ports)  # the sock_diag watch for short-lived sockets (whoasked.py)
        if on_ready is not None:
            on_ready(expression)
        # SIGINT/SIGTERM: the one cooperative stop every command shares (toolkit.signals).
        with signals.cooperative():
            res = _loop(sock, writer, decoder, analyzer, interface, duration, count, deadline, on_progress,
                        stop, expression, notes)
        if who is not None and hasattr(who, "stats"):
            who.stop()
            st = who.stats()
            s = res.summary
            if s.lookups_total:
                # attributed or not, never guessed: only sockets seen open by a process count
                res = dataclasses.replace(res, notes=res.notes + (
                    f"who asked: process known for {s.lookups_attributed} of {s.lookups_total} lookups "
                    f"({st['method']}, {st['cpu_s']:.2f} s CPU)",), extra={**res.extra, "who_asked": st})
            else:
                res = dataclasses.replace(res, extra={**res.extra, "who_asked": st})
        return res
    finally:
        if who is not None and hasattr(who, "stop"):
            who.stop()
        if writer is not None:
            writer.close()
        sock.close()


def _loop(sock, writer, decoder, analyzer, interface, duration, count, deadline, on_progress, stop,
          expression, notes) -> CaptureResult:
    t0 = time.monotonic()
    ends = []
    if duration is not None:
        ends.append(t0 + duration)
    if deadline is not None:  # leave the drain (and the report) inside --deadline
        ends.append(t0 + max(0.0, deadline.remaining() - DRAIN_S))
    end_at = min(ends) if ends else None
    stopped = "end"
    frames = 0
    recvmsg = sock.recvmsg
    signals_stopped = signals.stopped
    decode = decoder.decode
    feed = analyzer.feed
    tick = analyzer.tick
    unpack_ts = _TS.unpack
    pack_sll = _SLL.pack
    write = writer.write if writer is not None else None
    saw = getattr(analyzer.who, "saw_query", None)
    next_tick = t0 + IDLE_TICK_S
    next_progress = t0 + PROGRESS_EVERY_S
    kernel_packets = kernel_drops = 0
    drain_until = None  # set at the stop: the packets the kernel already queued are read too
    while True:  # bounded by duration/count/deadline/signals (the socket times out every 0.2 s)
        now = time.monotonic()
        if drain_until is not None:
            if now >= drain_until:
                break
        elif count is not None and frames >= count:
            stopped = "count"  # exactly N packets were asked for: the rest is not ours to read
            break
        else:
            if stop.is_set() or signals_stopped():
                stopped = "signal"
            elif end_at is not None and now >= end_at:
                stopped = "duration" if duration is not None and (deadline is None or t0 + duration <= end_at + 1e-6) \
                    else "deadline"
            if stopped != "end":
                # The ring still holds what arrived before the stop while the analysis was
                # behind: read it for a bounded time (DRAIN_S), without waiting for more;
                # whatever is left is counted below as unread, never passed off as no loss.
                drain_until = now + DRAIN_S
                sock.setblocking(False)
                continue
        if now >= next_tick:
            next_tick = now + IDLE_TICK_S
            tick(time.time())
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY_S
                p, d = _stats(sock)
                kernel_packets += p
                kernel_drops += d
                if on_progress is not None:
                    on_progress(frames, frames / max(now - t0, 1e-9))
        try:
            data, anc, _flags, addr = recvmsg(SNAPLEN, 64)
        except (socket.timeout, BlockingIOError):
            if drain_until is not None:
                break  # the queue is empty: drained
            continue
        except InterruptedError:
            continue
        ts_ns = 0
        for level, ctype, cdata in anc:
            if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(cdata) >= 16:
                sec, nsec = unpack_ts(cdata[:16])
                ts_ns = sec * 1_000_000_000 + nsec
        if not ts_ns:
            ts_ns = time.time_ns()
        frames += 1
        if write is not None:
            # Linux cooked header (what tcpdump -i any writes): packet type, ARPHRD, address, protocol
            _ifname, proto, pkttype, hatype, hwaddr = addr[:5]
            hw = hwaddr[:8]
            write(ts_ns, pack_sll(pkttype, hatype, len(hw), hw.ljust(8, b"\0"), proto) + data)
        for ev in decode(ts_ns, 101, data):
            if saw is not None and type(ev) is DnsEvent and not ev.flags & 0x8000:
                saw(ev.src, ev.sport, ev.dst, ev.dport, ev.transport, ev.ts)  # who asked, while it is open
            feed(ev)
    p, d = _stats(sock)
    kernel_packets += p
    kernel_drops += d
    # PACKET_STATISTICS counts every packet the filter accepted, drops included (af_packet.c
    # packet_getsockopt adds tp_drops to tp_packets): what was queued but never read is the
    # rest. With --count the queue beyond N packets was not asked for: not reported.
    unread = max(0, kernel_packets - kernel_drops - frames) if stopped != "count" else 0
    if unread:
        notes.append(f"{unread} packets were still queued unread when the capture stopped (the analysis "
                     f"fell behind; {DRAIN_S:g} s of draining did not reach the end of the queue)")
    analyzer.finish(time.time())
    elapsed = time.monotonic() - t0
    return CaptureResult("live", interface, frames, analyzer.summary(), decoder.counters(), ("linux-sll",),
                         "pcap" if writer else None, stopped, elapsed, kernel_packets, kernel_drops,
                         writer.path if writer else None, writer.packets if writer else 0, expression,
                         tuple(notes), unread=unread)
