"""The edge's parts wired together: camera source → encoder → snapshot cache, plus keys, metrics,
the local store and its event log.

:class:`Edge` owns the threads and knows the health of the stream. The HTTP layer
(:mod:`edge.api`) takes an :class:`Edge` and nothing global.

Lifecycle: :meth:`Edge.create`, then inside the loop :meth:`Edge.start_async` (opens the store in
a worker thread, then :meth:`Edge.start`), and :meth:`Edge.stop_async` at the end (ends the
stream watch and the event subscribers, then stops the threads and closes the store).
:meth:`Edge.start` alone runs the edge with its events in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge.camera import FrameSource, open_source
from edge.config import EdgeConfig
from edge.discovery import device_id
from edge.errors import StoreError
from edge.events import EventLog
from edge.keys import KeyStore
from edge.metrics import EdgeMetrics
from edge.plates.service import PlateService
from edge.snapshots.cache import Snapshot, SnapshotCache
from edge.snapshots.encoder import Encoder
from edge.store import Store, StoreCaps
from edge.stream_watch import WATCH_INTERVAL_S, StreamWatch
from fleet_common.timefmt import rfc3339
from fleet_common.version import VERSION
from fleet_common.wire.edge import (
    CacheStats,
    ComponentHealth,
    Health,
    HealthStatus,
    SnapshotInfo,
    SnapshotMeta,
    SourceInfo,
    StreamStatus,
)
from fleet_common.wire.events import TOPIC_EVENTS, RecoveryPayload

if TYPE_CHECKING:
    from edge.live_config import ConfigManager
    from edge.locks.service import LockService
    from edge.sync.service import SyncService

log = logging.getLogger("edge")


_CAMERA_HEALTH: dict[StreamStatus, HealthStatus] = {
    "online": "ok", "degraded": "degraded", "offline": "failing",
}  # fmt: skip


@dataclass
class Edge:
    """One camera's edge. Build with :meth:`create`, then :meth:`start` inside the event loop."""

    config: EdgeConfig
    metrics: EdgeMetrics
    cache: SnapshotCache
    encoder: Encoder
    source: FrameSource
    keys: KeyStore
    events: EventLog
    store: Store | None = None
    device_id: str = ""
    store_error: str | None = None  # why there is no store (events kept in memory only)
    started_mono: float = field(default_factory=time.monotonic)
    _watch_task: asyncio.Task[None] | None = field(default=None, repr=False)
    locks: LockService | None = field(default=None, repr=False)  # with locks.enabled only
    plates: PlateService | None = field(default=None, repr=False)  # with start_async only
    sync: SyncService | None = field(default=None, repr=False)  # set by the runner if enrolled
    _store_fraction: float | None = field(default=None, repr=False)  # disk low: caps cut

    @classmethod
    def create(
        cls, config: EdgeConfig, *, keys: KeyStore | None = None, store: Store | None = None
    ) -> Edge:
        """Build the parts (nothing runs yet). ``store``: an open store to use; without one,
        :meth:`start_async` opens ``DATA_DIR/edge.db``."""
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
        events = EventLog(store, metrics)
        edge = cls(config, metrics, cache, encoder, source, keys, events, store)
        metrics.frame_age.set_function(edge._frame_age_s)
        return edge

    def store_caps(self) -> StoreCaps:
        """The caps in force: the configured ones, cut while the disk guard says disk low."""
        base = self.caps_for(self.config)
        fraction = self._store_fraction
        if fraction is None:
            return base
        return dataclasses.replace(
            base,
            max_events=max(100, int(base.max_events * fraction)),
            max_outbox=max(100, int(base.max_outbox * fraction)),
            prune_every=1,  # checked on every insert while cut: the next event shrinks the tables
        )

    @staticmethod
    def caps_for(config: EdgeConfig) -> StoreCaps:
        """The store caps a config asks for."""
        cfg = config.store
        return StoreCaps(
            max_events=cfg.max_events, max_outbox=cfg.max_outbox,
            max_config_versions=cfg.max_config_versions, prune_every=cfg.prune_every,
        )  # fmt: skip

    def open_store(self) -> Store:
        """Open ``DATA_DIR/edge.db`` with the configured caps. Blocking: use a worker thread."""
        return Store.in_dir(
            self.config.resolved_data_dir(), self.store_caps(),
            on_drop=lambda table, n: self.metrics.store_dropped.labels(table).inc(n),
        )  # fmt: skip

    def _frame_age_s(self) -> float:
        latest = self.cache.latest
        return latest.age_ms() / 1000.0 if latest is not None else math.nan

    async def start_async(self) -> None:
        """Open the store and learn the device id (in a worker thread), then :meth:`start`.

        A store that cannot be opened (a corrupt file, a newer schema, a read-only disk) is
        logged and reported in the health; the edge then runs with its events in memory.
        """
        if self.store is None:
            try:
                self.store = await asyncio.to_thread(self.open_store)
            except (StoreError, OSError) as err:  # OSError: the folder cannot be made
                self.store_error = str(err)
            if self.store_error is not None:
                log.error("running without the local store (events kept in memory): %s",
                          self.store_error)  # fmt: skip
        if self.store is not None:
            await self.events.attach_store(self.store)
        if not self.device_id:
            try:
                self.device_id = await asyncio.to_thread(device_id, self.config.resolved_data_dir())
            except OSError as err:
                log.warning("cannot keep a device id in the data folder: %s", err)
        self.start()
        self.restarters.setdefault("locks", self.restart_locks)
        await self.start_locks()
        self.restarters.setdefault("plates", self.restart_plates)
        await self.start_plates()

    def start(self) -> None:
        """Start the threads and the stream watch; the cache wakes waiters on the running loop."""
        loop = asyncio.get_running_loop()
        self.cache.attach_loop(loop)
        self.started_mono = time.monotonic()
        self.encoder.start()
        self.source.start()
        self._watch_task = loop.create_task(self._watch_stream(), name="stream-watch")
        log.info(
            "edge %r started: source %s, %d snapshots kept",
            self.config.name, self.source.safe_url, self.config.snapshots.history,
        )  # fmt: skip

    async def stop_async(self) -> None:
        """Stop watching, end the event streams, then :meth:`stop` in a worker thread."""
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.stop_plates()  # a read in progress is stored before the log closes
        await self.stop_locks()  # its last events go in before the log closes
        await self.events.aclose()
        await asyncio.to_thread(self.stop)

    def stop(self) -> None:
        """Stop the source and the encoder, close the store. Blocking: use a worker thread.

        Use :meth:`stop_async` on a started edge: it ends the stream watch and the event log
        first, so no event is written after the store is closed.
        """
        self.source.stop()
        self.encoder.stop()
        if self.store is not None:
            self.store.close()  # every event was committed when written: nothing to flush
        log.info("edge %r stopped", self.config.name)

    # ------------------------------------------------------------------ cart locks
    # Started only when configured: an edge without lock boards never imports pyserial or
    # pymodbus (edge/locks/service.py loads them when it starts).
    async def start_locks(self) -> None:
        if not self.config.locks.enabled or self.locks is not None:
            return
        from edge.locks.service import LockService

        service = LockService(self.config.locks, self.metrics, self.events, lambda: self.store)
        await service.start()
        self.locks = service

    async def stop_locks(self) -> None:
        service, self.locks = self.locks, None
        if service is not None:
            await service.stop()

    async def restart_locks(self) -> None:
        """``restart:locks``: the lock driver again from the running config (or stopped)."""
        await self.stop_locks()
        await self.start_locks()

    # ------------------------------------------------------------------ plates
    # The readers load their models lazily (the offline reader on its first picture), so an
    # edge starts serving pictures at once.
    async def start_plates(self) -> None:
        if self.plates is not None:
            return
        service = PlateService(self)
        await service.start()
        self.plates = service

    async def stop_plates(self) -> None:
        service, self.plates = self.plates, None
        if service is not None:
            await service.stop()

    async def restart_plates(self) -> None:
        """``restart:plates``: the readers again from the running config."""
        await self.stop_plates()
        await self.start_plates()

    # ------------------------------------------------------------------ self-healing
    async def _watch_stream(self) -> None:
        """Sample the stream's health and record its changes as events (see stream_watch)."""
        watch = StreamWatch(time.monotonic(), self.config.camera.offline_after_ms / 1000.0)
        while True:
            now = time.monotonic()
            status = self.stream_status(now)
            self.metrics.stream_state.state(status)
            latest = self.cache.latest
            stats = self.source.stats
            emissions = watch.update(
                status, now,
                age_ms=latest.age_ms(now) if latest is not None else None,
                detail=(stats.last_error or "") if status != "online" else "",
                sessions=stats.sessions,
            )  # fmt: skip
            for item in emissions:
                if isinstance(item.model, RecoveryPayload):
                    self.metrics.recoveries.labels("camera").inc()
                    log.info("camera recovered after %.1f s offline", item.model.offline_s)
                await self.events.publish(item.model, TOPIC_EVENTS)
            await asyncio.sleep(WATCH_INTERVAL_S)

    def shrink_store(self, fraction: float) -> None:
        """Cut the store's event and outbox caps to ``fraction`` (the disk guard, disk low)."""
        self._store_fraction = fraction
        if self.store is not None:
            self.store.caps = self.store_caps()

    def restore_store(self) -> None:
        """Back to the configured caps (the disk guard, disk fine again)."""
        self._store_fraction = None
        if self.store is not None:
            self.store.caps = self.store_caps()

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
        components = {
            "camera": ComponentHealth(status=camera_health, detail=detail),
            "http": ComponentHealth(status="ok"),
            "store": self._store_health(),
        }  # fmt: skip
        if self.locks is not None:
            components["locks"] = self._locks_health(self.locks)
        if self.plates is not None:
            components["plates"] = self.plates.health()
        if self.sync is not None:
            components["cloud"] = self._sync_health(self.sync)
        return Health(
            status=overall,
            id=self.device_id,
            name=self.config.name,
            site=self.config.site,
            version=VERSION,
            uptime_s=round(time.monotonic() - self.started_mono, 3),
            stream_status=stream,
            components=components,
        )

    @staticmethod
    def _locks_health(locks: LockService) -> ComponentHealth:
        down = locks.boards_down()
        if not down:
            return ComponentHealth(status="ok")
        status = "failing" if len(down) == len(locks.config.boards) else "degraded"
        boards = ", ".join(str(u) for u in down)
        return ComponentHealth(status=status, detail=f"lock boards not answering: {boards}")

    @staticmethod
    def _sync_health(sync: SyncService) -> ComponentHealth:
        state = sync.state
        if state.online and state.outbox_rejected == 0:
            return ComponentHealth(status="ok", detail=f"{state.outbox_pending} events to send")
        if state.online:
            return ComponentHealth(
                status="degraded", detail=f"{state.outbox_rejected} events refused by the cloud"
            )
        error = state.heartbeat.last_error or "not reached yet"
        return ComponentHealth(
            status="degraded",
            detail=f"cloud unreachable ({error}); {state.outbox_pending} events wait",
        )

    def _store_health(self) -> ComponentHealth:
        if self.store is not None and self.events.store_failure is not None:
            return ComponentHealth(status="failing", detail=self.events.store_failure)
        if self.store is not None:
            return ComponentHealth(status="ok")
        if self.store_error is not None:
            return ComponentHealth(status="failing", detail=self.store_error)
        return ComponentHealth(status="degraded", detail="no store: events kept in memory")

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

    # ---- live config
    # Owned by edge/live_config.py (ConfigManager), which copies changed values into
    # ``self.config`` in place and then calls these. ``live`` is set by the runner once the store
    # is open; the config routes answer 503 until then.
    live: ConfigManager | None = field(default=None, repr=False)
    # Called after hot values changed, with the running config (the HTTP layer updates its rate
    # limiter and route table; the runner its advertisement).
    config_hooks: list[Callable[[EdgeConfig], None]] = field(default_factory=list, repr=False)
    # Components other than the camera that a config change can restart (the runner registers
    # "guards" and "discovery"); each restarts from the running config.
    restarters: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict, repr=False)

    def apply_hot(self) -> None:
        """Push the running config's values into the parts that copied them when built."""
        snaps = self.config.snapshots
        self.cache.history, self.cache.max_bytes = snaps.history, snaps.max_bytes
        self.cache.quality = self.encoder.quality = snaps.jpeg_quality
        if self.store is not None:
            self.store.caps = self.store_caps()
        for hook in self.config_hooks:
            hook(self.config)

    async def restart_component(self, component: str) -> bool:
        """Restart one component from the running config; False if it does not run here."""
        if component == "camera":
            await self.replace_source()
            return True
        restart = self.restarters.get(component)
        if restart is None:
            return False
        await restart()
        return True

    async def replace_source(self) -> None:
        """A new camera source from ``config.camera``; the encoder, cache and HTTP stay up.

        The new source feeds the same encoder, so snapshot numbers continue; its session count
        continues from the old one (``sessions`` counts connections since the process started).
        """
        new = open_source(self.config.camera, self.encoder.submit, self.metrics)
        old = self.source
        await asyncio.to_thread(old.stop)
        new.stats.sessions = old.stats.sessions
        new.hot = old.hot
        self.source = new
        new.start()
        log.info("camera source restarted: %s (was %s)", new.safe_url, old.safe_url)
