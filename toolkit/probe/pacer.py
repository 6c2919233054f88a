"""The pacer: packets that may draw an ICMP error from a router wait for a token.

Linux answers with ICMP errors at a per-destination rate (a burst of XRLIM_BURST_FACTOR 6,
then one per net.ipv4.icmp_ratelimit = 1000 ms), and every probe of every address goes back
to the same prober, so a burst larger than that turns host-unreachable into silence.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum

from toolkit import signals

PACER_BURST = 5  # Linux: XRLIM_BURST_FACTOR 6 tokens per destination; keep one spare
PACER_INTERVAL = 1.0  # net.ipv4.icmp_ratelimit default, ms -> s
MAX_ROUNDS = 100_000  # bound on the rounds of one acquire(); each waits or returns


class Grant(StrEnum):
    """What ``Pacer.acquire`` decided for one probe."""

    TOKEN = "token"  # send: a token was spent
    LATE = "late"  # do not send: the turn would come after ``latest`` (or SIGINT/SIGTERM)
    FREE = "free"  # send without a token: the host answers for itself, no router ICMP is spent
    SKIP = "skip"  # do not send: the address is already known dead


class Pacer:
    """FIFO token bucket: tickets are served in the order they were issued (priority
    order), ``burst`` at once, then one per ``interval`` seconds."""

    def __init__(self, burst: int = PACER_BURST, interval: float = PACER_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._burst = float(burst)
        self._interval = interval
        self._tokens = float(burst)
        self._stamp = clock()
        self._cv = threading.Condition()
        self._issued = 0
        self._next = 0
        self._skipped: set[int] = set()

    def ticket(self) -> int:
        """A place in the queue: tickets are served in the order they were issued."""
        with self._cv:
            self._issued += 1
            return self._issued - 1

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) / self._interval)
        self._stamp = now

    def _advance(self) -> None:
        while self._next in self._skipped:
            self._skipped.discard(self._next)
            self._next += 1

    def acquire(self, ticket: int, latest: float, cost: float = 1.0,
                verdict: Callable[[], Grant | None] | None = None) -> Grant:
        """Wait for this ticket's turn and a token.

        Returns TOKEN (send, a token was spent), LATE (that would be after ``latest``), or
        whatever ``verdict()`` returns when it stops returning None while waiting (FREE: the
        host is known alive and answers for itself; SKIP: the address is already known dead)."""
        with self._cv:
            for _ in range(MAX_ROUNDS):
                self._refill()
                self._advance()
                decided = verdict() if verdict is not None else None
                if decided is not None:
                    self._give_up(ticket)
                    return decided
                now = self._clock()
                if now >= latest or signals.stopped():  # SIGINT/SIGTERM: send nothing more
                    self._give_up(ticket)
                    return Grant.LATE
                if ticket == self._next and self._tokens >= min(cost, self._burst):
                    self._tokens -= cost
                    self._next += 1
                    self._advance()
                    self._cv.notify_all()
                    return Grant.TOKEN
                need = max(0.0, (min(cost, self._burst) - self._tokens) * self._interval)
                self._cv.wait(signals.tick(min(latest - now, need if ticket == self._next else 0.25)) + 0.001)
            return Grant.LATE

    def _give_up(self, ticket: int) -> None:
        if ticket == self._next:
            self._next += 1
        elif ticket > self._next:
            self._skipped.add(ticket)
        self._advance()
        self._cv.notify_all()

    def notify(self) -> None:
        """Something a waiting ``verdict()`` looks at has changed."""
        with self._cv:
            self._cv.notify_all()

    def refund(self, cost: float = 1.0) -> None:
        """The probe got a direct answer: the router sent no ICMP error for it."""
        with self._cv:
            self._tokens = min(self._burst, self._tokens + cost)
            self._cv.notify_all()
