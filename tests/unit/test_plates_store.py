"""Plate reads in the store: one transaction with their event and outbox row, filters, paging,
and the caps on reads and on crops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.errors import StoreError
from edge.plates.store import ReadFilter, add_read, get_crop, get_read, query_reads, read_count
from edge.store import Store

pytestmark = pytest.mark.unit


def _add(store: Store, plate: str, *, at: float, member: str | None = None,
         trigger: str = "motion", crop: bytes | None = b"\xff\xd8jpeg", max_reads: int = 1000,
         max_crops: int = 1000) -> int:  # fmt: skip
    row = {"ts": at, "captured_at": at, "snapshot_seq": int(at), "plate": plate, "score": 0.9,
           "recognizer": "local", "trigger": trigger, "member_id": member}  # fmt: skip

    def payload(read_id: int) -> dict[str, Any]:
        return {"id": read_id, "plate": plate, "member": member}

    return add_read(store, row, crop, payload, kind="plate.read", outbox_topic="plates",
                    max_reads=max_reads, max_crops=max_crops)  # fmt: skip


def test_a_read_its_event_and_its_outbox_row_commit_together(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "edge.db")
    event_id = _add(store, "AB123CD", at=100.0)
    (event,) = store.events_after(event_id - 1)
    assert event.kind == "plate.read"
    read = get_read(store, event.payload["id"])
    assert read is not None
    assert read.payload == event.payload
    assert read.event_id == event_id
    assert read.has_crop
    (item,) = store.outbox_batch()
    assert item.topic == "plates"
    assert item.payload == event.payload
    assert get_crop(store, read.id) == b"\xff\xd8jpeg"

    def failing(read_id: int) -> dict[str, Any]:
        raise StoreError("the event cannot be written")

    row = {"ts": 1.0, "captured_at": 1.0, "snapshot_seq": 1, "plate": "XX", "score": 0.5,
           "recognizer": "local", "trigger": "motion", "member_id": None}  # fmt: skip
    with pytest.raises(StoreError):
        add_read(store, row, None, failing, kind="plate.read", outbox_topic="plates",
                 max_reads=10, max_crops=10)  # fmt: skip
    assert read_count(store) == 1  # the read went with its event: nothing half-written
    assert len(store.outbox_batch()) == 1
    store.close()


def test_filters_and_paging(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "edge.db")
    for n in range(30):
        _add(
            store,
            f"AB{n:03d}CD" if n % 3 else f"XY{n:03d}ZZ",
            at=1000.0 + n,
            member="m-1" if n % 5 == 0 else None,
            trigger="handshake" if n % 2 else "motion",
        )
    ids = [r.id for r in query_reads(store, ReadFilter(limit=100))]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 30
    page1 = query_reads(store, ReadFilter(limit=7))
    page2 = query_reads(store, ReadFilter(limit=7, before_id=page1[-1].id))
    assert [r.id for r in page1 + page2] == ids[:14]
    xy = query_reads(store, ReadFilter(plate_prefix="XY", limit=100))
    assert {r.payload["plate"][:2] for r in xy} == {"XY"}
    assert len(xy) == 10
    assert len(query_reads(store, ReadFilter(plate_prefix="AB00", limit=100))) == 6  # 001..009
    members = query_reads(store, ReadFilter(member="*", limit=100))
    assert len(members) == 6
    assert all(r.payload["member"] == "m-1" for r in members)
    assert query_reads(store, ReadFilter(member="m-2")) == []
    window = query_reads(store, ReadFilter(since=1010.0, until=1020.0, limit=100))
    assert len(window) == 10
    assert len(query_reads(store, ReadFilter(trigger="handshake", limit=100))) == 15
    assert query_reads(store, ReadFilter(plate_prefix="%", limit=100)) == []  # no wildcard
    store.close()


def test_caps_prune_old_reads_and_old_crops(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "edge.db")
    for n in range(20):
        _add(store, f"AB{n:03d}CD", at=float(n), max_reads=10, max_crops=4)
    reads = query_reads(store, ReadFilter(limit=100))
    assert len(reads) == 10 == read_count(store)
    assert [r.has_crop for r in reads] == [True] * 4 + [False] * 6
    assert get_crop(store, reads[-1].id) is None
    store.close()
