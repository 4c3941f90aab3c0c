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
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pydantic import ValidationError
from PySide6.QtCore import QObject, Signal

from console.presenters.base import Presenter
from console.services.alerts import Alert, AlertThresholds, AlertTracker
from console.services.discovery import Device
from console.services.edge_client import ClientFor, EdgeClient, EdgeEvent
from console.services.errors import ConsoleError, EdgeAuthError, EdgeUnreachable
from console.services.status import DeviceState, DeviceStates
from fleet_common.wire.edge import Health, SnapshotInfo
from fleet_common.wire.events import ALERT, AlertPayload

log = logging.getLogger("console.alerts")

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
# An edge alert code → the console rule that says the same (shown once, as the edge's).
_SAME_AS = {"stream_offline": "offline", "stream_stale": "stale", "lock_fault": "lock_fault"}


def _now() -> datetime:
    return datetime.now(UTC)


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
        states: DeviceStates | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._client_for = client_for
        # Alone (tests), it keeps its own states; in the console they are the status
        # presenter's, whose changes reach state_changed through the app.
        self.states = states if states is not None else DeviceStates(on_change=self.state_changed)
        self._state_alerts: dict[str, Alert] = {}  # device key → its offline/key_needed alert
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
        self._state_alerts.pop(key, None)
        self._publish()

    def state_changed(self, key: str, state: DeviceState) -> None:
        """The device's one state changed: its offline / key-needed alert follows it at once.
        Back from offline, the edge's own alerts are dropped: a restarted edge raises again
        what still holds (its "cleared" events for the old ones may never come)."""
        before = self._state_alerts.pop(key, None)
        watch = self._watches.get(key)
        name = watch.device.name if watch is not None else key
        if state.name in ("offline", "key_needed"):
            code = state.name
            severity = "critical" if code == "offline" else "warning"
            keep = before is not None and before.code == code
            since = before.since if keep and before is not None else (state.since or _now())
            self._state_alerts[key] = Alert(
                key=f"{key}:{code}", device_key=key, code=code, severity=severity,
                message=f"{name}: {state.reason}", since=since,
            )  # fmt: skip
        if before is not None and before.code == "offline" and state.answers:
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
            self.states.ok(key, authenticated=False, stream=health.stream_status)
            try:  # a viewer key is needed for these
                info = await client.info()
                self.states.ok(key, authenticated=True)
                metrics = await client.metrics()
            except EdgeAuthError as err:
                self.states.refused(key, err.status)
        except EdgeUnreachable as err:
            self.states.miss(key, err.message)
            health = info = None
        except ConsoleError as err:
            log.debug("%s: %s", client.base_url, err)
        if key not in self._watches:  # removed while polling
            return
        changes = self._tracker.update(watch.device, health, info, metrics, now=datetime.now(UTC))
        # Whether the edge is offline is the one state's to say (state_changed), not the
        # tracker's own clock: the sidebar, the count and the tile say the same.
        reachable = health is not None or info is not None
        self._rules[key] = {a.key: a for a in changes.active if reachable or a.code != "offline"}
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
        if event.kind != ALERT:
            return
        try:  # the edge builds it from the same model (fleet_common.wire.events)
            alert = AlertPayload.model_validate(event.payload)
        except ValidationError as err:
            log.debug("%s: an alert event that does not fit its model: %s", key, err)
            return
        where = "".join(
            f":{name}={value}" for name, value in (("board", alert.board), ("cart", alert.cart))
            if value is not None
        )  # fmt: skip
        alert_key = f"{key}:edge:{alert.code}{where}"
        alerts = self._edge.setdefault(key, {})
        if alert.active:
            alerts[alert_key] = Alert(
                key=alert_key, device_key=key, code=alert.code, severity=alert.severity,
                message=alert.message, since=event.ts,
            )  # fmt: skip
        else:
            alerts.pop(alert_key, None)
        self._publish()

    # ------------------------------------------------------------------ state out
    def _active(self) -> list[tuple[Alert, str]]:
        """Every alert once: the edge's own alert wins over the console's rule of the same
        meaning (a lock fault both raise; a camera stream the edge says is offline)."""
        found: list[tuple[Alert, str]] = []
        edge_codes: set[tuple[str, str]] = set()
        for alerts in self._edge.values():
            for alert in alerts.values():
                found.append((alert, "edge"))
                edge_codes.add((alert.device_key, _SAME_AS.get(alert.code, alert.code)))
        for alerts in self._rules.values():
            for alert in alerts.values():
                if (alert.device_key, alert.code) not in edge_codes:
                    found.append((alert, "console"))
        found += [(a, "console") for a in self._state_alerts.values()]
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
