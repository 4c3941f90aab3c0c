"""Heartbeats without a database round trip each, and online/offline derived from them.

- :class:`HeartbeatBuffer`: the newest heartbeat of each device, written by one statement per
  flush (once a second), with the stream-uptime seconds it adds to the site's hourly rollup.
  A replica that dies loses at most one second of last-seen times: the next heartbeat repairs
  them. Several replicas may buffer the same device: the newest ``last_seen`` wins (the update
  is conditional), and uptime seconds simply add up.
- :class:`PendingCommands`: the set of devices with a queued command, reloaded from the
  database every second (sooner on PostgreSQL when a ``NOTIFY`` says one was queued), so a
  heartbeat of a device with nothing waiting needs no query.

A device is online while its last heartbeat is younger than ``OFFLINE_AFTER`` intervals.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, bindparam, or_, update

from cloud_sync.db.tables import devices
from cloud_sync.ingest.rollup import Delta, hour_bucket
from fleet_common.wire.cloud import HeartbeatRequest

OFFLINE_AFTER: Final = 3  # missed intervals


def is_online(last_seen: float | None, now: float, interval_s: float) -> bool:
    return last_seen is not None and now - last_seen <= OFFLINE_AFTER * interval_s


@dataclass(slots=True)
class _Beat:
    site_id: str
    seen: float
    body: HeartbeatRequest


class HeartbeatBuffer:
    """Thread-safe: :meth:`add` on the event loop, :meth:`take` from the flushing thread."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._beats: dict[str, _Beat] = {}
        self._uptime: dict[tuple[str, int], Delta] = {}
        self._lock = threading.Lock()

    def add(self, device_id: str, site_id: str, body: HeartbeatRequest, now: float) -> None:
        # Each heartbeat stands for one interval of observation: stateless, so it adds up
        # across replicas and never counts a gap twice.
        key = (site_id, hour_bucket(now))
        online = self.interval_s if body.stream_status == "online" else 0.0
        with self._lock:
            self._beats[device_id] = _Beat(site_id, now, body)
            delta = self._uptime.setdefault(key, Delta())
            delta.observed_s += self.interval_s
            delta.online_s += online

    def __len__(self) -> int:
        return len(self._beats)

    def take(self) -> tuple[list[dict[str, Any]], dict[tuple[str, int], Delta]]:
        with self._lock:
            beats, self._beats = self._beats, {}
            uptime, self._uptime = self._uptime, {}
        rows = [
            {"b_id": device_id, "b_seen": beat.seen, "b_status": beat.body.status,
             "b_stream": beat.body.stream_status, "b_cfg": beat.body.config_version,
             "b_cloud_cfg": beat.body.cloud_config_version,
             "b_ver": beat.body.edge_version, "b_metrics": beat.body.metrics}
            for device_id, beat in sorted(beats.items())
        ]  # fmt: skip
        return rows, uptime


def write_beats(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """One executemany UPDATE; a row older than what is stored (another replica) is skipped."""
    if not rows:
        return
    stmt = (
        update(devices)
        .where(devices.c.id == bindparam("b_id"),
               or_(devices.c.last_seen.is_(None), devices.c.last_seen < bindparam("b_seen")))
        .values(last_seen=bindparam("b_seen"), status=bindparam("b_status"),
                stream_status=bindparam("b_stream"), config_version=bindparam("b_cfg"),
                cloud_config_version=bindparam("b_cloud_cfg"),
                edge_version=bindparam("b_ver"), metrics=bindparam("b_metrics"))
    )  # fmt: skip
    conn.execute(stmt, rows)


class PendingCommands:
    """Device ids with a queued command; replaced wholesale by each reload."""

    def __init__(self) -> None:
        self._ids: frozenset[str] = frozenset()

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._ids

    def replace(self, ids: set[str]) -> None:
        self._ids = frozenset(ids)

    def add(self, device_id: str) -> None:
        self._ids = self._ids | {device_id}

    def discard(self, device_id: str) -> None:
        self._ids = self._ids - {device_id}
