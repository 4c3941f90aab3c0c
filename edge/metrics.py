"""Prometheus metrics of one edge, in a registry of its own (tests run several edges at once).

Names follow Prometheus conventions: ``carwash_edge_`` prefix, base units (seconds, bytes),
``_total`` for counters.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    ProcessCollector,
)

STREAM_STATES = ("online", "degraded", "offline")

# Request latency buckets from 0.25 ms: the snapshot hot path is sub-millisecond.
_HTTP_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
)  # fmt: skip
_CPU_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)
_LOCK_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)  # RS485 at 9600-115200 Bd
_PLATE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_RENTAL_BUCKETS = (60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)


class EdgeMetrics:
    """Every metric the edge exports; passed to the components that update them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        p = "carwash_edge_"
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds...: the
        # console charts CPU from them, Prometheus alerts on them (read from /proc on Linux).
        ProcessCollector(registry=r)
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
            " temperature hot/cool, disk low/ok, guards read_error",
            ["guard", "action"],
            registry=r,
        )
        self.temperature = Gauge(
            p + "temperature_celsius", "SoC temperature (NaN without a thermal zone)", registry=r
        )
        self.rss_bytes = Gauge(p + "rss_bytes", "Resident memory of this process", registry=r)
        self.disk_free_bytes = Gauge(
            p + "disk_free_bytes", "Free space on the data folder's file system", registry=r
        )
        # Events (edge/events.py) and self-healing.
        self.events = Counter(p + "events", "Events recorded, by kind", ["kind"], registry=r)
        self.event_store_errors = Counter(
            p + "event_store_errors",
            "Events that could not be written to the store (sent live only)",
            registry=r,
        )
        self.event_subscribers = Gauge(
            p + "event_subscribers", "Live event subscribers (SSE clients)", registry=r
        )
        self.sse_resumes = Counter(
            p + "event_subscriber_resumes",
            "Times a slow subscriber's queue overflowed and it read on from the store",
            registry=r,
        )
        self.recoveries = Counter(
            p + "recoveries",
            "Recoveries: a component back to working after failing (camera: online after offline)",
            ["component"],
            registry=r,
        )
        # Cart locks (edge/locks): the RS485 bus, cart states, commands and rentals.
        self.lock_bus_requests = Counter(
            p + "lock_bus_requests",
            "Modbus requests to the lock boards (each attempt), by function and outcome"
            " (ok, timeout, crc_error, garbage, mismatch, exception_response, bus_error)",
            ["function", "outcome"],
            registry=r,
        )
        self.lock_bus_errors = Counter(
            p + "lock_bus_errors",
            "Errors on the lock bus by kind: failed attempts (timeout, crc_error, garbage,"
            " mismatch, exception_response, bus_error) and what was seen on the line"
            " (crc_error frames, garbage bytes, late_answer frames)",
            ["kind"],
            registry=r,
        )
        self.lock_bus_seconds = Histogram(
            p + "lock_bus_request_seconds", "Time of one Modbus request (attempt) by function",
            ["function"], buckets=_LOCK_BUCKETS, registry=r,
        )  # fmt: skip
        self.lock_carts = Gauge(
            p + "lock_carts",
            "Carts by state (locked, unlocked, in_use, missing, returned, fault, unknown)",
            ["state"], registry=r,
        )  # fmt: skip
        self.lock_boards_down = Gauge(
            p + "lock_boards_down", "Lock boards that do not answer", registry=r
        )
        self.lock_commands = Counter(
            p + "lock_commands", "Cart commands by action and result (ok or the error code)",
            ["action", "result"], registry=r,
        )  # fmt: skip
        self.lock_rentals = Counter(
            p + "lock_rentals", "Rentals completed (cart returned)", registry=r
        )
        self.lock_rental_seconds = Histogram(
            p + "lock_rental_seconds", "Rental duration, from the unlock to the return",
            buckets=_RENTAL_BUCKETS, registry=r,
        )  # fmt: skip
        # Plates (edge/plates): reads by recogniser and trigger, the cloud's calls and limits.
        self.plate_reads = Counter(
            p + "plate_reads",
            "Plate reads stored, by recogniser (local, platerecognizer) and trigger"
            " (handshake, motion, interval)",
            ["recognizer", "trigger"],
            registry=r,
        )
        self.plate_duplicates = Counter(
            p + "plate_duplicates", "Reads of a plate already read at this bay within the window",
            registry=r,
        )  # fmt: skip
        self.plate_no_read = Counter(
            p + "plate_no_read", "Attempts that found no plate (or none above min_score)",
            ["trigger"], registry=r,
        )  # fmt: skip
        self.plate_members = Counter(
            p + "plate_member_matches", "Reads matched to a club member, by match (exact, fuzzy)",
            ["match"], registry=r,
        )  # fmt: skip
        self.plate_recognize_seconds = Histogram(
            p + "plate_recognize_seconds", "Time of one recognition by recogniser",
            ["recognizer"], buckets=_PLATE_BUCKETS, registry=r,
        )  # fmt: skip
        self.plate_handshake_seconds = Histogram(
            p + "plate_handshake_seconds",
            "Time of POST /api/plates/recognize (picture wait included)",
            buckets=_PLATE_BUCKETS, registry=r,
        )  # fmt: skip
        self.plate_vehicles = Counter(
            p + "plate_vehicles", "Vehicle arrivals seen by the motion trigger", registry=r
        )
        self.plate_cloud_requests = Counter(
            p + "plate_cloud_requests",
            "HTTP requests to Plate Recognizer by outcome (ok, no_plate, throttled_429,"
            " no_credits_403, too_large_413, http_5xx, http_error, timeout, bad_response)",
            ["outcome"],
            registry=r,
        )
        self.plate_cloud_refused = Counter(
            p + "plate_cloud_refused",
            "Calls not sent to Plate Recognizer, by reason (circuit_open, quota_exhausted,"
            " no_credits, throttled)",
            ["reason"],
            registry=r,
        )
        self.plate_cloud_wait_seconds = Counter(
            p + "plate_cloud_wait_seconds", "Time spent waiting for the rate limit or a 429",
            registry=r,
        )  # fmt: skip
        self.plate_cloud_downscaled = Counter(
            p + "plate_cloud_downscaled", "Pictures scaled down to fit the upload limit", registry=r
        )
        self.plate_cloud_breaker_open = Gauge(
            p + "plate_cloud_breaker_open", "1 while the circuit breaker stops cloud calls",
            registry=r,
        )  # fmt: skip
        self.plate_cloud_quota_remaining = Gauge(
            p + "plate_cloud_quota_remaining", "Lookups left this month (NaN until known)",
            registry=r,
        )  # fmt: skip
        self.plate_cloud_quota_remaining.set(float("nan"))
