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
import os
import platform
import socket
import struct
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING

from toolkit import signals
from toolkit.capture.analysis import Analyzer, Sink
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.decode import Decoder
from toolkit.capture.dnswire import FLAG_QR, DnsEvent
from toolkit.capture.pcapio import LINKTYPE_LINUX_SLL, LINKTYPE_RAW, CaptureFormat, PcapWriter
from toolkit.capture.records import CaptureMode, CaptureResult, StopReason
from toolkit.capture.hints import QueryHints
from toolkit.capture.localaddrs import read_addresses, source_filter
from toolkit.capture.ring import Ring
from toolkit.deadline import Deadline
from toolkit.errors import CannotObserve, MissingCapability, best_effort

if TYPE_CHECKING:
    from toolkit.capture.whoasked import WhoAsked

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
TICK_LAG_S = 0.25  # a block being filled hands its frames over within the retire timeout (4 ms), later under load
DRAIN_S = 0.25  # at the stop, read what is queued for at most this long (inside --deadline's grace)
_TS = struct.Struct("=qq")
_SLL = struct.Struct("!HHH8sH")
Progress = Callable[[int, float], None]  # (frames so far, frames per second)


class CapturePath(StrEnum):
    """How the frames came from the kernel (the report's ``capture_path``)."""

    RING = "tpacket_v3"  # the memory-mapped TPACKET_V3 ring, a block per wake-up (ring.py)
    RECVMSG = "recvmsg"  # one recvmsg per packet (the fallback; ``capture_path_reason`` says why)


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
    with best_effort(None, "loading libpcap") as loading:  # scapy/libpcap missing: degrade, say so
        from scapy.arch.common import compile_filter  # lazy: ~0.5 s, and only for live capture
    if loading.error is not None:
        return False, f"cannot load libpcap through scapy ({loading.error})"
    with best_effort(None, "compiling the filter") as compiling:
        prog = compile_filter(expression, linktype=DLT_RAW)
    if compiling.error is not None:
        raise CannotObserve(f"--filter {expression!r}: libpcap cannot compile it ({compiling.error})",
                            hint="use tcpdump filter syntax, e.g. 'udp port 53 or tcp port 53'") from None
    fprog = _Fprog(prog.bf_len, ctypes.cast(prog.bf_insns, ctypes.c_void_p))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))
    return True, None


def _stats(sock: socket.socket) -> tuple[int, int]:
    """The kernel's (packets, drops) since the last call: reading resets them."""
    try:
        raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
    except OSError:
        return 0, 0
    packets, drops = struct.unpack("=II", raw)
    return packets, drops


def open_socket(interface: str) -> socket.socket:
    """A cooked AF_PACKET socket on ``interface`` (all of them for "any"); NET_RAW needed."""
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
                 config: AnalyzerConfig | None = None, sink: Sink | None = None,
                 on_progress: Progress | None = None, deadline: Deadline | None = None,
                 who: WhoAsked | None = None, stop: threading.Event | None = None,
                 on_ready: Callable[[str], None] | None = None) -> CaptureResult:
    """Capture until ``duration``, ``count``, ``deadline``, SIGINT/SIGTERM or ``stop``.

    Always closes the pcap (valid to the last packet: it is flushed per packet) and returns
    the analysis of what was seen."""
    expression = bpf or default_filter(ports)
    sock = open_socket(interface)
    writer = ring = hints = None
    try:
        notes = _prepare(sock, expression)
        ring, no_ring = _open_ring(sock, notes)
        hints = _open_hints(interface, ports, notes) if ring is not None and who is not None else None
        if hints is not None and ring is not None:
            ring.watch(hints.fd)
        if write:
            writer = PcapWriter(write, LINKTYPE_LINUX_SLL, snaplen=SNAPLEN)
        run = _Run(sock=sock, ring=ring, hints=hints, writer=writer, decoder=Decoder(ports),
                   analyzer=Analyzer(config, sink=sink, who=who), who=who, interface=interface,
                   expression=expression, own_filter=bpf is None,
                   duration=duration, count=count, no_ring=no_ring,
                   deadline=deadline, on_progress=on_progress, stop=stop or threading.Event())
        if who is not None:
            who.start()  # the sock_diag watch for short-lived sockets (whoasked.py)
        if on_ready is not None:
            on_ready(expression)
        # SIGINT/SIGTERM: the one cooperative stop every command shares (toolkit.signals).
        with signals.cooperative():
            res = _Reader(run).read(notes)
        if who is not None:
            who.stop()
            res = _with_who(res, who)
        return res
    finally:
        if who is not None:
            who.stop()
        if writer is not None:
            writer.close()
        if ring is not None:
            ring.close()
        if hints is not None:
            hints.close()
        sock.close()


def _prepare(sock: socket.socket, expression: str) -> list[str]:
    """The kernel filter, an empty queue, a big buffer, kernel timestamps; returns notes
    about what could not be had."""
    notes: list[str] = []
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
        except OSError:  # BlockingIOError (empty), InterruptedError, or another error: done
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
    return notes


_TSO_MACHINES = frozenset({"x86_64", "AMD64", "i686", "i386"})  # total store order: loads stay in order
RING_ENV = "PODTRIAGE_CAPTURE_RING"  # "0": the recvmsg path (a fallback kept tested, and the bench's baseline)


def _open_ring(sock: socket.socket, notes: list[str]) -> tuple[Ring | None, str | None]:
    """The TPACKET_V3 ring on the filtered socket, or None and why (also a note) for the recvmsg path.

    The filter is attached before the ring exists, so every frame in the ring passed it; what
    the socket's ordinary queue took between _prepare's drain and the ring is discarded here
    like the rest of what came before the capture began, and the counters are reset again."""
    if os.environ.get(RING_ENV, "1") == "0":
        why = f"{RING_ENV}=0"
        notes.append(f"memory-mapped ring off ({why}): one recvmsg per packet")
        return None, why
    if platform.machine() not in _TSO_MACHINES:
        # The kernel publishes a block with smp_wmb() before its status word
        # (net/packet/af_packet.c prb_close_block); the reader needs a read barrier between the
        # status and the frames, which x86's total store order gives for free and Python
        # cannot issue on weakly ordered CPUs (arm64).
        why = f"no read barrier from Python on {platform.machine() or 'this CPU'}"
        notes.append(f"memory-mapped ring not used ({why}): one recvmsg per packet")
        return None, why
    try:
        ring = Ring(sock)
    except (OSError, ValueError) as exc:  # old kernel, no memory for the ring, mmap refused
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        notes.append(f"no memory-mapped ring ({why}): one recvmsg per packet, slower under load")
        return None, f"the kernel refused the ring: {why}"
    sock.setblocking(False)
    for _ in range(100_000):
        try:
            sock.recv(1)
        except OSError:  # empty (the socket is non-blocking since _prepare): done
            break
    ring.discard()
    _stats(sock)
    return ring, None


def _open_hints(interface: str, ports: tuple[int, ...], notes: list[str]) -> QueryHints | None:
    """Who-asked's per-query wake-up beside the ring (hints.py), or None and a note."""
    try:
        return QueryHints(interface, ports, open_socket, attach_bpf, source_filter(read_addresses()))
    except (OSError, ValueError, CannotObserve, MissingCapability) as exc:
        notes.append(f"who asked: no query socket beside the ring ({exc}): short-lived sockets "
                     "may close before their block is read")
        return None


def _with_who(res: CaptureResult, who: WhoAsked) -> CaptureResult:
    """The result with who-asked's statistics (and a note on how many lookups it named)."""
    st = who.stats()
    s = res.summary
    if not s.lookups_total:
        return dataclasses.replace(res, extra={**res.extra, "who_asked": st})
    # attributed or not, never guessed: only sockets seen open by a process count
    return dataclasses.replace(res, notes=res.notes + (
        f"who asked: process known for {s.lookups_attributed} of {s.lookups_total} lookups "
        f"({st['method']}, {st['cpu_s']:.2f} s CPU)",), extra={**res.extra, "who_asked": st})


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Run:
    """What one live capture reads from, writes to, feeds, and when it stops."""

    sock: socket.socket
    ring: Ring | None  # the TPACKET_V3 ring (toolkit.capture.ring), or None: recvmsg per packet
    hints: QueryHints | None  # with the ring and who-asked: the outgoing-query socket (hints.py)
    no_ring: str | None  # why the recvmsg path runs (None: the ring's)
    writer: PcapWriter | None
    decoder: Decoder
    analyzer: Analyzer
    who: WhoAsked | None
    interface: str
    expression: str
    own_filter: bool  # podtriage's default filter: both directions of every DNS port
    duration: float | None
    count: int | None
    deadline: Deadline | None
    on_progress: Progress | None
    stop: threading.Event


class _Reader:
    """The receive loop of one live capture, and its counts."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.t0 = time.monotonic()
        ends = []
        if run.duration is not None:
            ends.append(self.t0 + run.duration)
        if run.deadline is not None:  # leave the drain (and the report) inside --deadline
            ends.append(self.t0 + max(0.0, run.deadline.remaining() - DRAIN_S))
        self.end_at = min(ends) if ends else None
        self.frames = 0
        self.kernel_packets = self.kernel_drops = 0
        self.next_tick = self.t0 + IDLE_TICK_S
        self.next_progress = self.t0 + PROGRESS_EVERY_S
        self.stopped = StopReason.END
        self.drain_until: float | None = None
        self.last_ts_ns = 0  # kernel time of the last frame fed: the analysis clock while behind

    def read(self, notes: list[str]) -> CaptureResult:
        """Read until the stop, then the analysis of what was read."""
        run = self.run
        stopped = self._loop()
        self._kernel_stats()
        # PACKET_STATISTICS counts every packet the filter accepted, drops included (af_packet.c
        # packet_getsockopt adds tp_drops to tp_packets): what was queued but never read is the
        # rest. With --count the queue beyond N packets was not asked for: not reported.
        unread = (max(0, self.kernel_packets - self.kernel_drops - self.frames)
                  if stopped != StopReason.COUNT else 0)
        if unread:
            notes.append(f"{unread} packets were still queued unread when the capture stopped (the analysis "
                         f"fell behind; {DRAIN_S:g} s of draining did not reach the end of the queue)")
        run.analyzer.finish(time.time())
        writer = run.writer
        return CaptureResult(mode=CaptureMode.LIVE, source=run.interface, packets=self.frames,
                             summary=run.analyzer.summary(), decoder=run.decoder.counters(),
                             linktypes=("linux-sll",), file_format=CaptureFormat.PCAP if writer else None,
                             stopped_by=stopped, elapsed_s=time.monotonic() - self.t0,
                             kernel_packets=self.kernel_packets, kernel_drops=self.kernel_drops,
                             written=writer.path if writer else None,
                             written_packets=writer.packets if writer else 0, filter=run.expression,
                             notes=tuple(notes), unread=unread, both_directions=run.own_filter or None,
                             extra={"capture_path": CapturePath.RING if run.ring is not None else CapturePath.RECVMSG,
                                    "capture_path_reason": run.no_ring})

    def _go_on(self, now: float) -> bool:
        """Whether the loop reads on: at the stop (signal, duration, deadline) the packets the
        kernel already queued are read for DRAIN_S, without waiting for more; with --count
        exactly N packets were asked for, the rest is not ours to read."""
        if self.drain_until is not None:
            return now < self.drain_until
        count = self.run.count
        if count is not None and self.frames >= count:
            self.stopped = StopReason.COUNT
            return False
        self.stopped = self._stop_reason(now)
        if self.stopped != StopReason.END:
            # whatever is left after DRAIN_S is counted as unread, never passed off as no loss
            self.drain_until = now + DRAIN_S
            self.run.sock.setblocking(False)
        elif now >= self.next_tick:
            self._idle(now)
        return True

    def _loop(self) -> StopReason:
        run = self.run
        if run.ring is not None:
            return self._ring_loop(run.ring)
        recvmsg = run.sock.recvmsg
        write = run.writer.write if run.writer is not None else None
        feed = self._feeder()
        while self._go_on(time.monotonic()):  # bounded by duration/count/deadline/signals (0.2 s timeouts)
            try:
                data, anc, _flags, addr = recvmsg(SNAPLEN, 64)
            except (TimeoutError, BlockingIOError):
                if self.drain_until is not None:
                    break  # the queue is empty: drained
                continue
            except InterruptedError:
                continue
            ts_ns = _kernel_ts(anc)
            self.frames += 1
            self.last_ts_ns = ts_ns
            if write is not None:
                write(ts_ns, _sll_header(addr) + data)
            feed(ts_ns, data)
        return self.stopped

    def _ring_loop(self, ring: Ring) -> StopReason:
        """The TPACKET_V3 path: a block of frames per wake-up, decoded in one loop."""
        write = self.run.writer.write if self.run.writer is not None else None
        # who-asked's sock_diag watch itself, as _feeder does (none: nothing to tell it)
        watch = self.run.who.watch if self.run.who is not None else None
        hints, saw = self.run.hints, watch.saw_query if watch is not None else None
        feed = self._feeder(saw=hints is None)
        count = self.run.count
        while self._go_on(now := time.monotonic()):
            drain_until = self.drain_until
            # draining: the block being filled is handed over within the retire timeout
            wait = IDLE_TICK_S if drain_until is None else min(3 * ring.retire_s, max(0.0, drain_until - now))
            ready = ring.wait(wait)
            if hints is not None and saw is not None:
                hints.read(saw, time.time)
            if not ready:
                if drain_until is not None and not self._behind():
                    break  # nothing more queued: drained
                continue
            ts_ns = 0
            for ts_ns, sll, data, length in ring.frames(sll=write is not None):
                if count is not None and self.frames >= count:
                    break
                self.frames += 1
                if write is not None:
                    write(ts_ns, sll + data, length + len(sll))
                feed(ts_ns, data)
            self.last_ts_ns = ts_ns or self.last_ts_ns
        return self.stopped

    def _behind(self) -> bool:
        """The kernel counted frames into the ring that were not read yet (the block being
        filled retires on its timer, later than asked for on a loaded machine)."""
        self._kernel_stats()
        return self.kernel_packets - self.kernel_drops > self.frames

    def _feeder(self, *, saw: bool = True) -> Callable[[int, bytes], None]:
        """Decode one IP packet and feed its events to the analysis (and who-asked, unless
        its query socket beside the ring does that)."""
        run = self.run
        decode = run.decoder.decode
        feed = run.analyzer.feed
        # who-asked's sock_diag watch, started before the reader (none: nothing to tell it)
        watch = run.who.watch if run.who is not None else None
        saw_query = watch.saw_query if watch is not None and saw else None
        saw_sent = watch.saw_sent if watch is not None and not saw else None
        saw_answer = watch.saw_answer if watch is not None else None

        def one(ts_ns: int, data: bytes) -> None:
            for ev in decode(ts_ns, LINKTYPE_RAW, data):
                if saw_answer is not None and type(ev) is DnsEvent:
                    if ev.flags & FLAG_QR:  # was its query's look before this answer? (whoasked.py)
                        saw_answer(ev.dst, ev.dport, ev.transport, ev.txid, ev.ts)
                    elif saw_query is not None:  # who asked, while it is open
                        saw_query(ev.src, ev.sport, ev.dst, ev.dport, ev.transport, ev.ts, ev.txid, True)
                    elif saw_sent is not None:  # its hint was looked up: now its exact time
                        saw_sent(ev.src, ev.sport, ev.transport, ev.txid, ev.ts)
                feed(ev)
        return one

    def _stop_reason(self, now: float) -> StopReason:
        run = self.run
        if run.stop.is_set() or signals.stopped():
            return StopReason.SIGNAL
        end_at = self.end_at
        if end_at is not None and now >= end_at:
            if run.duration is not None and (run.deadline is None or self.t0 + run.duration <= end_at + 1e-6):
                return StopReason.DURATION
            return StopReason.DEADLINE
        return StopReason.END

    def _idle(self, now: float) -> None:
        """Every IDLE_TICK_S: expiries in the analyzer at the capture's clock (analysis_clock);
        every second the kernel's counts (and progress)."""
        self.next_tick = now + IDLE_TICK_S
        clock = self.analysis_clock()
        if clock is not None:
            self.run.analyzer.tick(clock)
        if now >= self.next_progress:
            self.next_progress = now + PROGRESS_EVERY_S
            self._kernel_stats()
            if self.run.on_progress is not None:
                self.run.on_progress(self.frames, self.frames / max(now - self.t0, 1e-9))

    def analysis_clock(self) -> float | None:
        """The time up to which every frame was read: what the analyzer may expire by.

        The wall clock only when nothing is queued unread (less TICK_LAG_S for a block still
        being filled); while the reader is behind, the kernel time of the last frame it fed,
        since frames still in the queue are older than now. Ticking at wall time then closed
        search-list chains whose next query sat unread (measured: tcpreplay of 420k real
        packets at 20k/s, 2 of 53,624 lookups split under load, capture_replay.py); None:
        behind and nothing read yet, no tick."""
        last = self.last_ts_ns / 1e9 if self.last_ts_ns else None
        if self._behind():
            return last
        wall = time.time() - TICK_LAG_S
        return wall if last is None else max(last, wall)

    def _kernel_stats(self) -> None:
        p, d = _stats(self.run.sock)
        self.kernel_packets += p
        self.kernel_drops += d


def _kernel_ts(anc: list[tuple[int, int, bytes]]) -> int:
    """The frame's kernel receive time (SO_TIMESTAMPNS), in ns; now when there is none."""
    for level, ctype, cdata in anc:
        if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(cdata) >= 16:
            sec, nsec = _TS.unpack(cdata[:16])
            ts_ns: int = sec * 1_000_000_000 + nsec
            if ts_ns:
                return ts_ns
    return time.time_ns()


def _sll_header(addr: tuple[str, int, int, int, bytes]) -> bytes:
    """The Linux cooked header (what tcpdump -i any writes): packet type, ARPHRD, address,
    protocol, from the packet socket's address of the frame."""
    _ifname, proto, pkttype, hatype, hwaddr = addr[:5]
    hw = hwaddr[:8]
    return _SLL.pack(pkttype, hatype, len(hw), hw.ljust(8, b"\0"), proto)
