"""Storing a batch: each event once (by device and key), then the rollups of the new ones.

One transaction per batch: the events (``INSERT ... ON CONFLICT DO NOTHING RETURNING`` tells
which are new), their plate reads, and the additions to the hourly rollups. A replayed batch
inserts nothing, so it adds nothing: the rollups count every event exactly once, whatever the
order or the number of times batches arrive.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert

from cloud_sync.db import dialect
from cloud_sync.db.tables import events, plate_reads, rollup_durations, rollups
from cloud_sync.devices.keys import DeviceAuth
from cloud_sync.errors import Invalid
from cloud_sync.ingest import rollup
from fleet_common.timefmt import parse_timestamp
from fleet_common.wire.cloud import IngestEvent

MAX_PLATE = 32


@dataclass(frozen=True, slots=True)
class Stored:
    accepted: int
    duplicates: int
    kinds: Counter[str]  # new events by kind


def event_time(event: IngestEvent) -> float:
    try:
        ts = parse_timestamp(event.ts)
    except ValueError as err:
        raise Invalid(f"event {event.key!r}: ts is not an RFC 3339 time", code="bad_time") from err
    if not math.isfinite(ts):
        raise Invalid(f"event {event.key!r}: ts is not a time", code="bad_time")
    return ts


def store_batch(
    conn: Connection, device: DeviceAuth, batch: Sequence[IngestEvent], now: float
) -> Stored:
    unique: dict[str, tuple[IngestEvent, float]] = {}
    for event in batch:
        unique.setdefault(event.key, (event, event_time(event)))
    if not unique:
        return Stored(0, 0, Counter())
    rows = [
        {"org_id": device.org_id, "site_id": device.site_id, "device_id": device.device_id,
         "key": key, "seq": event.seq, "kind": event.kind, "topic": event.topic, "ts": ts,
         "received_at": now, "payload": event.payload}
        for key, (event, ts) in unique.items()
    ]  # fmt: skip
    stmt = dialect.insert_ignore(
        conn, events, keys=("device_id", "key"), returning=(events.c.id, events.c.key)
    )
    inserted = {str(key): int(event_id) for event_id, key in conn.execute(stmt.values(rows))}
    new = [(inserted[key], *unique[key]) for key in unique if key in inserted]
    reads = [_plate_row(device, event_id, event, ts) for event_id, event, ts in new]
    reads = [r for r in reads if r is not None]
    if reads:
        conn.execute(insert(plate_reads).values(reads))
    add_rollups(conn, rollup.deltas((device.site_id, e.kind, ts, e.payload) for _, e, ts in new))
    return Stored(len(new), len(batch) - len(new), Counter(e.kind for _, e, _ in new))


def add_rollups(conn: Connection, deltas: dict[tuple[str, int], rollup.Delta]) -> None:
    """Add ``deltas`` to the rollup rows, in key order (no deadlock between replicas)."""
    keys = sorted(deltas)
    dialect.upsert_add(
        conn, rollups, [{"site_id": s, "bucket": b, **deltas[(s, b)].row()} for s, b in keys],
        keys=("site_id", "bucket"), added=(*rollup.COUNTS, *rollup.SUMS),
    )  # fmt: skip
    slots = [
        {"site_id": s, "bucket": b, "slot": slot, "count": n}
        for s, b in keys
        for slot, n in sorted(deltas[(s, b)].durations.items())
    ]
    dialect.upsert_add(
        conn, rollup_durations, slots, keys=("site_id", "bucket", "slot"), added=("count",)
    )


def _plate_row(
    device: DeviceAuth, event_id: int, event: IngestEvent, ts: float
) -> dict[str, Any] | None:
    if event.kind != "plate.read":
        return None
    plate = event.payload.get("plate")
    if not isinstance(plate, str) or not plate.strip():
        return None
    score = event.payload.get("score")
    score = float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None
    member = event.payload.get("member")
    member_id = member.get("id") if isinstance(member, dict) else None
    return {
        "event_id": event_id, "org_id": device.org_id, "site_id": device.site_id,
        "device_id": device.device_id, "ts": ts, "plate": plate.strip().upper()[:MAX_PLATE],
        "score": score,
        "member_id": str(member_id)[:64] if member_id is not None else None,
        "payload": event.payload,
    }  # fmt: skip
