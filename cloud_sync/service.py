"""The cloud service: every operation the HTTP routes call, and the background loops.

Routes stay short: they parse, call one method here, and answer. Database work runs in worker
threads (``asyncio.to_thread``); the event loop only parses, checks caches and answers.

Replicas share nothing but the database. Per-replica state is a cache or a buffer whose loss
costs at most a second of freshness: the device-key cache (``key_cache_ttl_s``), the heartbeat
buffer (flushed every ``flush_interval_s``), the set of devices with pending commands
(reloaded as often), and the per-device ingest rate (cloud_sync/ingest/limits.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection

from cloud_sync.auth.passwords import Passwords
from cloud_sync.auth.scope import Principal
from cloud_sync.auth.sessions import Sessions
from cloud_sync.auth.tokens import verify_access
from cloud_sync.changes import ChangeHook, no_hook
from cloud_sync.configs.watch import ConfigWatch
from cloud_sync.db import dialect
from cloud_sync.db.engine import Database
from cloud_sync.devices import commands, presence
from cloud_sync.devices import store as device_store
from cloud_sync.devices.keys import DeviceAuth, KeyCache, key_hash
from cloud_sync.devices.lookups import KeyLookups
from cloud_sync.errors import CloudError, TooLarge, Unauthorized
from cloud_sync.ingest import store as ingest_store
from cloud_sync.ingest.limits import EventRate
from cloud_sync.metrics import CloudMetrics
from cloud_sync.reads import devices as device_reads
from cloud_sync.rollouts import engine as rollout_engine
from cloud_sync.settings import CloudSettings
from fleet_common.logs import QuietLogger
from fleet_common.wire.cloud import (
    Command,
    CommandResult,
    EnrollRequest,
    EnrollResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    IngestBatch,
    IngestResult,
)

log = logging.getLogger("cloud")
P = ParamSpec("P")
T = TypeVar("T")


class Cloud:
    def __init__(
        self,
        db: Database,
        settings: CloudSettings | None = None,
        *,
        hook: ChangeHook = no_hook,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.settings = settings = settings or CloudSettings()
        self.hook = hook
        self.clock = clock
        self.sessions = Sessions(db, Passwords(settings.hash_cost), settings.login)
        self.key_cache = KeyCache(settings.key_cache_ttl_s)
        self._lookups = KeyLookups(self._authenticate)
        self.beats = presence.HeartbeatBuffer(settings.heartbeat_interval_s)
        self.pending = presence.PendingCommands()
        self.rate = EventRate(settings.ingest_events_per_s, settings.ingest_burst)
        self.metrics = CloudMetrics(db.engine)
        self._listener = dialect.Listener(db, commands.CHANNEL)
        self.config_watch = ConfigWatch(db, settings.config_poll_s)
        self.metrics.long_polls.set_function(lambda: self.config_watch.waiting)
        self._tasks: list[asyncio.Task[None]] = []
        self._quiet = QuietLogger(log)
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await asyncio.to_thread(self.sessions.secret)
        await asyncio.to_thread(self.reload_pending)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._every(self.settings.flush_interval_s, self.flush), name="flush"),
            loop.create_task(self._pending_loop(), name="pending"),
            loop.create_task(self._every(5.0, self.count_devices), name="gauges"),
            loop.create_task(self.config_watch.run(), name="config-watch"),
            loop.create_task(
                self._every(self.settings.rollout_interval_s, self.advance_rollouts),
                name="rollouts",
            ),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await asyncio.to_thread(self._listener.close)
        await asyncio.to_thread(self.config_watch.close)
        with contextlib.suppress(CloudError):
            await asyncio.to_thread(self.flush)  # the last second of heartbeats

    async def _every(self, period_s: float, work: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await asyncio.to_thread(work)
            except CloudError as err:
                self.metrics.flush_errors.inc()
                self._quiet.failure("background %s failed: %s", work.__name__, err)
            else:
                self._quiet.reset("background work succeeds again")

    async def _pending_loop(self) -> None:
        """Reload the pending set each second, at once when PostgreSQL says a command came."""
        while True:
            await asyncio.to_thread(self._listener.wait, self.settings.flush_interval_s)
            if self._stopping:
                return
            try:
                await asyncio.to_thread(self.reload_pending)
            except CloudError as err:
                self._quiet.failure("reloading pending commands failed: %s", err)

    # ------------------------------------------------------------------ blocking work (threads)
    def flush(self) -> int:
        """Write the buffered heartbeats and their uptime seconds; the number of devices."""
        rows, uptime = self.beats.take()
        if rows or uptime:
            with self.db.write() as conn:
                presence.write_beats(conn, rows)
                ingest_store.add_rollups(conn, uptime)
        return len(rows)

    def advance_rollouts(self) -> int:
        """One step of the running rollouts this replica can claim (cloud_sync/rollouts)."""
        with self.db.write() as conn:
            return rollout_engine.advance(
                conn, self.clock(), self.settings.heartbeat_interval_s, self.hook
            )

    def _authenticate(self, keys: list[str]) -> dict[str, tuple[DeviceAuth | None, str]]:
        with self.db.read() as conn:
            return device_store.authenticate_many(conn, keys)

    def reload_pending(self) -> None:
        with self.db.write() as conn:
            self.pending.replace(commands.pending_devices(conn, self.clock()))

    def count_devices(self) -> None:
        with self.db.read() as conn:
            online, offline = device_reads.count_online(
                conn, self.clock(), self.settings.heartbeat_interval_s
            )
        self.metrics.devices.labels("online").set(online)
        self.metrics.devices.labels("offline").set(offline)

    # ------------------------------------------------------------------ store calls
    async def read(
        self, query: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        """``query(conn, ...)`` in a read transaction, in a worker thread."""

        def work() -> T:
            with self.db.read() as conn:
                return query(conn, *args, **kw)

        return await asyncio.to_thread(work)

    async def write(
        self, change: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        """``change(conn, ...)`` in a write transaction, in a worker thread."""

        def work() -> T:
            with self.db.write() as conn:
                return change(conn, *args, **kw)

        return await asyncio.to_thread(work)

    # ------------------------------------------------------------------ people
    async def principal(self, token: str) -> Principal:
        secret = await asyncio.to_thread(self.sessions.secret)  # cached after the first call
        return verify_access(secret, token)

    # ------------------------------------------------------------------ devices
    async def enroll(self, body: EnrollRequest) -> EnrollResponse:
        def work() -> device_store.Enrolled:
            with self.db.write() as conn:
                return device_store.enroll(
                    conn, body.token, body.name, body.edge_id, body.edge_version, self.clock(),
                    self.hook,
                )  # fmt: skip

        done = await asyncio.to_thread(work)
        log.info("device %s enrolled at site %s", done.device_id, done.site_id)
        return EnrollResponse(
            device_id=done.device_id, device_key=done.device_key, site_id=done.site_id,
            heartbeat_interval_s=self.settings.heartbeat_interval_s,
        )  # fmt: skip

    async def device(self, key: str) -> DeviceAuth:
        """The device a key belongs to: from the cache, else a lookup batched with the other
        misses of the moment (then cached)."""
        digest = key_hash(key)
        hit, found, why = self.key_cache.get(digest)
        if not hit:
            found, why = await self._lookups.get(key)
            self.key_cache.put(digest, found, why)
        if found is None:
            if why == "revoked":
                raise Unauthorized("this device's key was revoked", code="device_revoked")
            raise Unauthorized("unknown device key")
        return found

    def forget(self, device_id: str) -> None:
        self.key_cache.forget_device(device_id)

    async def heartbeat(self, device: DeviceAuth, body: HeartbeatRequest) -> HeartbeatResponse:
        now = self.clock()
        self.beats.add(device.device_id, device.site_id, body, now)
        self.metrics.heartbeats.inc()
        waiting: list[Command] = []
        if body.command_results or device.device_id in self.pending:
            waiting = await asyncio.to_thread(
                self._commands_for, device.device_id, body.command_results, now
            )
        return HeartbeatResponse(interval_s=self.settings.heartbeat_interval_s, commands=waiting)

    def _commands_for(
        self, device_id: str, results: list[CommandResult], now: float
    ) -> list[Command]:
        with self.db.write() as conn:
            commands.record_results(conn, device_id, results, now)
            if device_id not in self.pending:
                return []
            claimed = commands.claim(conn, device_id, now)
        self.pending.discard(device_id)
        return claimed

    # ------------------------------------------------------------------ ingest
    async def ingest(self, device: DeviceAuth, batch: IngestBatch) -> IngestResult:
        cap = self.settings.max_batch_events
        if len(batch.events) > cap:
            raise TooLarge(f"a batch holds at most {cap} events (got {len(batch.events)})")
        self.rate.take(device.device_id, len(batch.events))

        def work() -> ingest_store.Stored:
            with self.db.write() as conn:
                return ingest_store.store_batch(conn, device, batch.events, self.clock())

        stored = await asyncio.to_thread(work)
        for kind, n in stored.kinds.items():
            self.metrics.ingest_events.labels(kind, "new").inc(n)
        if stored.duplicates:
            self.metrics.ingest_events.labels("any", "duplicate").inc(stored.duplicates)
        return IngestResult(accepted=stored.accepted, duplicates=stored.duplicates)
