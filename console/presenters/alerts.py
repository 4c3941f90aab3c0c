"""The alerts presenter: polls every device, evaluates the rules, follows the edges' alerts.

Per device one task polls ``/api/health``, ``/api/snapshot/info`` and ``/metrics`` every
``interval_s`` one request after the other (one request in flight per device) and hands them to
the pure rules of :mod:`console.services.alerts`; an unreachable device gets its ``offline``
alert from the same rules. A second task follows the edge's own ``alert`` events (SSE), which
say ``active`` true or false. Acknowledging is local: an acknowledged alert stays acknowledged
until it clears; when it comes back it is new.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from PySide6.QtCore import QObject, Signal

from console.presenters.base import Presenter
from console.services.alerts import Alert, AlertThresholds, AlertTracker
from console.services.discovery import Device
from console.services.edge_client import EdgeClient, EdgeEvent
from console.services.errors import ConsoleError, EdgeAuthError, EdgeUnreachable
from edge.wire import Health, SnapshotInfo

log = logging.getLogger("console.alerts")

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}

ClientFor = Callable[[Device], EdgeClient]


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An active alert as the panel lists it."""

    alert: Alert
    device_name: str
    source: str  # "console" (the rules) or "edge" (an alert event)
    acknowledged: bool

    @property
    def key(self) -> str:
        return self.alert.key


@dataclass
class _Watch:
    device: Device
    tasks: list[asyncio.Task[None]]


class AlertsPresenter(Presenter):
    """Active alerts of every device; ``activeCountChanged`` counts the unacknowledged ones."""

    alertsChanged = Signal(list)  # list[AlertRow], most severe and oldest first
    activeCountChanged = Signal(int)  # active alerts not acknowledged (the page title's badge)

    def __init__(
        self,
        client_for: ClientFor,
        *,
        thresholds: AlertThresholds | None = None,
        interval_s: float = 2.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._client_for = client_for
        self.thresholds = thresholds if thresholds is not None else AlertThresholds()
        self._tracker = AlertTracker(self.thresholds)
        self.interval_s = interval_s
        self._watches: dict[str, _Watch] = {}
        self._rules: dict[str, dict[str, Alert]] = {}  # device key → alert key → alert
        self._edge: dict[str, dict[str, Alert]] = {}  # device key → alert key → from events
        self._since: dict[str, datetime] = {}  # alert key → first seen (kept while active)
        self._acked: set[str] = set()
        self._last_rows: list[AlertRow] = []
        self._last_count = 0

    # ------------------------------------------------------------------ devices
    def update_device(self, device: Device) -> None:
        watch = self._watches.get(device.key)
        if watch is not None and all(not t.done() for t in watch.tasks):
            watch.device = device
            return
        if watch is not None:
            for task in watch.tasks:
                task.cancel()
        tasks = [
            self.spawn(self._poll(device.key), name=f"alerts poll {device.name}"),
            self.spawn(self._follow(device.key), name=f"alert events {device.name}"),
        ]
        self._watches[device.key] = _Watch(device, tasks)

    def _client(self, key: str) -> EdgeClient | None:
        """The device's current client (the pool replaces one whose URL or key changed)."""
        watch = self._watches.get(key)
        return self._client_for(watch.device) if watch is not None else None

    def remove_device(self, key: str) -> None:
        watch = self._watches.pop(key, None)
        if watch is not None:
            for task in watch.tasks:
                task.cancel()
        self._tracker.forget(key)
        self._rules.pop(key, None)
        self._edge.pop(key, None)
        self._publish()

    # ------------------------------------------------------------------ acknowledge
    def acknowledge(self, key: str) -> None:
        """Acknowledge an active alert (local); it stays so until it clears."""
        if key in self._active_keys():
            self._acked.add(key)
            self._publish()

    def acknowledge_all(self) -> None:
        self._acked |= self._active_keys()
        self._publish()

    # ------------------------------------------------------------------ polling
    async def _poll(self, key: str) -> None:
        while (client := self._client(key)) is not None:
            started = time.monotonic()
            await self._poll_once(key, client)
            await asyncio.sleep(max(self.interval_s - (time.monotonic() - started), 0.05))

    async def _poll_once(self, key: str, client: EdgeClient) -> None:
        watch = self._watches.get(key)
        if watch is None:
            return
        health: Health | None = None
        info: SnapshotInfo | None = None
        metrics: dict[str, float] = {}
        try:
            health = await client.health()
            with contextlib.suppress(EdgeAuthError):  # a viewer key is needed for these
                info = await client.info()
            with contextlib.suppress(EdgeAuthError):
                metrics = await client.metrics()
        except EdgeUnreachable:
            health = info = None
        except ConsoleError as err:
            log.debug("%s: %s", client.base_url, err)
        if key not in self._watches:  # removed while polling
            return
        changes = self._tracker.update(watch.device, health, info, metrics, now=datetime.now(UTC))
        self._rules[key] = {a.key: a for a in changes.active}
        self._publish()

    async def _follow(self, key: str) -> None:
        last: int | None = None
        while (client := self._client(key)) is not None:
            try:
                async for event in client.follow_events(last_event_id=last, kinds=["alert"]):
                    self._edge_alert(key, event)
                    if event.id:
                        last = event.id
            except EdgeAuthError as err:
                log.info("%s: no alert events without a viewer key: %s", client.base_url, err)
                return
            await asyncio.sleep(0.5)  # the stream ended: the pool replaced the client

    def _edge_alert(self, key: str, event: EdgeEvent) -> None:
        payload = event.payload
        code = str(payload.get("code", ""))
        if event.kind != "alert" or not code:
            return
        alert_key = f"{key}:edge:{code}"
        alerts = self._edge.setdefault(key, {})
        if payload.get("active", True):
            alerts[alert_key] = Alert(
                key=alert_key,
                device_key=key,
                code=code,
                severity=str(payload.get("severity", "warning")),
                message=str(payload.get("message", "")),
                since=event.ts,
            )
        else:
            alerts.pop(alert_key, None)
        self._publish()

    # ------------------------------------------------------------------ state out
    def _active(self) -> list[tuple[Alert, str]]:
        found = []
        for source, table in (("console", self._rules), ("edge", self._edge)):
            for alerts in table.values():
                found += [(a, source) for a in alerts.values()]
        return found

    def _active_keys(self) -> set[str]:
        return {a.key for a, _ in self._active()}

    @property
    def rows(self) -> list[AlertRow]:
        return list(self._last_rows)

    @property
    def active_count(self) -> int:
        return self._last_count

    def _publish(self) -> None:
        active = self._active()
        keys = {a.key for a, _ in active}
        # Cleared alerts forget their acknowledgement and first-seen time.
        self._acked &= keys
        for gone in set(self._since) - keys:
            del self._since[gone]
        rows = []
        for alert, source in active:
            since = self._since.setdefault(alert.key, alert.since)
            watch = self._watches.get(alert.device_key)
            name = watch.device.name if watch is not None else alert.device_key
            rows.append(
                AlertRow(replace(alert, since=since), name, source, alert.key in self._acked)
            )
        rows.sort(key=lambda r: (SEVERITY_ORDER.get(r.alert.severity, 3), r.alert.since, r.key))
        count = sum(1 for r in rows if not r.acknowledged)
        if rows != self._last_rows:
            self._last_rows = rows
            self.alertsChanged.emit(rows)
        if count != self._last_count:
            self._last_count = count
            self.activeCountChanged.emit(count)
