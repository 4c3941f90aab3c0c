"""The sync client's state as plain data: for ``/api/health``, the console and the heartbeat.

:class:`SyncState` is updated on the loop by :class:`edge.sync.service.SyncService` only; readers
(the health route) take :meth:`SyncState.as_dict`, a JSON-ready copy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fleet_common.timefmt import rfc3339


@dataclass(slots=True)
class LoopState:
    """One loop (heartbeat, outbox, config, members)."""

    last_success: float | None = None  # Unix time
    last_error: str | None = None  # the last failure, cleared by a success
    last_error_at: float | None = None
    failures: int = 0  # consecutive
    backoff_s: float = 0.0  # the wait before the next attempt after a failure (0: none)

    def ok(self, now: float) -> None:
        self.last_success, self.last_error, self.failures, self.backoff_s = now, None, 0, 0.0

    def failed(self, now: float, error: str, backoff_s: float) -> None:
        self.last_error, self.last_error_at, self.backoff_s = error, now, backoff_s
        self.failures += 1

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        for key in ("last_success", "last_error_at"):
            doc[key] = rfc3339(doc[key]) if doc[key] is not None else None
        return doc


@dataclass(slots=True)
class SyncState:
    cloud_url: str
    device_id: str
    running: bool = False
    online: bool = False  # the last heartbeat was answered
    outbox_pending: int = 0  # rows still to send
    outbox_rejected: int = 0  # rows the cloud refused (kept, no longer sent)
    events_sent: int = 0  # acknowledged by the cloud since start (new + duplicates)
    config_received: int | None = None  # the cloud config version last received
    members_version: int | None = None
    cloud_config_version: int | None = None  # the cloud config version the edge runs now
    heartbeat: LoopState = field(default_factory=LoopState)
    outbox: LoopState = field(default_factory=LoopState)
    config: LoopState = field(default_factory=LoopState)
    members: LoopState = field(default_factory=LoopState)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (times in RFC 3339)."""
        loops = ("heartbeat", "outbox", "config", "members")
        doc: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in loops:
            doc[name] = getattr(self, name).as_dict()
        return doc
