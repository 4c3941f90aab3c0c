"""Capped exponential backoff with full jitter (pure: the caller sleeps).

The n-th consecutive failure waits a random time in ``[cap_n / 2, cap_n]`` with
``cap_n = min(cap, base * 2**n)``: half jitter keeps a floor (a fleet of 500 sites coming back
after a cloud outage spreads its retries, yet no device hammers a cloud that is still down).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    base_s: float = 1.0
    cap_s: float = 60.0
    failures: int = 0
    current_s: float = 0.0  # the last delay handed out (0 after a success)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        """Count a failure; the seconds to wait before the next attempt."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(self.failures, 32))
        self.failures += 1
        self.current_s = self.rng.uniform(ceiling / 2, ceiling)
        return self.current_s

    def reset(self) -> None:
        """A success: the next failure starts from ``base_s`` again."""
        self.failures = 0
        self.current_s = 0.0
