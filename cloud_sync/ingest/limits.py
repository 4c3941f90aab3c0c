"""Per-device ingest rate limit: a token bucket of events per second, in this replica's memory.

With N replicas behind a load balancer a device may get up to N times the rate: the limit
protects the database from a runaway device, and divergence between replicas only loosens it
(it never refuses what it should accept for more than ``Retry-After``). Losing the state (a
restart) gives every device a full bucket.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from cloud_sync.errors import RateLimited


class EventRate:
    def __init__(self, per_s: float, burst: float, max_devices: int = 100_000) -> None:
        self.per_s = per_s
        self.burst = burst
        self.max_devices = max_devices
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, device_id: str, events: int, now: float | None = None) -> None:
        """Spend ``events`` tokens, or raise RateLimited with the seconds until they exist."""
        now = time.monotonic() if now is None else now
        cost = min(float(events), self.burst)  # a full batch always fits a full bucket
        with self._lock:
            tokens, then = self._buckets.get(device_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.per_s)
            if tokens < cost:
                self._buckets[device_id] = (tokens, now)
                raise RateLimited(
                    "too many events from this device: slow down", (cost - tokens) / self.per_s
                )
            self._buckets[device_id] = (tokens - cost, now)
            self._buckets.move_to_end(device_id)
            while len(self._buckets) > self.max_devices:
                self._buckets.popitem(last=False)
