"""Storing a batch: each event once (by device and key), then the rollups of the new ones.

One transaction per batch: the events (``INSERT ... ON CONFLICT DO NOTHING RETURNING`` tells
which are new), their plate reads, and the additions to the hourly rollups. A replayed batch
inserts nothing, so it adds nothing: the rollups count every event exactly once, whatever the
order or the number of times batches arrive.

Payloads are read with the edge's own models (:mod:`fleet_common.wire.events`). An event whose
payload does not fit its kind's model is still stored as it came (nothing is refused: the
edge could never send it better), but it adds no plate read and nothing to the rollups; the
batch's :attr:`Stored.unfit` says why, by kind.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, insert

from cloud_sync.db import dialect
from cloud_sync.db.tables import events, plate_reads, rollup_durations, rollups
from cloud_sync.devices.keys import DeviceAuth
from cloud_sync.errors import Invalid
from cloud_sync.ingest import rollup
from fleet_common.problems import listed, problem_list
from fleet_common.timefmt import parse_timestamp
from fleet_common.wire.cloud import IngestEvent
from fleet_common.wire.events import PLATE_READ, PlateReadPayload, parse_payload

log = logging.getLogger("cloud.ingest")

MAX_PLATE = 32


@dataclass(frozen=True, slots=True)
class Stored:
    accepted: int
    duplicates: int
    kinds: Counter[str]  # new events by kind
    unfit: dict[str, str] = field(default_factory=dict)  # kind: why its payload did not fit


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
    # executemany, not one multi-row VALUES: SQLAlchemy caches the compiled statement and
    # batches the rows itself ("insertmanyvalues"), where compiling 200 rows x 10 columns of
    # bind parameters anew for every batch cost more than the database's work.
    inserted = {str(key): int(event_id) for event_id, key in conn.execute(stmt, rows)}
    new = [(inserted[key], *unique[key]) for key in unique if key in inserted]
    unfit: dict[str, str] = {}
    fitting = [(event_id, e, ts) for event_id, e, ts in new if _fits(e, unfit)]
    rows_or_none = (_plate_row(device, event_id, event, ts) for event_id, event, ts in fitting)
    reads = [r for r in rows_or_none if r is not None]
    if reads:
        conn.execute(insert(plate_reads), reads)
    add_rollups(
        conn, rollup.deltas((device.site_id, e.kind, ts, e.payload) for _, e, ts in fitting)
    )
    if unfit:
        log.warning("ingest from device %s: payloads that do not fit their kind (stored, not"
                    " counted): %s", device.device_id, unfit)  # fmt: skip
    return Stored(len(new), len(batch) - len(new), Counter(e.kind for _, e, _ in new), unfit)


def _fits(event: IngestEvent, unfit: dict[str, str]) -> bool:
    """Whether the event's payload fits its kind's model; if not, why goes into ``unfit``."""
    try:
        parse_payload(event.kind, event.payload)
    except ValidationError as err:
        unfit.setdefault(event.kind, listed(problem_list(err.errors())[:3]))
        return False
    return True


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
    """The plate read of a ``plate.read`` event whose payload fits (see :func:`_fits`)."""
    if event.kind != PLATE_READ:
        return None
    read = PlateReadPayload.model_validate(event.payload)
    plate = read.plate.strip()
    if not plate:
        return None
    return {
        "event_id": event_id, "org_id": device.org_id, "site_id": device.site_id,
        "device_id": device.device_id, "ts": ts, "plate": plate.upper()[:MAX_PLATE],
        "score": read.score if math.isfinite(read.score) else None,
        "member_id": read.member.id[:64] if read.member is not None else None,
        "payload": event.payload,
    }  # fmt: skip
