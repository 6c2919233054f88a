"""The A/B race test: the same lookups sent three ways to one DNS address.

* ``parallel``: A and AAAA back to back from one connected UDP socket (glibc and musl by
  default): both packets share a 5-tuple and race to create one conntrack entry.
* ``reopen``: A, then AAAA on a fresh socket after the A answer (glibc
  ``single-request-reopen``): two tuples, no race.
* ``tcp``: both queries over one TCP connection (``use-vc``).

A query without an answer within ``timeout`` is lost; a lookup with a lost query is a stall
(the application would wait for resolv.conf's ``timeout``, 5 s by default). Losses only in the
parallel mode point at a conntrack/NAT race on the path. Conntrack counters are read before
and after each mode. Lookups run ``concurrency`` at a time (each on its own sockets, so they
cannot race each other); every mode gets an equal share of the deadline.
"""

from __future__ import annotations

import errno
import ipaddress
import selectors
import socket
import struct
import time
from collections import Counter as Tally
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from toolkit import signals
from toolkit.deadline import Deadline

if TYPE_CHECKING:
    import dns.message

    from toolkit.conntrack.stats import Counters
    from toolkit.sysinfo.procs import ProcInfo


class RaceMode(StrEnum):
    """How the A and AAAA queries of one lookup are sent (the module docstring)."""

    PARALLEL = "parallel"
    REOPEN = "reopen"
    TCP = "tcp"


MODES = tuple(RaceMode)
MAX_COUNT = 5000
MAX_CONCURRENCY = 64
DEFAULT_NAME = "kubernetes.default.svc.cluster.local."


@dataclass(frozen=True, kw_only=True)
class ModeResult:
    """What one mode of the race test saw: queries sent and lost, stalls, latency, and the
    conntrack counters that moved meanwhile."""

    mode: RaceMode
    lookups: int  # lookups completed (answered or timed out)
    queries: int  # queries sent
    answered: int
    lost: int  # sent, no answer within the timeout
    stalled: int  # lookups with at least one lost query
    not_run: int  # lookups not started or cut by the deadline
    errors: Mapping[str, int]  # timeout, refused, reset, ...
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    latency_ms_max: float | None
    duration_s: float
    counters_delta: Mapping[str, int] | None = None  # conntrack counters moved during this mode

    __json_properties__ = ("loss_rate", "stall_rate")

    @property
    def loss_rate(self) -> float:
        """Lost queries over queries sent."""
        return self.lost / self.queries if self.queries else 0.0

    @property
    def stall_rate(self) -> float:
        """Stalled lookups over lookups completed."""
        return self.stalled / self.lookups if self.lookups else 0.0

    def describe(self) -> str:
        """One line for evidence: losses, stalls, latency, counters moved."""
        text = (f"{self.mode}: {self.lost}/{self.queries} queries lost ({100 * self.loss_rate:.1f} %), "
                f"{self.stalled}/{self.lookups} lookups stalled")
        if self.latency_ms_p50 is not None:
            text += f", p50 {self.latency_ms_p50:.1f} ms, p99 {self.latency_ms_p99:.1f} ms"
        if self.not_run:
            text += f", {self.not_run} not run (deadline)"
        if self.counters_delta:
            moved = {k: v for k, v in self.counters_delta.items() if v}
            if moved:
                text += ", conntrack " + " ".join(f"{k}+{v}" for k, v in moved.items())
        return text


@dataclass(frozen=True, kw_only=True)
class RaceResult:
    """A race test: the lookups asked, each mode's result, the visible processes' libc."""

    target: str
    port: int
    name: str
    count: int
    timeout_s: float
    modes: tuple[ModeResult, ...]
    counters_source: str | None = None
    netns_label: str = ""
    processes: tuple[ProcInfo, ...] = ()  # visible processes (with their libc)
    notes: tuple[str, ...] = ()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


@dataclass(kw_only=True)
class _Query:
    qtype: str
    msg: dns.message.Message
    wire: bytes
    sent: float | None = None
    answered: float | None = None
    error: str | None = None


@dataclass(kw_only=True)
class _Lookup:
    mode: RaceMode
    queries: list[_Query]
    started: float = 0.0
    expires: float = 0.0
    socks: list[socket.socket] = field(default_factory=list)
    step: int = 0  # reopen: which query is in flight
    tcp_buf: bytes = b""
    tcp_sent: bool = False
    done: bool = False


class _Engine:
    """The lookups of one mode in flight, on one selector."""

    def __init__(self, target: str, port: int, name: str, timeout: float, mode: RaceMode) -> None:
        self.addr = (target, port)
        self.family = socket.AF_INET6 if ipaddress.ip_address(target).version == 6 else socket.AF_INET
        self.name, self.timeout, self.mode = name, timeout, mode
        self.sel = selectors.DefaultSelector()

    def new_lookup(self) -> _Lookup:
        from toolkit.dns.query import make_query

        qs = []
        for qtype in ("A", "AAAA"):
            m = make_query(self.name, qtype, edns=False)  # glibc sends no EDNS by default
            qs.append(_Query(qtype=qtype, msg=m, wire=m.to_wire()))
        if qs[0].msg.id == qs[1].msg.id:  # the two must be told apart
            qs[1].msg.id = (qs[1].msg.id + 1) & 0xFFFF
            qs[1].wire = qs[1].msg.to_wire()
        return _Lookup(mode=self.mode, queries=qs)

    # -- sockets -------------------------------------------------------------------------
    def _udp(self, lk: _Lookup) -> socket.socket:
        s = socket.socket(self.family, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.connect(self.addr)
        lk.socks.append(s)
        self.sel.register(s, selectors.EVENT_READ, lk)
        return s

    def _close(self, lk: _Lookup) -> None:
        for s in lk.socks:
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        lk.socks.clear()

    def start(self, lk: _Lookup, now: float) -> None:
        lk.started = now
        lk.expires = now + self.timeout
        try:
            if self.mode is RaceMode.PARALLEL:
                s = self._udp(lk)
                for q in lk.queries:  # back to back, like glibc's sendmmsg
                    q.sent = time.monotonic()
                    s.send(q.wire)
            elif self.mode is RaceMode.REOPEN:
                self._send_reopen(lk)
            else:
                s = socket.socket(self.family, socket.SOCK_STREAM)
                s.setblocking(False)
                lk.socks.append(s)
                err = s.connect_ex(self.addr)
                if err not in (0, errno.EINPROGRESS):
                    self._fail(lk, _errname(err))
                    return
                self.sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ, lk)
                for q in lk.queries:
                    q.sent = time.monotonic()
        except OSError as exc:
            self._fail(lk, _kind(exc))

    def _send_reopen(self, lk: _Lookup) -> None:
        q = lk.queries[lk.step]
        s = self._udp(lk)
        q.sent = time.monotonic()
        lk.expires = q.sent + self.timeout
        s.send(q.wire)

    def _fail(self, lk: _Lookup, kind: str) -> None:
        for q in lk.queries:
            if q.answered is None and q.error is None:
                q.error = kind
                if q.sent is None:
                    q.sent = time.monotonic()
        self._finish(lk)

    def _finish(self, lk: _Lookup) -> None:
        self._close(lk)
        lk.done = True

    def _match(self, lk: _Lookup, data: bytes, now: float) -> None:
        import dns.exception
        import dns.message

        try:
            r = dns.message.from_wire(data, ignore_trailing=True)
        except dns.exception.DNSException:
            return
        for q in lk.queries:
            if q.answered is None and q.sent is not None and q.msg.is_response(r):
                q.answered = now
                return

    def on_event(self, key: selectors.SelectorKey, mask: int) -> None:
        lk: _Lookup = key.data
        s = key.fileobj
        assert isinstance(s, socket.socket)  # only sockets are registered
        now = time.monotonic()
        if self.mode is RaceMode.TCP:
            self._on_tcp(lk, s, mask, now)
            return
        for _ in range(8):  # bounded drain
            try:
                data = s.recv(65535)
            except BlockingIOError:
                break
            except OSError as exc:  # ICMP port-unreachable on a connected socket, ...
                if self.mode is RaceMode.REOPEN:
                    lk.queries[lk.step].error = _kind(exc)
                    self._next_reopen(lk)
                else:
                    self._fail(lk, _kind(exc))
                return
            self._match(lk, data, now)
        self._progress(lk)

    def _on_tcp(self, lk: _Lookup, s: socket.socket, mask: int, now: float) -> None:
        if not lk.tcp_sent and mask & selectors.EVENT_WRITE:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._fail(lk, _errname(err))
                return
            try:  # glibc use-vc writes both queries before reading
                s.sendall(b"".join(struct.pack("!H", len(q.wire)) + q.wire for q in lk.queries))
            except OSError as exc:
                self._fail(lk, _kind(exc))
                return
            lk.tcp_sent = True
            self.sel.modify(s, selectors.EVENT_READ, lk)
            return
        if mask & selectors.EVENT_READ:
            try:
                data = s.recv(65535)
            except BlockingIOError:
                return
            except OSError as exc:
                self._fail(lk, _kind(exc))
                return
            if not data:
                self._fail(lk, "reset")
                return
            lk.tcp_buf += data
            for _ in range(4):
                if len(lk.tcp_buf) < 2:
                    break
                (n,) = struct.unpack("!H", lk.tcp_buf[:2])
                if len(lk.tcp_buf) < 2 + n:
                    break
                self._match(lk, lk.tcp_buf[2:2 + n], now)
                lk.tcp_buf = lk.tcp_buf[2 + n:]
            self._progress(lk)

    def _progress(self, lk: _Lookup) -> None:
        if lk.done:
            return
        if self.mode is RaceMode.REOPEN:
            if lk.queries[lk.step].answered is not None:
                self._next_reopen(lk)
        elif all(q.answered is not None for q in lk.queries):
            self._finish(lk)

    def _next_reopen(self, lk: _Lookup) -> None:
        self._close(lk)
        if lk.step + 1 < len(lk.queries):
            lk.step += 1
            try:
                self._send_reopen(lk)
            except OSError as exc:
                lk.queries[lk.step].error = _kind(exc)
                self._next_reopen(lk)
        else:
            lk.done = True

    def expire(self, lk: _Lookup, now: float) -> None:
        if lk.done or now < lk.expires:
            return
        if self.mode is RaceMode.REOPEN:
            lk.queries[lk.step].error = "timeout"
            self._next_reopen(lk)
        else:
            self._fail(lk, "timeout")


def _errname(code: int) -> str:
    return {errno.ECONNREFUSED: "refused", errno.EHOSTUNREACH: "host-unreachable",
            errno.ENETUNREACH: "net-unreachable", errno.ECONNRESET: "reset",
            errno.ETIMEDOUT: "timeout"}.get(code, errno.errorcode.get(code, "error").lower())


def _kind(exc: OSError) -> str:
    return _errname(exc.errno or 0)


def run_mode(target: str, port: int, name: str, mode: RaceMode, count: int, timeout: float,
             concurrency: int, deadline: Deadline) -> ModeResult:
    """``count`` lookups in one mode, ``concurrency`` at a time, until done or ``deadline``."""
    eng = _Engine(target, port, name, timeout, mode)
    t0 = time.monotonic()
    active: list[_Lookup] = []
    finished: list[_Lookup] = []
    started = 0
    # Bounded: every iteration either starts, completes or waits for a lookup; the cap is
    # generous and only guards against a bug spinning.
    for _ in range(count * 40 + 1000):
        now = time.monotonic()
        if deadline.expired:
            break
        while started < count and len(active) < concurrency and not deadline.expired:
            lk = eng.new_lookup()
            eng.start(lk, time.monotonic())
            started += 1
            (finished if lk.done else active).append(lk)
        if not active:
            break
        wait = min(min(lk.expires for lk in active) - now, deadline.remaining())
        for key, mask in eng.sel.select(signals.tick(wait)):  # sliced: SIGINT/SIGTERM end it
            eng.on_event(key, mask)
        now = time.monotonic()
        for lk in active:
            eng.expire(lk, now)
        finished.extend(lk for lk in active if lk.done)
        active = [lk for lk in active if not lk.done]
    for lk in active:  # cut by the deadline: not counted as lost
        eng._close(lk)
    eng.sel.close()
    queries = [q for lk in finished for q in lk.queries if q.sent is not None]
    lat = [(q.answered - q.sent) * 1000.0 for q in queries if q.answered is not None and q.sent is not None]
    errors = Tally(q.error for q in queries if q.answered is None and q.error)
    lost = sum(1 for q in queries if q.answered is None)
    return ModeResult(
        mode=mode, lookups=len(finished), queries=len(queries), answered=len(lat), lost=lost,
        stalled=sum(1 for lk in finished if any(q.answered is None for q in lk.queries)),
        not_run=count - len(finished), errors=dict(errors),
        latency_ms_p50=_pct(lat, 0.5), latency_ms_p99=_pct(lat, 0.99),
        latency_ms_max=max(lat) if lat else None, duration_s=time.monotonic() - t0)


def race_test(target: str, *, port: int = 53, name: str = DEFAULT_NAME, count: int = 200,
              timeout: float = 1.0, concurrency: int = 8, modes: tuple[RaceMode, ...] = MODES,
              deadline: Deadline, read_counters: Callable[[], Counters | None] | None = None,
              processes: tuple[ProcInfo, ...] = (), on_progress: Callable[[str], None] | None = None) -> RaceResult:
    """Run each mode in turn with ``count`` lookups; never raises for network outcomes.

    ``read_counters`` returns a ``toolkit.conntrack.stats.Counters`` (or None); it is called
    before and after each mode. ``processes``: visible processes with their libc.
    """
    from toolkit.conntrack.stats import delta
    from toolkit.errors import UsageError

    try:
        ipaddress.ip_address(target)
    except ValueError:
        raise UsageError(f"{target!r} is not an IP address",
                         hint="give the DNS server or Service address, e.g. 10.96.0.10") from None
    if not 1 <= count <= MAX_COUNT:
        raise UsageError(f"--count must be between 1 and {MAX_COUNT}")
    concurrency = max(1, min(concurrency, MAX_CONCURRENCY))
    results: list[ModeResult] = []
    source: str | None = None
    for i, mode in enumerate(modes):
        left = len(modes) - i
        share = Deadline(max(0.0, deadline.remaining() - 0.2) / left)
        if share.expired:  # no time left (or SIGINT/SIGTERM): not run, no counters read
            results.append(ModeResult(mode=mode, lookups=0, queries=0, answered=0, lost=0, stalled=0, not_run=count,
                                      errors={}, latency_ms_p50=None, latency_ms_p99=None, latency_ms_max=None,
                                      duration_s=0.0))
            continue
        if on_progress:
            on_progress(f"race-test {mode}: {count} lookups to {target}:{port}")
        before = read_counters() if read_counters else None
        res = run_mode(target, port, name, mode, count, timeout, concurrency, share)
        after = read_counters() if read_counters else None
        if before is not None and after is not None:
            source = after.source
            res = replace(res, counters_delta=delta(before, after))
        results.append(res)
    return RaceResult(target=target, port=port, name=name, count=count, timeout_s=timeout, modes=tuple(results),
                      counters_source=source, processes=processes)
