"""One global time budget, split into per-call timeouts.

Every network call in podtriage takes its timeout from a ``Deadline`` so that the whole
command ends by ``--deadline`` whatever the network does; pure-Python work that has no wait
to slice is bounded by ``Deadline.enforce`` (SIGALRM).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from toolkit import signals
from toolkit.errors import CannotObserve, StoppedBySignal

# enforce() fires this long after --deadline (the promise is the deadline + 0.5 s).
COMPUTE_GRACE_S = 0.25


@dataclass
class Deadline:
    """A time budget on the monotonic clock: ``seconds`` from ``start``."""

    seconds: float
    start: float = field(default_factory=time.monotonic)

    @property
    def expires_at(self) -> float:
        """The monotonic time at which the budget runs out."""
        return self.start + self.seconds

    def remaining(self) -> float:
        """Seconds left (0 once expired, or once SIGINT/SIGTERM asked the run to stop)."""
        # SIGINT/SIGTERM end the run the way the deadline does (toolkit.signals): every
        # loop budgeted by a Deadline winds down and reports what it has.
        if signals.stopped():
            return 0.0
        return max(0.0, self.expires_at - time.monotonic())

    @property
    def expired(self) -> bool:
        """No time left."""
        return self.remaining() <= 0.0

    def timeout(self, at_most: float | None = None) -> float:
        """The timeout for one call: the budget left, capped at ``at_most``."""
        left = self.remaining()
        return left if at_most is None else min(left, at_most)

    def elapsed(self) -> float:
        """Seconds since the budget started."""
        return time.monotonic() - self.start

    @classmethod
    def for_command(cls, seconds: float) -> "Deadline":
        """The budget of a whole command. In the CLI process (``toolkit.cli.main`` calls
        ``count_from_process_start``) it counts from when the process started: --deadline
        promises the wall time a caller sees, and interpreter start and imports take 0.2-0.5 s
        before a command's code runs. In-process callers (tests, libraries) count from now."""
        return cls(seconds, start=_origin if _origin is not None else time.monotonic())

    def child(self, seconds: float) -> "Deadline":
        """A sub-budget that never outlives this one."""
        return Deadline(min(seconds, self.remaining()))

    @contextmanager
    def enforce(self, what: str) -> Iterator[None]:
        """Bound pure-Python work that has no wait to slice (parsing and linting a Corefile
        at the 4 MiB input cap takes about 10 s): a SIGALRM tick every signals.TICK_S raises
        CannotObserve (exit 3) once the deadline has passed, and StoppedBySignal (exit
        128+N) once SIGINT/SIGTERM asked the run to stop, in the main thread, between
        bytecodes, so ``--deadline`` and a signal hold on any input (issue 23, class 4).
        Outside the main thread (a library caller) nothing is armed.

        A backstop, a little after the deadline: what waits cooperatively (reading a FIFO,
        toolkit.inputs) ends at the deadline itself with its own, more precise message."""
        until = self.expires_at + COMPUTE_GRACE_S

        def check() -> BaseException | None:
            if signals.stopped():
                return StoppedBySignal(f"{signals.describe()} while {what}: stopped before a "
                                       "report", hint="let it finish, or give a --deadline",
                                       exit_code=signals.exit_code())
            if time.monotonic() >= until:
                return CannotObserve(f"--deadline reached while {what}",
                                     hint="give a larger --deadline, or fewer or smaller "
                                          "Corefiles")
            return None

        with signals.ticking(signals.TICK_S / 4, check):
            yield


_origin: float | None = None


def count_from_process_start() -> None:
    """Count ``Deadline.for_command`` budgets from this process's start (the CLI's main)."""
    global _origin
    _origin = process_start()


def process_start() -> float:
    """This process's start time on the ``time.monotonic()`` clock (Linux: both count from
    boot, CLOCK_MONOTONIC vs /proc/uptime; field 22 of /proc/self/stat is the start time in
    clock ticks since boot, proc(5)). Falls back to now when /proc is not there."""
    now = time.monotonic()
    try:
        with open("/proc/self/stat", "rb") as fh:
            stat = fh.read(4096)
        with open("/proc/uptime", "rb") as fh:
            uptime = float(fh.read(64).split()[0])
        fields = stat[stat.rindex(b")") + 2:].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return now
    age = uptime - started
    # Sanity: a start in the future or hours ago means the clocks disagree (containers with
    # a virtualised /proc/uptime): then count from now, never give a command less time.
    return now - age if 0.0 <= age < 60.0 else now
