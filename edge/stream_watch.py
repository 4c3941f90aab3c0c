"""The stream watch: turns samples of the stream's health into ``stream``, ``alert`` and
``recovery`` events (payloads as in the edge/console contract).

Pure: :meth:`StreamWatch.update` takes one sample and returns the events to record; the edge
samples every :data:`WATCH_INTERVAL_S` on its loop and emits them (edge/service.py).

- every change of status is a ``stream`` event;
- ``offline`` raises the ``stream_offline`` alert (critical) once the stream had worked, or once
  it has been offline for the start-up grace (a camera that is down when the edge starts);
- ``degraded`` raises ``stream_stale`` (warning); ``online`` or ``offline`` clears it;
- ``online`` while ``stream_offline`` is raised clears it and is a ``recovery``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from fleet_common.wire.edge import StreamStatus

WATCH_INTERVAL_S: Final = 0.5
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Emission:
    kind: str
    payload: dict[str, Any]


def alert(code: str, severity: Severity, active: bool, message: str) -> Emission:
    """An ``alert`` event (the guards raise theirs through this too)."""
    return Emission(
        "alert", {"code": code, "severity": severity, "active": active, "message": message}
    )


@dataclass
class StreamWatch:
    """State between samples. ``started`` and every ``now`` are monotonic seconds."""

    started: float
    startup_grace_s: float
    status: StreamStatus | None = None
    offline_since: float | None = None
    worked: bool = False  # the stream was online or degraded at least once
    offline_alert: bool = False
    stale_alert: bool = False
    recoveries: int = 0

    def update(
        self,
        status: StreamStatus,
        now: float,
        *,
        age_ms: float | None,
        detail: str,
        sessions: int,
    ) -> list[Emission]:
        out: list[Emission] = []
        if status != self.status:
            out.append(Emission("stream", {
                "status": status, "previous": self.status,
                "age_ms": None if age_ms is None else round(age_ms, 1), "detail": detail,
            }))  # fmt: skip
            self.status = status
        if status == "offline":
            if self.offline_since is None:
                self.offline_since = now
            if self.stale_alert:
                self.stale_alert = False
                out.append(alert("stream_stale", "warning", False, "stream offline (no longer"
                                 " just stale)"))  # fmt: skip
            if not self.offline_alert and (
                self.worked or now - self.started >= self.startup_grace_s
            ):
                self.offline_alert = True
                why = f": {detail}" if detail else ""
                out.append(alert("stream_offline", "critical", True,
                                 f"camera stream offline{why}"))  # fmt: skip
            return out
        self.worked = True
        if status == "degraded":
            if not self.stale_alert:
                self.stale_alert = True
                age = f" ({age_ms / 1000:.1f} s old)" if age_ms is not None else ""
                out.append(alert("stream_stale", "warning", True,
                                 f"camera pictures arrive late{age}"))  # fmt: skip
            return out
        # online
        if self.stale_alert:
            self.stale_alert = False
            out.append(alert("stream_stale", "warning", False, "camera pictures fresh again"))
        if self.offline_alert:
            offline_s = now - (self.offline_since if self.offline_since is not None else now)
            self.offline_alert = False
            self.recoveries += 1
            out.append(Emission("recovery", {
                "component": "camera", "offline_s": round(offline_s, 3), "sessions": sessions,
            }))  # fmt: skip
            out.append(alert("stream_offline", "critical", False,
                             f"camera stream back online after {offline_s:.1f} s"))  # fmt: skip
        self.offline_since = None
        return out
