"""One global time budget, split into per-call timeouts.

Every network call in podtriage takes its timeout from a ``Deadline`` so that the whole
command ends by ``--deadline`` whatever the network does.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from toolkit import signals


@dataclass
class Deadline:
    seconds: float
    start: float = field(default_factory=time.monotonic)

    @property
    def expires_at(self) -> float:
        return self.start + self.seconds

    def remaining(self) -> float:
        # SIGINT/SIGTERM end the run the way the deadline does (toolkit.signals): every
        # loop budgeted by a Deadline winds down and reports what it has.
        if signals.stopped():
            return 0.0
        return max(0.0, self.expires_at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def timeout(self, at_most: float | None = None) -> float:
        """The timeout for one call: the budget left, capped at ``at_most``."""
        left = self.remaining()
        return left if at_most is None else min(left, at_most)

    def elapsed(self) -> float:
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


_origin: float | None = None


def count_from_process_start() -> None:
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
