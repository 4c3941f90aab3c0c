"""Per-client token buckets: one noisy client exhausts its own bucket, never anyone else's."""

from __future__ import annotations

import time
from collections import OrderedDict


class RateLimiter:
    """``rate`` requests per second with bursts of ``burst``, per client key.

    Buckets live in an LRU bounded by ``max_clients``, so a scan from many addresses cannot
    grow memory; a forgotten client simply starts again with a full bucket.
    """

    __slots__ = ("_buckets", "burst", "max_clients", "rate")

    def __init__(self, rate: float, burst: int, max_clients: int = 4096) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, client: str, now: float | None = None) -> float:
        """0.0 if the request may go ahead, else the seconds until one token is back."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = [self.burst, now]
            self._buckets[client] = bucket
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
            tokens, last = bucket
            bucket[0] = min(self.burst, tokens + (now - last) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        return (1.0 - bucket[0]) / self.rate
