"""Prometheus metrics of one edge, in a registry of its own (tests run several edges at once).

Names follow Prometheus conventions: ``carwash_edge_`` prefix, base units (seconds, bytes),
``_total`` for counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

STREAM_STATES = ("online", "degraded", "offline")

# Request latency buckets from 0.25 ms: the snapshot hot path is sub-millisecond.
_HTTP_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
)  # fmt: skip
_CPU_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)


class EdgeMetrics:
    """Every metric the edge exports; passed to the components that update them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        p = "carwash_edge_"
        # Stream and decoding.
        self.packets = Counter(
            p + "packets_received", "Video packets (frames) received", registry=r
        )
        self.keyframes = Counter(p + "keyframes_received", "Keyframes received", registry=r)
        self.frames_decoded = Counter(p + "frames_decoded", "Frames decoded", registry=r)
        self.decode_seconds = Histogram(
            p + "decode_seconds", "CPU time to decode one frame", buckets=_CPU_BUCKETS, registry=r
        )
        self.decode_lag_seconds = Histogram(
            p + "decode_lag_seconds",
            "Time from a frame's arrival to its decoded picture",
            buckets=_CPU_BUCKETS,
            registry=r,
        )
        self.keyframe_interval = Gauge(
            p + "keyframe_interval_seconds", "Camera keyframe (GOP) interval", registry=r
        )
        self.full_decode = Gauge(
            p + "full_decode", "1 while every frame is decoded, 0 while keyframes only", registry=r
        )
        self.stream_state = Enum(
            p + "stream_state", "Health of the camera stream", states=list(STREAM_STATES),
            registry=r,
        )  # fmt: skip
        self.frame_age = Gauge(
            p + "frame_age_seconds", "Age of the newest snapshot (NaN with none)", registry=r
        )
        self.reconnects = Counter(
            p + "source_reconnects", "Camera (re)connection attempts after a failure", registry=r
        )
        self.source_errors = Counter(
            p + "source_errors", "Camera errors by kind", ["kind"], registry=r
        )
        # Snapshot cache.
        self.encode_seconds = Histogram(
            p + "encode_seconds", "Time to JPEG-encode one frame", buckets=_CPU_BUCKETS, registry=r
        )
        self.snapshots_published = Counter(
            p + "snapshots_published", "Snapshots put into the cache", registry=r
        )
        self.frames_skipped = Counter(
            p + "frames_not_encoded",
            "Decoded frames replaced by a newer one before the encoder took them",
            registry=r,
        )
        self.cache_bytes = Gauge(p + "cache_bytes", "Bytes held by the snapshot cache", registry=r)
        self.cache_snapshots = Gauge(
            p + "cache_snapshots", "Snapshots held by the snapshot cache", registry=r
        )
        self.variant_encodes = Counter(
            p + "variant_encodes", "Scaled variants made (once per frame and width)", registry=r
        )
        # HTTP.
        self.http_seconds = Histogram(
            p + "http_request_duration_seconds",
            "HTTP request latency by route (time to the response headers for streams)",
            ["method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.http_responses = Counter(
            p + "http_responses", "HTTP responses by route and status", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            p + "http_rate_limited", "Requests refused by the per-client rate limit", registry=r
        )
        self.auth_failures = Counter(
            p + "http_auth_failures", "Requests refused for a missing or bad key", ["reason"],
            registry=r,
        )  # fmt: skip
        # Local store (edge/store).
        self.store_dropped = Counter(
            p + "store_rows_dropped", "Rows pruned from the local store by its caps", ["table"],
            registry=r,
        )  # fmt: skip
        # Resource guards (edge/guards.py).
        self.guard_actions = Counter(
            p + "guard_actions",
            "Actions of the resource guards: memory drop_caches/recovered/exit,"
            " temperature hot/cool, guards read_error",
            ["guard", "action"],
            registry=r,
        )
        self.temperature = Gauge(
            p + "temperature_celsius", "SoC temperature (NaN without a thermal zone)", registry=r
        )
        self.rss_bytes = Gauge(p + "rss_bytes", "Resident memory of this process", registry=r)
