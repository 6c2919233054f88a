"""Latency statistics in bounded memory: count, max and percentiles of a stream of
response times, exact while there are few samples, from a log histogram after."""

from __future__ import annotations

import math
from typing import Final

_LOG: Final = math.log(1.02)  # a module constant: mypyc compiles class-level defaults only as Final


class LatencyStats:
    """Count, max, and percentiles from a 2 %-wide log histogram (exact while small)."""

    __slots__ = ("count", "max", "hist", "exact", "_cap")

    def __init__(self, exact_cap: int = 2048) -> None:
        self.count = 0
        self.max = 0.0
        self.hist: dict[int, int] = {}
        self.exact: list[float] | None = []
        self._cap = exact_cap

    def add(self, ms: float) -> None:
        """One response time, in milliseconds."""
        ms = max(0.0, ms)  # the log histogram needs ms >= 0 (math.log domain)
        self.count += 1
        if ms > self.max:
            self.max = ms
        b = int(math.log(ms * 1000.0 + 1.0) / _LOG)
        self.hist[b] = self.hist.get(b, 0) + 1
        ex = self.exact
        if ex is not None:
            if len(ex) < self._cap:
                ex.append(ms)
            else:
                self.exact = None

    def percentile(self, p: float) -> float | None:
        """The ``p`` quantile (0..1, nearest rank) in milliseconds; None without samples."""
        if not self.count:
            return None
        rank = max(1, math.ceil(p * self.count))
        if self.exact is not None:
            return sorted(self.exact)[rank - 1]
        seen = 0
        for b in sorted(self.hist):
            seen += self.hist[b]
            if seen >= rank:
                return min(self.max, (math.exp((b + 0.5) * _LOG) - 1.0) / 1000.0)
        return self.max
