"""SIGINT and SIGTERM as one cooperative stop, shared by every command.

Why cooperative: Python runs signal handlers in the main thread only, between bytecodes.
A KeyboardInterrupt raised there cannot cancel the worker threads that do the real work
(queries, probes, walks): the main thread would sit in ``Future.result()`` until each worker
has waited out its own timeout (up to 28 s with ``--timeout 30``), and SIGTERM's default
action kills the process with no output at all. So the first SIGINT or SIGTERM only sets one
process-wide event; every loop that waits (the query engine, probes, the race test, capture
reading) waits in slices of at most ``TICK_S`` and ends when it sees the event, and
``Deadline.remaining()`` reads 0 once it is set, so everything budgeted by the deadline
winds down the same way it does at the deadline. The CLI then renders the partial report in
the chosen format (``toolkit.cli.common.run``). A second signal is the user insisting: it
raises KeyboardInterrupt at once (the CLI prints one line and exits).

Exit code of an interrupted run: 128 + the signal number (130 for SIGINT, 143 for SIGTERM),
the shell convention that ``timeout(1)``, kubelet and CI runners recognise. An interrupted
run gathered only part of its evidence, so neither 0 ("healthy") nor 1 ("problem found")
would be honest: a runbook testing ``$? -eq 0`` must never take a cut-short run for a healthy
one. The partial verdict is still in the document for whoever wants it.

Only the main thread may install handlers (``signal.signal`` raises ValueError elsewhere);
when podtriage runs as a library in another thread, ``request_stop`` does the same job.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType

# How often a waiting loop looks at the stop event: the latency between a signal and the
# end of every wait. 0.2 s keeps "ends within about a second" with margin for rendering.
TICK_S = 0.2

_stop = threading.Event()
_received: list[int] = []  # signal numbers in arrival order (first one decides)
_stopped_at: list[float] = []
_lock = threading.Lock()


def stopped() -> bool:
    """True once SIGINT/SIGTERM (or ``request_stop``) asked this run to end."""
    return _stop.is_set()


def received() -> signal.Signals | None:
    """The signal that stopped the run, or None."""
    with _lock:
        return signal.Signals(_received[0]) if _received else None


def stopped_for() -> float | None:
    """Seconds since the stop was requested (for "ended N s after the signal")."""
    with _lock:
        return time.monotonic() - _stopped_at[0] if _stopped_at else None


def request_stop(signum: int = signal.SIGINT) -> None:
    """Stop the run as SIGNUM would (the handler's work, and a library caller's way)."""
    with _lock:
        if not _received:
            _received.append(int(signum))
            _stopped_at.append(time.monotonic())
    _stop.set()


def reset() -> None:
    """Forget a previous stop (tests; one CLI process runs one command)."""
    with _lock:
        _received.clear()
        _stopped_at.clear()
    _stop.clear()


def wait(seconds: float) -> bool:
    """Sleep up to ``seconds`` but wake at once on a stop; True when stopped."""
    if seconds <= 0:
        return _stop.is_set()
    return _stop.wait(seconds)


def tick(left: float) -> float:
    """One slice of a longer wait: never longer than TICK_S, never negative."""
    return max(0.0, min(left, TICK_S))


def cut_detail() -> str:
    """The detail of a measurement the stop cut short (it observed nothing)."""
    return f"interrupted ({describe()}) before an answer"


def join(threads: Iterable[threading.Thread], until: float, grace: float = 0.5) -> None:
    """Join ``threads`` until the monotonic time ``until``, in slices; after a stop request
    give them only ``grace`` more seconds (they notice it within TICK_S and return)."""
    for t in threads:
        while t.is_alive():
            now = time.monotonic()
            limit = until
            since = stopped_for()
            if since is not None:
                limit = min(limit, now - since + grace)
            if now >= limit:
                break
            t.join(tick(limit - now))


def exit_code(signum: int | None = None) -> int:
    """128 + signal number: see the module docstring for why."""
    sig = signum if signum is not None else int(received() or signal.SIGINT)
    return 128 + sig


def describe() -> str:
    """The name of the signal that stopped the run ("SIGINT"), for messages."""
    sig = received()
    return sig.name if sig is not None else "a stop request"


_abortable: list[int] = [0]  # depth of abortable() sections entered by the main thread


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _stop.is_set():
        # The second signal: the user insists. Hard stop, the CLI prints one line.
        raise KeyboardInterrupt
    request_stop(signum)
    if _abortable[0]:
        raise KeyboardInterrupt  # inside abortable(): see there


@contextmanager
def abortable() -> Iterator[None]:
    """A main-thread section that cannot poll the stop event (loading libpcap through
    scapy takes 0.5-1.5 s): a signal inside it raises KeyboardInterrupt at once, after
    setting the stop event, so the caller catches it and goes on to its partial report."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _abortable[0] += 1
    try:
        yield
    finally:
        _abortable[0] -= 1


@contextmanager
def cooperative() -> Iterator[None]:
    """Within this block SIGINT and SIGTERM set the stop event instead of killing.

    Outside the main thread (a library caller) it installs nothing: call ``request_stop``."""
    if threading.current_thread() is not threading.main_thread() or installed():
        yield  # a library caller's thread, or the CLI process already installed them
        return
    old: dict[signal.Signals, Callable[[int, FrameType | None], object] | int | None] = {}
    reset()
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, _handler)
        yield
    finally:
        for sig, h in old.items():
            try:
                signal.signal(sig, h)
            except (ValueError, TypeError):
                pass


def install() -> None:
    """For the CLI process (``toolkit.cli.main``): the handlers stay for the whole run,
    rendering included, so a signal while the report is written never kills it half-way."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _handler)


def installed() -> bool:
    """True when our handler is the current SIGINT handler (live capture then needs no own)."""
    try:
        return signal.getsignal(signal.SIGINT) is _handler
    except ValueError:
        return False


@contextmanager
def alarm(seconds: float, expired: Callable[[], BaseException]) -> Iterator[None]:
    """Within this block, SIGALRM after ``seconds`` raises ``expired()`` in the main thread,
    between bytecodes: the one way to bound pure-Python work that has no wait to slice.
    Outside the main thread (a library caller) nothing is armed. toolkit.deadline builds
    its compute bound on this."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expired(_signum: int, _frame: FrameType | None) -> None:
        raise expired()

    old = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, max(0.001, seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# A repeating tick's state: whether the main thread is inside a ticking() region, and inside
# a garbage collection (gc.callbacks: "start"/"stop"), where an exception raised by a signal
# handler lands in a finaliser or weakref callback and is swallowed as "Exception ignored"
# (an unraisable exception) instead of reaching the region's caller.
_ticking: list[bool] = [False]
_in_gc: list[bool] = [False]


def _gc_phase(phase: str, _info: dict[str, int]) -> None:
    _in_gc[0] = phase == "start"


@contextmanager
def ticking(every: float, check: Callable[[], BaseException | None]) -> Iterator[None]:
    """Within this block a SIGALRM every EVERY seconds asks CHECK and raises what it returns,
    in the main thread between bytecodes: the way to end pure-Python work that has no wait to
    slice, at a deadline or on SIGINT/SIGTERM (CHECK reads ``stopped()``). The tick raises
    only inside the block (the flag is cleared before the timer is disarmed, so a tick
    already pending when the block ends does nothing) and never inside a garbage collection
    (the next tick raises instead), so the exception only rises where the caller catches it.
    Outside the main thread (a library caller) nothing is armed. Regions do not nest: an
    inner one would disarm the outer's timer, so it runs unarmed inside an outer one."""
    if threading.current_thread() is not threading.main_thread() or _ticking[0]:
        yield
        return

    def _tick(_signum: int, _frame: FrameType | None) -> None:
        if not _ticking[0] or _in_gc[0]:
            return
        exc = check()
        if exc is not None:
            raise exc

    old = signal.signal(signal.SIGALRM, _tick)
    gc.callbacks.append(_gc_phase)
    # No cyclic collection inside the region: its callbacks (gc.callbacks, weakref callbacks,
    # finalisers) run Python code in which a tick would raise into C that swallows it. The
    # _in_gc flag alone leaves a window: a tick that lands at the entry of another gc
    # callback, before ours has set the flag (seen on a fresh machine). Refcounting still frees
    # acyclic garbage; the cyclic rest waits for the region's end (bounded by its deadline).
    collecting = gc.isenabled()
    gc.disable()
    _ticking[0] = True
    signal.setitimer(signal.ITIMER_REAL, every, every)
    try:
        yield
    finally:
        _ticking[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        gc.callbacks.remove(_gc_phase)
        _in_gc[0] = False
        if collecting:
            gc.enable()
