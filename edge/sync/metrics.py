"""Prometheus metrics of the sync client, registered in the edge's registry.

Names follow the edge's: ``carwash_edge_sync_`` prefix, base units, ``_total`` counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class SyncMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r, p = registry, "carwash_edge_sync_"
        self.batches = Counter(p + "batches_sent", "Outbox batches the cloud acknowledged",
                               registry=r)  # fmt: skip
        self.events = Counter(
            p + "events_sent", "Outbox events the cloud acknowledged, new or seen before",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.failures = Counter(
            p + "failures", "Failed calls to the cloud by operation and reason",
            ["op", "reason"], registry=r,
        )  # fmt: skip
        self.rejected = Counter(
            p + "events_rejected", "Outbox rows the cloud refused (kept locally, not sent again)",
            ["reason"], registry=r,
        )  # fmt: skip
        self.heartbeat_seconds = Histogram(
            p + "heartbeat_seconds", "Heartbeat round-trip time", buckets=_LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.outbox_rows = Gauge(p + "outbox_rows", "Outbox rows still to send", registry=r)
        self.backoff = Gauge(
            p + "backoff_seconds", "Current wait after failures, by loop", ["loop"], registry=r
        )
        self.last_success = Gauge(
            p + "last_success_timestamp_seconds", "When each loop last succeeded (Unix time)",
            ["loop"], registry=r,
        )  # fmt: skip
        self.online = Gauge(p + "online", "1 while the cloud answers heartbeats", registry=r)
