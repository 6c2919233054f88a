"""One global time budget, split into per-call timeouts.

Every network call in podtriage takes its timeout from a ``Deadline`` so that the whole
command ends by ``--deadline`` whatever the network does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Deadline:
    seconds: float
    start: float = field(default_factory=time.monotonic)

    @property
    def expires_at(self) -> float:
        return self.start + self.seconds

    def remaining(self) -> float:
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

    def child(self, seconds: float) -> "Deadline":
        """A sub-budget that never outlives this one."""
        return Deadline(min(seconds, self.remaining()))
