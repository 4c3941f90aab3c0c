"""The edge's sync with the cloud: heartbeat, outbox, config long-poll, members.

:class:`SyncService` is handed its parts explicitly (credentials, the store, callables for the
device's status, commands, config and members) and runs four independent loops on the event
loop; every store call goes through a worker thread. A cloud that is down, answers 500s or hangs
costs nothing but retries: each loop backs off (capped, jittered) on its own, events wait in the
outbox, and the rest of the edge never waits for the cloud.

Exactly once: an outbox row is deleted only after the cloud acknowledged the batch holding it. A
crash between the cloud's commit and the delete re-sends rows the cloud has already (it keeps one
event per device and key), so nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx

from edge.errors import StoreError
from edge.store import Store
from edge.sync import outbox
from edge.sync.backoff import Backoff
from edge.sync.client import CloudClient, Timeouts, parse
from edge.sync.credentials import CloudCredentials
from edge.sync.errors import CloudCallFailed, RateLimited, Refused
from edge.sync.metrics import SyncMetrics
from edge.sync.state import LoopState, SyncState
from fleet_common.logs import QuietLogger
from fleet_common.version import VERSION
from fleet_common.wire.cloud import (
    Command,
    CommandResult,
    ConfigOutcome,
    ConfigReport,
    DeviceConfig,
    HeartbeatRequest,
    MemberFile,
    StreamStatus,
)

log = logging.getLogger("edge.sync")

MAX_BATCH: Final = 500  # the cloud's cap per ingest batch
MAX_METRICS: Final = 32  # the cloud's cap per heartbeat
MAX_RESULTS: Final = 50  # command results per heartbeat
SEEN_COMMANDS: Final = 256  # command ids remembered, so a command never runs twice
MIN_POLL_GAP_S: Final = 1.0  # a long-poll that answers at once is not repeated sooner
CONFIG_PATH: Final = "/api/v1/devices/config"
REPORT_PATH: Final = "/api/v1/devices/config/report"
MEMBERS_PATH: Final = "/api/v1/devices/members"


# ---------------------------------------------------------------------- what the edge hands in
@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """What a heartbeat says about the device (read on the loop: keep it cheap)."""

    status: Literal["ok", "degraded", "failing"] = "ok"
    stream_status: StreamStatus = "unknown"
    config_version: int | None = None  # the edge's own (local) config version
    metrics: Mapping[str, float] = field(default_factory=dict)  # fps, frame_age_ms...


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ConfigResult:
    outcome: ConfigOutcome  # applied, rejected, rolled_back
    message: str = ""


StatusFn = Callable[[], DeviceStatus]
CommandHandler = Callable[[Command], Awaitable[CommandOutcome]]
ConfigHandler = Callable[[DeviceConfig], Awaitable[ConfigResult]]
MembersHandler = Callable[[MemberFile], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SyncSettings:
    heartbeat_interval_s: float | None = None  # None: as the cloud says (30 s by default)
    batch_size: int = 200  # outbox rows per ingest batch (at most 500)
    outbox_poll_s: float = 2.0  # look for new rows this often without notify_outbox()
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    config_wait_s: float = 55.0  # long-poll wait (the cloud allows 60)
    members_interval_s: float = 300.0  # members pulled this often (and on resync_members)
    command_timeout_s: float = 60.0
    timeouts: Timeouts = field(default_factory=Timeouts)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}, not {self.batch_size}")


# ---------------------------------------------------------------------- the service
class SyncService:
    """Syncs one enrolled edge with its cloud. Use on the event loop: :meth:`start`,
    :meth:`stop`. ``on_config``/``on_members`` None: that loop does not run."""

    def __init__(
        self,
        credentials: CloudCredentials,
        store: Store,
        *,
        status: StatusFn,
        on_command: CommandHandler | None = None,
        on_config: ConfigHandler | None = None,
        on_members: MembersHandler | None = None,
        members_version: int | None = None,
        metrics: SyncMetrics | None = None,
        settings: SyncSettings | None = None,
        edge_version: str = VERSION,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or SyncSettings()
        self.credentials = credentials
        self.store = store
        self.metrics = metrics
        self.state = SyncState(credentials.cloud_url, credentials.device_id)
        self.state.members_version = members_version
        self._status = status
        self._on_command = on_command
        self._on_config = on_config
        self._on_members = on_members
        self._edge_version = edge_version[:40]
        self._transport = transport
        self._clock = clock
        self._client: CloudClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._command_tasks: set[asyncio.Task[None]] = set()
        self._wake_outbox = asyncio.Event()
        self._wake_heartbeat = asyncio.Event()
        self._wake_members = asyncio.Event()
        self._results: list[CommandResult] = []
        self._seen: deque[int] = deque(maxlen=SEEN_COMMANDS)
        self._interval_s = float(
            self.settings.heartbeat_interval_s or credentials.heartbeat_interval_s
        )
        self._reports: dict[int, ConfigResult] = {}  # config outcomes not yet delivered

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._tasks:
            return
        self._client = CloudClient(
            self.credentials.cloud_url, self.credentials.device_key,
            timeouts=self.settings.timeouts, transport=self._transport,
        )  # fmt: skip
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "heartbeat": self._heartbeat_loop,
            "outbox": self._outbox_loop,
        }
        if self._on_config is not None:
            loops["config"] = self._config_loop
        if self._on_members is not None:
            loops["members"] = self._members_loop
        for name, loop in loops.items():
            task = asyncio.create_task(self._supervise(name, loop), name=f"sync-{name}")
            self._tasks.append(task)
        self.state.running = True
        log.info("sync: device %s, cloud %s", self.credentials.device_id,
                 self.credentials.cloud_url)  # fmt: skip

    async def stop(self) -> None:
        """Cancel the loops (an unacknowledged batch stays in the outbox) and close the client."""
        tasks = [*self._tasks, *self._command_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self.state.running = False
        self.state.online = False

    # ------------------------------------------------------------------ nudges
    def notify_outbox(self) -> None:
        """Rows were written: push now rather than at the next poll. Loop only."""
        self._wake_outbox.set()

    def resync_members(self) -> None:
        """Pull the members now (the ``resync_members`` command does this too)."""
        self._wake_members.set()

    def report_config(self, version: int, result: ConfigResult) -> None:
        """Tell the cloud what became of one of its config versions later on (e.g. the edge
        rolled it back by itself): sent by the config loop, retried until delivered."""
        self._reports[version] = result

    # ------------------------------------------------------------------ plumbing
    @property
    def client(self) -> CloudClient:
        if self._client is None:
            raise RuntimeError("SyncService is not started")
        return self._client

    async def _supervise(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run a loop forever: a bug in one iteration is logged and the loop restarts."""
        backoff = Backoff(self.settings.backoff_base_s, self.settings.backoff_cap_s)
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a bug: log it whole, keep the edge syncing
                log.exception("sync: the %s loop failed; restarting it", name)
                delay = backoff.next_delay()
                self._loop_state(name).failed(self._clock(), f"internal error: {err}", delay)
                await asyncio.sleep(delay)

    def _loop_state(self, name: str) -> LoopState:
        state: LoopState = getattr(self.state, name)
        return state

    def _succeeded(self, name: str) -> None:
        now = self._clock()
        self._loop_state(name).ok(now)
        if self.metrics is not None:
            self.metrics.last_success.labels(name).set(now)
            self.metrics.backoff.labels(name).set(0)

    def _failed(self, name: str, err: Exception, delay: float, reason: str = "store") -> None:
        if isinstance(err, CloudCallFailed):
            reason = err.reason
        self._loop_state(name).failed(self._clock(), str(err), delay)
        if self.metrics is not None:
            self.metrics.failures.labels(name, reason).inc()
            self.metrics.backoff.labels(name).set(delay)

    @staticmethod
    async def _wait(seconds: float, wake: asyncio.Event | None = None) -> None:
        """Sleep ``seconds``, or less if ``wake`` is set (and clear it)."""
        if wake is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.0)):
                await wake.wait()
        wake.clear()

    def _delay_for(self, err: Exception, backoff: Backoff) -> float:
        delay = backoff.next_delay()
        if isinstance(err, RateLimited):  # the cloud said how long; never sooner
            delay = max(err.retry_after_s, delay / 2)
        return delay

    # ------------------------------------------------------------------ heartbeat
    def _heartbeat_request(self) -> HeartbeatRequest:
        status = self._status()
        metrics = {k: float(v) for k, v in status.metrics.items() if math.isfinite(float(v))}
        metrics = dict(list(metrics.items())[: MAX_METRICS - 2])
        metrics["outbox_rows"] = float(self.state.outbox_pending)
        metrics["outbox_rejected"] = float(self.state.outbox_rejected)
        return HeartbeatRequest(
            status=status.status,
            stream_status=status.stream_status,
            config_version=status.config_version,
            cloud_config_version=self.state.cloud_config_version,
            edge_version=self._edge_version,
            metrics=metrics,
            command_results=self._results[:MAX_RESULTS],
        )

    async def _heartbeat_loop(self) -> None:
        quiet = QuietLogger(log)
        backoff = Backoff(self.settings.backoff_base_s, self.settings.backoff_cap_s)
        while True:
            beat = self._heartbeat_request()
            started = time.monotonic()
            try:
                answer = await self.client.heartbeat(beat)
            except CloudCallFailed as err:
                delay = min(self._delay_for(err, backoff), max(self._interval_s, 1.0))
                quiet.failure("sync: heartbeat failed: %s (next in %.0f s)", err, delay)
                self._failed("heartbeat", err, delay)
                self.state.online = False
                if self.metrics is not None:
                    self.metrics.online.set(0)
                await self._wait(delay)
                continue
            if self.metrics is not None:
                self.metrics.heartbeat_seconds.observe(time.monotonic() - started)
                self.metrics.online.set(1)
            quiet.reset("sync: the cloud answers heartbeats again")
            backoff.reset()
            self._succeeded("heartbeat")
            self.state.online = True
            del self._results[: len(beat.command_results)]  # delivered
            if self.settings.heartbeat_interval_s is None:
                self._interval_s = float(min(max(answer.interval_s, 1), 3600))
            for command in answer.commands:
                self._dispatch(command)
            await self._wait(self._interval_s, self._wake_heartbeat)

    def _dispatch(self, command: Command) -> None:
        if command.id in self._seen:
            return
        self._seen.append(command.id)
        task = asyncio.create_task(self._run_command(command), name=f"sync-command-{command.id}")
        self._command_tasks.add(task)
        task.add_done_callback(self._command_tasks.discard)

    async def _run_command(self, command: Command) -> None:
        log.info("sync: command %d %s from the cloud", command.id, command.kind)
        if command.kind == "resync_members" and self._on_members is not None:
            self.resync_members()
            outcome = CommandOutcome(True, "members pull started")
        elif self._on_command is None:
            outcome = CommandOutcome(False, f"{command.kind} is not supported by this edge")
        else:
            try:
                async with asyncio.timeout(self.settings.command_timeout_s):
                    outcome = await self._on_command(command)
            except TimeoutError:
                limit = self.settings.command_timeout_s
                outcome = CommandOutcome(False, f"no result within {limit:.0f} s")
            except Exception as err:  # the handler's bug must not end the sync
                log.exception("sync: command %d %s failed", command.id, command.kind)
                outcome = CommandOutcome(False, f"failed: {err}")
        result = CommandResult(id=command.id, ok=outcome.ok, detail=outcome.detail[:500])
        self._results.append(result)
        del self._results[:-MAX_RESULTS]  # bounded: the oldest results go first
        self._wake_heartbeat.set()  # report it now, not in 30 s

    # ------------------------------------------------------------------ outbox
    async def _outbox_loop(self) -> None:
        quiet = QuietLogger(log)
        backoff = Backoff(self.settings.backoff_base_s, self.settings.backoff_cap_s)
        limit = self.settings.batch_size
        while True:
            try:
                batch = await asyncio.to_thread(outbox.next_batch, self.store, limit)
            except StoreError as err:
                delay = backoff.next_delay()
                quiet.failure("sync: cannot read the outbox: %s", err)
                self._failed("outbox", err, delay)
                await self._wait(delay)
                continue
            self._counts(batch.pending, batch.refused)
            for reason, n in batch.rejected.items():
                if self.metrics is not None:
                    self.metrics.rejected.labels("kind").inc(n)
                log.debug("sync: %d rows rejected: %s", n, reason)
            if not batch.items:
                if not batch.rejected:  # nothing to send: wait for rows
                    await self._wait(self.settings.outbox_poll_s, self._wake_outbox)
                continue
            try:
                result = await self.client.ingest(batch.body)
            except Refused as err:
                if len(batch.items) > 1:  # too large, or one bad row in it: halve and retry
                    limit = max(1, len(batch.items) // 2)
                    log.info("sync: batch of %d refused (%s): trying %d", len(batch.items),
                             err, limit)  # fmt: skip
                    self._failed("outbox", err, 0.0)
                    continue
                log.warning("sync: outbox row %d refused by the cloud, set aside: %s",
                            batch.items[0].id, err)  # fmt: skip
                await self._store_call(self.store.outbox_reject, batch.ids, str(err)[:500])
                if self.metrics is not None:
                    self.metrics.rejected.labels(err.reason).inc()
                continue
            except CloudCallFailed as err:
                delay = self._delay_for(err, backoff)
                quiet.failure("sync: cannot push the outbox: %s (%d rows waiting)", err,
                              batch.pending)  # fmt: skip
                self._failed("outbox", err, delay)
                await self._store_call(self.store.outbox_failed, batch.ids, str(err)[:500])
                await self._wait(delay)
                continue
            try:
                ids = batch.ids
                pending, refused = await asyncio.to_thread(outbox.acknowledge, self.store, ids)
            except StoreError as err:  # sent again later: the cloud ignores what it has
                delay = backoff.next_delay()
                quiet.failure("sync: cannot mark rows sent: %s", err)
                self._failed("outbox", err, delay)
                await self._wait(delay)
                continue
            quiet.reset("sync: pushing the outbox again")
            backoff.reset()
            self._succeeded("outbox")
            self._counts(pending, refused)
            self.state.events_sent += len(batch.items)
            if self.metrics is not None:
                self.metrics.batches.inc()
                self.metrics.events.labels("new").inc(result.accepted)
                self.metrics.events.labels("duplicate").inc(result.duplicates)
            limit = min(self.settings.batch_size, limit * 2)  # back up after a split

    def _counts(self, pending: int, refused: int) -> None:
        self.state.outbox_pending, self.state.outbox_rejected = pending, refused
        if self.metrics is not None:
            self.metrics.outbox_rows.set(pending)

    async def _store_call(self, fn: Callable[..., None], *args: Any) -> None:
        """A bookkeeping write whose failure changes nothing that matters (logged)."""
        try:
            await asyncio.to_thread(fn, *args)
        except StoreError as err:
            log.warning("sync: outbox bookkeeping failed: %s", err)

    # ------------------------------------------------------------------ config
    async def _config_loop(self) -> None:
        assert self._on_config is not None  # noqa: S101 - started only with a handler
        quiet = QuietLogger(log)
        backoff = Backoff(self.settings.backoff_base_s, self.settings.backoff_cap_s)
        etag: str | None = None
        wait_s = self.settings.config_wait_s
        while True:
            started = time.monotonic()
            try:
                await self._send_reports()
                resp = await self.client.get(
                    "config", CONFIG_PATH, etag=etag, params={"wait": f"{wait_s:g}"},
                    read_timeout_s=wait_s + self.settings.timeouts.read_s, accept=(404,),
                )  # fmt: skip
            except CloudCallFailed as err:
                delay = self._delay_for(err, backoff)
                quiet.failure("sync: config poll failed: %s", err)
                self._failed("config", err, delay)
                await self._wait(delay)
                continue
            quiet.reset("sync: config poll works again")
            backoff.reset()
            self._succeeded("config")
            if resp.status_code == 200:
                doc = parse(DeviceConfig, resp, "config")
                etag = resp.headers.get("ETag") or f'"{doc.version}"'
                self.state.config_received = doc.version
                await self._apply_config(doc)
                continue
            if resp.status_code == 404:  # nothing assigned: the local config stands
                etag = None
            took = time.monotonic() - started
            if took < MIN_POLL_GAP_S:  # a cloud that answers at once is not polled in a spin
                await self._wait(MIN_POLL_GAP_S - took)

    async def _apply_config(self, doc: DeviceConfig) -> None:
        assert self._on_config is not None  # noqa: S101
        log.info("sync: cloud config version %d received", doc.version)
        try:
            result = await self._on_config(doc)
        except Exception as err:  # the handler's bug: the version counts as rejected
            log.exception("sync: applying cloud config version %d failed", doc.version)
            result = ConfigResult("rejected", f"internal error: {err}")
        if result.outcome == "applied":
            self.state.cloud_config_version = doc.version
        self._reports[doc.version] = result
        self._wake_heartbeat.set()  # the new cloud_config_version, now

    async def _send_reports(self) -> None:
        for version, result in sorted(self._reports.items()):
            report = ConfigReport(version=version, outcome=result.outcome,
                                  message=result.message[:500])  # fmt: skip
            await self.client.post_json("config report", REPORT_PATH, report.model_dump())
            del self._reports[version]

    # ------------------------------------------------------------------ members
    async def _members_loop(self) -> None:
        assert self._on_members is not None  # noqa: S101 - started only with a handler
        quiet = QuietLogger(log)
        backoff = Backoff(self.settings.backoff_base_s, self.settings.backoff_cap_s)
        while True:
            version = self.state.members_version
            try:
                resp = await self.client.get(
                    "members", MEMBERS_PATH, etag=f'"{version}"' if version is not None else None
                )
                if resp.status_code == 200:
                    doc = parse(MemberFile, resp, "members")
                    await self._on_members(doc)
                    self.state.members_version = doc.version
                    log.info("sync: members version %d (%d members)", doc.version,
                             len(doc.members))  # fmt: skip
            except (CloudCallFailed, OSError, ValueError) as err:  # ValueError: a bad list
                delay = self._delay_for(err, backoff)
                quiet.failure("sync: members pull failed: %s", err)
                self._failed("members", err, delay, reason="write")
                await self._wait(delay, self._wake_members)
                continue
            quiet.reset("sync: members pull works again")
            backoff.reset()
            self._succeeded("members")
            await self._wait(self.settings.members_interval_s, self._wake_members)
