"""The edge's parts wired together: camera source → encoder → snapshot cache, plus keys and metrics.

:class:`Edge` owns the threads and knows the health of the stream. The HTTP layer
(:mod:`edge.api`) takes an :class:`Edge` and nothing global.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from edge.camera import FrameSource, open_source
from edge.config import EdgeConfig
from edge.keys import KeyStore
from edge.metrics import EdgeMetrics
from edge.snapshots.cache import Snapshot, SnapshotCache
from edge.snapshots.encoder import Encoder
from edge.wire import (
    CacheStats,
    ComponentHealth,
    Health,
    HealthStatus,
    SnapshotInfo,
    SnapshotMeta,
    SourceInfo,
    StreamStatus,
)
from fleet_common.version import VERSION

log = logging.getLogger("edge")


_CAMERA_HEALTH: dict[StreamStatus, HealthStatus] = {
    "online": "ok", "degraded": "degraded", "offline": "failing",
}  # fmt: skip


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Edge:
    """One camera's edge. Build with :meth:`create`, then :meth:`start` inside the event loop."""

    config: EdgeConfig
    metrics: EdgeMetrics
    cache: SnapshotCache
    encoder: Encoder
    source: FrameSource
    keys: KeyStore
    started_mono: float = field(default_factory=time.monotonic)

    @classmethod
    def create(cls, config: EdgeConfig, *, keys: KeyStore | None = None) -> Edge:
        metrics = EdgeMetrics()
        snaps = config.snapshots
        cache = SnapshotCache(
            history=snaps.history, max_bytes=snaps.max_bytes, quality=snaps.jpeg_quality,
            metrics=metrics,
        )  # fmt: skip
        encoder = Encoder(cache, metrics, quality=snaps.jpeg_quality)
        source = open_source(config.camera, encoder.submit, metrics)
        if keys is None:
            keys = KeyStore.in_dir(config.resolved_data_dir())
        edge = cls(config, metrics, cache, encoder, source, keys)
        metrics.frame_age.set_function(edge._frame_age_s)
        return edge

    def _frame_age_s(self) -> float:
        latest = self.cache.latest
        return latest.age_ms() / 1000.0 if latest is not None else math.nan

    def start(self) -> None:
        """Start the threads; the cache wakes waiters on the running loop."""
        self.cache.attach_loop(asyncio.get_running_loop())
        self.started_mono = time.monotonic()
        self.encoder.start()
        self.source.start()
        log.info(
            "edge %r started: source %s, %d snapshots kept",
            self.config.name, self.source.safe_url, self.config.snapshots.history,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the source, then the encoder. Blocking: call it through ``asyncio.to_thread``."""
        self.source.stop()
        self.encoder.stop()
        log.info("edge %r stopped", self.config.name)

    # ------------------------------------------------------------------ health
    def stream_status(self, now_mono: float | None = None) -> StreamStatus:
        latest = self.cache.latest
        if latest is None or not self.source.stats.connected:
            return "offline"
        age = latest.age_ms(now_mono)
        camera = self.config.camera
        if age <= camera.freshness_target_ms:
            return "online"
        if age <= camera.offline_after_ms:
            return "degraded"
        return "offline"

    def update_status_metric(self) -> StreamStatus:
        status = self.stream_status()
        self.metrics.stream_state.state(status)
        return status

    def health(self) -> Health:
        stream = self.update_status_metric()
        camera_health = _CAMERA_HEALTH[stream]
        detail = self.source.stats.last_error or ""
        overall = "ok" if stream == "online" else "degraded"
        return Health(
            status=overall,
            name=self.config.name,
            site=self.config.site,
            version=VERSION,
            uptime_s=round(time.monotonic() - self.started_mono, 3),
            stream_status=stream,
            components={
                "camera": ComponentHealth(status=camera_health, detail=detail),
                "http": ComponentHealth(status="ok"),
            },
        )

    # ------------------------------------------------------------------ descriptions
    @staticmethod
    def meta(snap: Snapshot, now_mono: float | None = None) -> SnapshotMeta:
        return SnapshotMeta(
            seq=snap.seq,
            captured_at=rfc3339(snap.captured_at),
            age_ms=round(snap.age_ms(now_mono), 1),
            width=snap.width,
            height=snap.height,
            bytes=len(snap.jpeg),
            keyframe=snap.keyframe,
        )

    def info(self) -> SnapshotInfo:
        now = time.monotonic()
        stats = self.source.stats
        latest = self.cache.latest
        return SnapshotInfo(
            stream_status=self.update_status_metric(),
            latest=self.meta(latest, now) if latest is not None else None,
            source=SourceInfo(
                scheme=self.source.scheme,
                url=self.source.safe_url,
                connected=stats.connected,
                last_error=stats.last_error,
                sessions=stats.sessions,
                codec=stats.codec,
                keyframe_interval_s=stats.keyframe_interval_s,
                fps_in=round(self.source.in_rate.rate(now), 2),
                fps_decoded=round(self.source.decoded_rate.rate(now), 2),
                frames_received=stats.packets,
                frames_decoded=stats.decoded,
                decode_ms=stats.decode_ms,
                decode_lag_ms=stats.decode_lag_ms,
                full_decode=stats.full_decode,
            ),
            cache=CacheStats(**self.cache.stats()),
        )
