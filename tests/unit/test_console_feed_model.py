"""The plate feed's pure half (rows, filter, CSV) and its bounded table model / filter proxy."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from console.models.device_charts import Ring, Sampler, histogram_totals
from console.models.plate_rows import CSV_COLUMNS, FeedFilter, PlateRow, row_from_event, write_csv
from console.ui.feed import (
    COL_MEMBER,
    COL_PICTURE,
    COL_PLATE,
    COL_SCORE,
    ROW_ROLE,
    PlateFilterProxy,
    PlateTableModel,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _row(i: int, plate: str, *, member: dict[str, Any] | None = None, site: str = "north",
         device: str = "bay-1") -> PlateRow:  # fmt: skip
    payload = {"plate": plate, "score": 0.9, "member": member, "snapshot_seq": 100 + i}
    row = row_from_event(device, device.upper(), site, i, T0 + timedelta(minutes=i), payload)
    assert row is not None
    return row


def test_rows_from_plate_read_payloads() -> None:
    row = _row(1, "AB123", member={"name": "Ann Lee", "plan": "gold"})
    assert (row.plate, row.score, row.snapshot_seq, row.member_label, row.plan) == (
        "AB123", 0.9, 101, "Ann Lee", "gold",
    )  # fmt: skip
    assert row.is_member
    assert not _row(2, "CD456").is_member
    assert row_from_event("k", "n", "s", 3, T0, {"score": 0.5}) is None
    odd = row_from_event("k", "n", "s", 4, T0, {"plate": "X1", "snapshot_seq": True})
    assert odd is not None
    assert (odd.snapshot_seq, odd.score, odd.thumb_key) == (None, 0.0, None)
    assert odd.ts == T0  # no captured_at: when the edge logged it


def test_rows_from_the_full_plate_read_contract() -> None:
    payload = {
        "id": "r42", "plate": "KA123B", "text": "KA-123-B", "score": 0.91, "dscore": 0.88,
        "recognizer": "local", "trigger": "handshake", "snapshot_seq": 7,
        "captured_at": "2026-11-24T15:01:02.500Z", "box": {"xmin": 1, "ymin": 2, "xmax": 3,
        "ymax": 4}, "region": "de", "vehicle": None, "candidates": [{"plate": "KA123B",
        "score": 0.91}], "latency_ms": 140, "crop_url": "/api/plates/r42/crop.jpg",
        "member": {"id": "m-7", "name": "Ann Lee", "plan": "gold", "status": "expired",
                   "match": "fuzzy"},
    }  # fmt: skip
    row = row_from_event("k", "bay 1", "north", 12, T0, payload)
    assert row is not None
    assert (row.plate, row.text, row.read_id, row.snapshot_seq) == ("KA123B", "KA-123-B", "r42", 7)
    assert row.ts == datetime(2026, 11, 24, 15, 1, 2, 500000, tzinfo=UTC)  # the picture's time
    assert (row.member_label, row.plan, row.match, row.member_status) == (
        "Ann Lee", "gold", "fuzzy", "expired",
    )  # fmt: skip
    assert row.crop_url == row.thumb_key == "/api/plates/r42/crop.jpg"
    assert row_from_event("k", "bay 1", "north", 13, T0, {**payload, "member": None}) is not None
    # A crop URL that is not a crop path on the same edge is ignored (the key goes with it).
    for bad in ("http://elsewhere/api/plates/r42/crop.jpg", "//evil/x.jpg",
                "/api/plates/../keys/crop.jpg", "/api/plates/r42/crop.jpg?x=1", 42):  # fmt: skip
        other = row_from_event("k", "bay 1", "north", 14, T0, {**payload, "crop_url": bad})
        assert other is not None
        assert (other.crop_url, other.thumb_key) == (None, "seq:7"), bad


def test_filter_by_text_site_device_member_and_time() -> None:
    rows = [
        _row(0, "AB-123", member={"name": "Ann"}),
        _row(1, "CD456", site="south", device="bay-2"),
        _row(2, "XAB12", device="bay-2"),
    ]

    def shown(f: FeedFilter) -> list[int]:
        return [r.event_id for r in rows if f.matches(r)]

    assert shown(FeedFilter()) == [0, 1, 2]
    assert shown(FeedFilter(text="ab 12")) == [0, 2]  # spaces, dashes and case ignored
    assert shown(FeedFilter(text="ann")) == [0]  # the member's name too
    assert shown(FeedFilter(site="south")) == [1]
    assert shown(FeedFilter(device_key="bay-2")) == [1, 2]
    assert shown(FeedFilter(member_only=True)) == [0]
    assert shown(FeedFilter(since=T0 + timedelta(minutes=1))) == [1, 2]
    assert shown(FeedFilter(until=T0 + timedelta(minutes=1))) == [0, 1]


def test_csv_export_writes_the_rows_readably(tmp_path: Path) -> None:
    rows = [_row(0, "ÄB123", member={"name": "Zoë", "plan": "gold"}), _row(1, "CD456")]
    target = tmp_path / "plates.csv"
    assert write_csv(target, rows) == 2
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheet programs read UTF-8
    with target.open(encoding="utf-8-sig", newline="") as f:
        records = list(csv.DictReader(f))
    assert [r["plate"] for r in records] == ["ÄB123", "CD456"]
    assert records[0]["member"] == "Zoë"
    assert records[0]["plan"] == "gold"
    assert records[0]["time"] == "2026-11-24T15:00:00+00:00"
    assert records[1]["member"] == ""
    assert records[1]["snapshot_seq"] == "101"
    assert list(records[0]) == list(CSV_COLUMNS)
    assert not list(tmp_path.glob("*.part"))


def test_csv_export_failure_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "plates.csv"

    def rows() -> Any:
        yield _row(0, "AB1")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_csv(target, rows())
    assert not target.exists()
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ chart buffers
def test_ring_is_bounded_and_keeps_gaps() -> None:
    ring = Ring(3)
    for t in range(5):
        ring.append(float(t), None if t == 3 else t * 10.0)
    assert ring.xs() == [2.0, 3.0, 4.0]
    assert ring.ys()[0] == 20.0
    assert ring.ys()[1] != ring.ys()[1]  # NaN: a gap in the chart
    assert ring.last() == 40.0
    assert len(ring) == ring.capacity == 3


def test_sampler_derives_rates_from_counters() -> None:
    sampler = Sampler()
    hist = "carwash_edge_http_request_duration_seconds"
    first = {
        "process_cpu_seconds_total": 10.0,
        "carwash_edge_temperature_celsius": float("nan"),
        f'{hist}_sum{{method="GET",route="/api/snapshot"}}': 0.010,
        f'{hist}_count{{method="GET",route="/api/snapshot"}}': 10.0,
        f'{hist}_sum{{method="GET",route="/api/snapshot/info"}}': 5.0,
        f'{hist}_count{{method="GET",route="/api/snapshot/info"}}': 5.0,
    }
    s1 = sampler.sample(100.0, first, fps_in=20.0, frame_age_ms=150.0)
    assert (s1.cpu, s1.snapshot_latency, s1.temperature, s1.fps_in) == (None, None, None, 20.0)
    assert s1.frame_age == pytest.approx(0.15)
    second = dict(first)
    second["process_cpu_seconds_total"] = 10.5
    second["carwash_edge_temperature_celsius"] = 51.5
    second[f'{hist}_sum{{method="GET",route="/api/snapshot"}}'] = 0.030
    second[f'{hist}_count{{method="GET",route="/api/snapshot"}}'] = 20.0
    s2 = sampler.sample(102.0, second)
    assert s2.cpu == pytest.approx(25.0)
    assert s2.snapshot_latency == pytest.approx(2.0)  # 20 ms over 10 requests
    assert s2.temperature == 51.5
    # The edge restarted: counters went back; no negative point.
    s3 = sampler.sample(104.0, {"process_cpu_seconds_total": 0.2})
    assert s3.cpu is None
    assert histogram_totals(second, hist, "/api/snapshot") == pytest.approx((0.030, 20.0))


# ------------------------------------------------------------------ table model and proxy
def test_model_is_bounded_newest_first_and_drops_duplicates() -> None:
    model = PlateTableModel(max_rows=3)
    inserted: list[tuple[int, int]] = []
    removed: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _p, first, last: inserted.append((first, last)))
    model.rowsRemoved.connect(lambda _p, first, last: removed.append((first, last)))
    model.add_rows([_row(0, "A0"), _row(1, "A1", member={"name": "Ann"})])
    model.add_rows([_row(1, "A1", member={"name": "Ann"})])  # the same event again (a resume)
    assert model.rowCount() == 2
    model.add_rows([_row(2, "A2"), _row(3, "A3")])
    assert [r.plate for r in model.rows()] == ["A3", "A2", "A1"]  # A0 dropped: bounded
    assert inserted == [(0, 1), (0, 1)]
    assert removed == [(3, 3)]
    index = model.index(2, COL_PLATE)
    assert model.data(index) == "A1"
    assert model.data(model.index(2, COL_MEMBER)) == "★ Ann"
    assert model.data(model.index(0, COL_MEMBER)) == ""
    assert model.data(index, ROW_ROLE).event_id == 1
    assert model.data(index, Qt.ItemDataRole.BackgroundRole) is not None  # member highlight
    assert model.data(model.index(0, COL_PLATE), Qt.ItemDataRole.BackgroundRole) is None
    # A0 may come again (a console restart's recent reads): it was dropped, so it is new.
    model.add_rows([_row(0, "A0")])
    assert model.rowCount() == 3


def test_model_asks_once_for_each_thumbnail() -> None:
    model = PlateTableModel()
    wanted: list[tuple[str, str | None]] = []
    model.thumbnailWanted.connect(lambda row: wanted.append((row.device_key, row.thumb_key)))
    model.add_rows([_row(0, "A0"), _row(1, "A1")])
    for _ in range(3):
        for i in range(2):
            model.data(model.index(i, COL_PICTURE), Qt.ItemDataRole.DecorationRole)
    assert wanted == [("bay-1", "seq:101"), ("bay-1", "seq:100")]
    changed: list[int] = []
    model.dataChanged.connect(lambda top, _b, _r: changed.append(top.row()))
    image = QImage(96, 54, QImage.Format.Format_RGB32)
    model.set_thumbnail("bay-1", "seq:100", image)
    assert changed == [1]
    assert model.data(model.index(1, COL_PICTURE), Qt.ItemDataRole.DecorationRole) is image


def test_proxy_filters_and_sorts_through_the_feed_filter() -> None:
    model = PlateTableModel()
    proxy = PlateFilterProxy()
    proxy.setSourceModel(model)
    rows = [
        _row(0, "AB123", member={"name": "Ann"}),
        _row(1, "CD456", site="south"),
        _row(2, "XAB9"),
    ]
    model.add_rows(rows)
    proxy.sort(COL_PLATE, Qt.SortOrder.AscendingOrder)
    assert [r.plate for r in proxy.visible_rows()] == ["AB123", "CD456", "XAB9"]
    proxy.set_feed_filter(FeedFilter(text="ab"))
    assert [r.plate for r in proxy.visible_rows()] == ["AB123", "XAB9"]
    proxy.set_feed_filter(FeedFilter(member_only=True))
    assert [r.plate for r in proxy.visible_rows()] == ["AB123"]
    proxy.set_feed_filter(FeedFilter(site="south"))
    assert [r.plate for r in proxy.visible_rows()] == ["CD456"]
    proxy.set_feed_filter(FeedFilter())
    model.add_rows([_row(3, "AA000")])  # new rows land in sorted position
    assert proxy.visible_rows()[0].plate == "AA000"
    proxy.sort(COL_SCORE, Qt.SortOrder.DescendingOrder)
    assert len(proxy.visible_rows()) == 4
