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
from typing import Any, Final

from fleet_common.wire.edge import StreamStatus
from fleet_common.wire.events import (
    EventPayload,
    RecoveryPayload,
    StreamPayload,
    alert,
    dump_payload,
    kind_of,
)

WATCH_INTERVAL_S: Final = 0.5


@dataclass(frozen=True, slots=True)
class Emission:
    """One event to record: its typed payload (:mod:`fleet_common.wire.events`)."""

    model: EventPayload

    @property
    def kind(self) -> str:
        return kind_of(self.model)

    @property
    def payload(self) -> dict[str, Any]:
        return dump_payload(self.model)


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
            out.append(Emission(StreamPayload(
                status=status, previous=self.status,
                age_ms=None if age_ms is None else round(age_ms, 1), detail=detail,
            )))  # fmt: skip
            self.status = status
        if status == "offline":
            if self.offline_since is None:
                self.offline_since = now
            if self.stale_alert:
                self.stale_alert = False
                out.append(Emission(alert("stream_stale", "warning", False,
                                          "stream offline (no longer just stale)")))  # fmt: skip
            if not self.offline_alert and (
                self.worked or now - self.started >= self.startup_grace_s
            ):
                self.offline_alert = True
                why = f": {detail}" if detail else ""
                out.append(Emission(alert("stream_offline", "critical", True,
                                          f"camera stream offline{why}")))  # fmt: skip
            return out
        self.worked = True
        if status == "degraded":
            if not self.stale_alert:
                self.stale_alert = True
                age = f" ({age_ms / 1000:.1f} s old)" if age_ms is not None else ""
                out.append(Emission(alert("stream_stale", "warning", True,
                                          f"camera pictures arrive late{age}")))  # fmt: skip
            return out
        # online
        if self.stale_alert:
            self.stale_alert = False
            out.append(Emission(alert("stream_stale", "warning", False,
                                      "camera pictures fresh again")))  # fmt: skip
        if self.offline_alert:
            offline_s = now - (self.offline_since if self.offline_since is not None else now)
            self.offline_alert = False
            self.recoveries += 1
            out.append(Emission(RecoveryPayload(
                component="camera", offline_s=round(offline_s, 3), sessions=sessions,
            )))  # fmt: skip
            back = f"camera stream back online after {offline_s:.1f} s"
            out.append(Emission(alert("stream_offline", "critical", False, back)))
        self.offline_since = None
        return out
