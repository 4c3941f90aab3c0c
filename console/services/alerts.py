"""Alert rules for one edge: pure functions of what the console last learned about it.

:func:`evaluate` turns a device, its last health / snapshot info / metrics and the time into the
alerts that hold now. Codes (the same words the edge and the cloud use):

- ``offline`` (critical): no answer for more than ``offline_after_s`` (10 s), or the edge
  answers but its camera stream is offline;
- ``stale`` (warning): the newest picture is older than ``stale_ms`` (5 s) while the stream is
  not offline;
- ``hot`` (warning, critical from ``critical_hot_c``): ``carwash_edge_temperature_celsius`` at
  or above ``hot_c`` (75 °C);
- ``lock_fault`` (warning; critical when a lock board does not answer): carts in ``fault``
  (``carwash_edge_lock_carts{state="fault"}``), boards down (``carwash_edge_lock_boards_down``)
  or a ``locks`` health component that is not ok.

An alert keeps its ``since`` while it holds (pass the previous ones). :class:`AlertTracker`
keeps that state for a presenter: last contact per device, active alerts, raised and cleared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from console.services.device import Device
from fleet_common.wire.edge import Health, SnapshotInfo

Severity = Literal["info", "warning", "critical"]
_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}

M_TEMPERATURE = "carwash_edge_temperature_celsius"
M_FRAME_AGE = "carwash_edge_frame_age_seconds"
M_CARTS_FAULT = 'carwash_edge_lock_carts{state="fault"}'
M_BOARDS_DOWN = "carwash_edge_lock_boards_down"


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    stale_ms: float = 5000.0
    offline_after_s: float = 10.0
    hot_c: float = 75.0
    critical_hot_c: float = 85.0


@dataclass(frozen=True, slots=True)
class Alert:
    key: str  # f"{device_key}:{code}"
    device_key: str
    code: str  # offline, stale, hot, lock_fault (or an edge's own alert code)
    severity: str  # "info" | "warning" | "critical" (Severity); str for alerts from edge events
    message: str
    since: datetime  # when the condition began (as far as the console knows)


def evaluate(
    device: Device,
    health: Health | None,
    info: SnapshotInfo | None,
    metrics: dict[str, float],
    *,
    now: datetime,
    thresholds: AlertThresholds = AlertThresholds(),
    last_seen: datetime | None = None,
    previous: Iterable[Alert] = (),
) -> list[Alert]:
    """The alerts that hold for ``device`` at ``now``, most severe first.

    ``health``/``info`` are None when the last attempt to get them failed (both None: the edge
    is unreachable). ``last_seen`` is the last time it answered, or when watching began if it
    never did; None means "unknown", and an unreachable edge is then offline at once.
    ``metrics`` are the last scrape (may be empty); they count only while the edge answers.
    """
    earlier = {a.key: a for a in previous}
    found: list[tuple[str, Severity, str, datetime | None]] = []
    reachable = health is not None or info is not None
    if not reachable:
        gone_s = None if last_seen is None else (now - last_seen).total_seconds()
        if gone_s is None or gone_s > thresholds.offline_after_s:
            text = "no answer" if gone_s is None else f"no answer for {_duration(gone_s)}"
            found.append(("offline", "critical", f"{device.name}: {text}", last_seen))
    else:
        stream = info.stream_status if info is not None else health.stream_status if health else ""
        if stream == "offline":
            found.append(("offline", "critical", f"{device.name}: camera stream offline", None))
        else:
            age_ms = _frame_age_ms(info, metrics)
            if age_ms is not None and age_ms > thresholds.stale_ms:
                text = f"{device.name}: picture {_duration(age_ms / 1000.0)} old"
                found.append(("stale", "warning", text, None))
        temp = metrics.get(M_TEMPERATURE, math.nan)
        if math.isfinite(temp) and temp >= thresholds.hot_c:
            severity: Severity = "critical" if temp >= thresholds.critical_hot_c else "warning"
            found.append(("hot", severity, f"{device.name}: {temp:.0f} °C", None))
        lock = _lock_fault(device, health, metrics)
        if lock is not None:
            found.append(("lock_fault", *lock, None))

    alerts: list[Alert] = []
    for code, severity, message, began in found:
        key = f"{device.key}:{code}"
        before = earlier.get(key)
        since = before.since if before is not None else began or now
        alerts.append(Alert(key, device.key, code, severity, message, since))
    alerts.sort(key=lambda a: (_RANK.get(a.severity, 3), a.code))
    return alerts


def _frame_age_ms(info: SnapshotInfo | None, metrics: dict[str, float]) -> float | None:
    if info is not None and info.latest is not None:
        return info.latest.age_ms
    seconds = metrics.get(M_FRAME_AGE, math.nan)
    return seconds * 1000.0 if math.isfinite(seconds) else None


def _lock_fault(
    device: Device, health: Health | None, metrics: dict[str, float]
) -> tuple[Severity, str] | None:
    parts: list[str] = []
    severity: Severity = "warning"
    boards = metrics.get(M_BOARDS_DOWN, math.nan)
    if math.isfinite(boards) and boards > 0:
        severity = "critical"
        parts.append(f"{boards:.0f} lock board{'s' if boards != 1 else ''} not answering")
    carts = metrics.get(M_CARTS_FAULT, math.nan)
    if math.isfinite(carts) and carts > 0:
        parts.append(f"{carts:.0f} cart{'s' if carts != 1 else ''} in fault")
    locks = health.components.get("locks") if health is not None else None
    if locks is not None and locks.status != "ok":
        if locks.status == "failing":
            severity = "critical"
        if not parts:
            parts.append(f"locks {locks.status}" + (f": {locks.detail}" if locks.detail else ""))
    if not parts:
        return None
    return severity, f"{device.name}: {', '.join(parts)}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True, slots=True)
class AlertChanges:
    raised: list[Alert]  # new since the last update (or escalated/changed severity)
    cleared: list[Alert]  # held before, not any more
    active: list[Alert]  # everything that holds now for this device


@dataclass(slots=True)
class AlertTracker:
    """:func:`evaluate` with memory: call :meth:`update` after each poll of a device."""

    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    _last_seen: dict[str, datetime] = field(default_factory=dict)
    _active: dict[str, list[Alert]] = field(default_factory=dict)

    def update(
        self,
        device: Device,
        health: Health | None,
        info: SnapshotInfo | None,
        metrics: dict[str, float],
        *,
        now: datetime,
    ) -> AlertChanges:
        if health is not None or info is not None:
            self._last_seen[device.key] = now
        else:  # never answered yet: the grace period runs from the first attempt
            self._last_seen.setdefault(device.key, now)
        before = self._active.get(device.key, [])
        active = evaluate(
            device, health, info, metrics, now=now, thresholds=self.thresholds,
            last_seen=self._last_seen[device.key], previous=before,
        )  # fmt: skip
        self._active[device.key] = active
        old = {(a.key, a.severity) for a in before}
        new_keys = {a.key for a in active}
        return AlertChanges(
            raised=[a for a in active if (a.key, a.severity) not in old],
            cleared=[a for a in before if a.key not in new_keys],
            active=active,
        )

    def forget(self, device_key: str) -> list[Alert]:
        """Drop a device (removed from the directory); returns its alerts, now cleared."""
        self._last_seen.pop(device_key, None)
        return self._active.pop(device_key, [])

    def active(self) -> list[Alert]:
        """Every device's alerts, most severe first."""
        every = [a for alerts in self._active.values() for a in alerts]
        return sorted(every, key=lambda a: (_RANK.get(a.severity, 3), a.device_key, a.code))
