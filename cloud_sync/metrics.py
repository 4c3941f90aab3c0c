"""The cloud's Prometheus metrics, in a registry of its own (one per app: tests build many)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool


class _PoolCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._engine.pool
        family = GaugeMetricFamily(
            "carwash_cloud_db_pool_connections", "Database pool connections", labels=["state"]
        )
        if isinstance(pool, QueuePool):
            family.add_metric(["checked_out"], pool.checkedout())
            family.add_metric(["idle"], pool.checkedin())
            family.add_metric(["size"], pool.size())
        yield family


class CloudMetrics:
    def __init__(self, engine: Engine) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "carwash_cloud_requests", "HTTP requests by route template and status",
            ["method", "route", "status"], registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "carwash_cloud_request_seconds", "HTTP request latency by route template",
            ["route"], registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )  # fmt: skip
        self.ingest_events = Counter(
            "carwash_cloud_ingest_events", "Ingested events by kind and result (new/duplicate)",
            ["kind", "result"], registry=registry,
        )  # fmt: skip
        self.heartbeats = Counter(
            "carwash_cloud_heartbeats", "Heartbeats received", registry=registry
        )
        self.devices = Gauge(
            "carwash_cloud_devices", "Enrolled devices (not revoked) by state", ["state"],
            registry=registry,
        )  # fmt: skip
        self.long_polls = Gauge(
            "carwash_cloud_config_long_polls", "Open config long-polls (GET devices/config?wait=)",
            registry=registry,
        )  # fmt: skip
        self.flush_errors = Counter(
            "carwash_cloud_flush_errors", "Failed heartbeat flushes (retried)", registry=registry
        )
        registry.register(_PoolCollector(engine))
