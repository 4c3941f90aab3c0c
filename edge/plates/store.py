"""Plate reads in the local store (table ``plate_reads``). **Blocking**: call through a thread.

A read, its ``plate.read`` event and the event's outbox row are written in one transaction, so the
cloud learns of every stored read and of nothing that was not stored. Reads are capped (oldest
pruned) and so are their crops (older reads keep their text, not their picture).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update

from edge.store import Store
from edge.store.schema import plate_reads as pr

__all__ = ["ReadFilter", "StoredRead", "add_read", "get_crop", "get_read", "query_reads"]


@dataclass(frozen=True, slots=True)
class StoredRead:
    id: int
    ts: float
    event_id: int | None
    has_crop: bool
    payload: dict[str, Any]  # what the plate.read event carried


@dataclass(frozen=True, slots=True)
class ReadFilter:
    since: float | None = None  # captured at or after (epoch seconds)
    until: float | None = None  # captured before
    plate_prefix: str | None = None  # normalised
    member: str | None = None  # a member id, or "*" for any member
    recognizer: str | None = None
    trigger: str | None = None
    before_id: int | None = None  # paging: reads older than this id
    limit: int = 50


def add_read(
    store: Store,
    row: Mapping[str, Any],
    crop_jpeg: bytes | None,
    payload_for: Callable[[int], dict[str, Any]],
    *,
    kind: str,
    outbox_topic: str | None,
    max_reads: int,
    max_crops: int,
) -> int:
    """Store a read (``row``: ts, captured_at, snapshot_seq, plate, score, recognizer, trigger,
    member_id) and its event, whose payload ``payload_for(read_id)`` builds, in one transaction.
    Returns the event id (the read id is in the payload)."""
    with store.writing() as conn:
        read_id = int(
            conn.execute(
                insert(pr).values(**row, payload_json="{}", crop_jpeg=crop_jpeg).returning(pr.c.id)
            ).scalar_one()
        )
        payload = payload_for(read_id)
        event_id = store.add_event_in(conn, kind, payload, outbox_topic=outbox_topic)
        body = json.dumps(payload, separators=(",", ":"))
        conn.execute(update(pr).where(pr.c.id == read_id).values(payload_json=body,
                                                               event_id=event_id))  # fmt: skip
        # Ids only grow and deletes happen only at the old end: id arithmetic keeps the newest.
        conn.execute(delete(pr).where(pr.c.id <= read_id - max_reads))
        if crop_jpeg is not None:
            conn.execute(
                update(pr)
                .where(pr.c.id <= read_id - max_crops, pr.c.crop_jpeg.is_not(None))
                .values(crop_jpeg=None)
            )
    return event_id


def _select(f: ReadFilter) -> Select[Any]:
    query = select(pr.c.id, pr.c.ts, pr.c.event_id, pr.c.payload_json,
                   pr.c.crop_jpeg.is_not(None).label("has_crop"))  # fmt: skip
    if f.since is not None:
        query = query.where(pr.c.captured_at >= f.since)
    if f.until is not None:
        query = query.where(pr.c.captured_at < f.until)
    if f.plate_prefix:
        # A range on the indexed column rather than LIKE (whose wildcards a prefix could hold).
        query = query.where(pr.c.plate >= f.plate_prefix, pr.c.plate < f.plate_prefix + "\uffff")
    if f.member == "*":
        query = query.where(pr.c.member_id.is_not(None))
    elif f.member:
        query = query.where(pr.c.member_id == f.member)
    if f.recognizer:
        query = query.where(pr.c.recognizer == f.recognizer)
    if f.trigger:
        query = query.where(pr.c.trigger == f.trigger)
    if f.before_id is not None:
        query = query.where(pr.c.id < f.before_id)
    return query.order_by(pr.c.id.desc()).limit(f.limit)


def _stored(r: Any) -> StoredRead:
    return StoredRead(r.id, r.ts, r.event_id, bool(r.has_crop), json.loads(r.payload_json))


def query_reads(store: Store, f: ReadFilter) -> list[StoredRead]:
    """Reads matching ``f``, newest first."""
    with store.transaction(write=False) as conn:
        return [_stored(r) for r in conn.execute(_select(f)).all()]


def get_read(store: Store, read_id: int) -> StoredRead | None:
    with store.transaction(write=False) as conn:
        row = conn.execute(_select(ReadFilter(limit=1)).where(pr.c.id == read_id)).first()
    return _stored(row) if row is not None else None


def get_crop(store: Store, read_id: int) -> bytes | None:
    with store.transaction(write=False) as conn:
        crop = conn.execute(select(pr.c.crop_jpeg).where(pr.c.id == read_id)).scalar_one_or_none()
    return bytes(crop) if crop is not None else None


def read_count(store: Store) -> int:
    with store.transaction(write=False) as conn:
        return int(conn.execute(select(func.count()).select_from(pr)).scalar_one())
