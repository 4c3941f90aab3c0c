"""The plate feed's pure half: rows from ``plate`` events, the filter, CSV export.

No Qt: :mod:`console.ui.feed` keeps these rows in a table model and asks :class:`FeedFilter`
which to show; :func:`write_csv` runs in a worker thread.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

CSV_COLUMNS = (
    "time", "site", "device", "plate", "score", "member", "plan", "device_key", "event_id",
    "snapshot_seq",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PlateRow:
    """One plate read as the feed shows it."""

    device_key: str
    device_name: str
    site: str
    event_id: int
    ts: datetime
    plate: str
    score: float
    member: Mapping[str, Any] | None
    snapshot_seq: int | None

    @property
    def is_member(self) -> bool:
        return self.member is not None

    @property
    def member_label(self) -> str:
        """The member's name (or id) for the table; empty for a non-member."""
        if self.member is None:
            return ""
        for key in ("name", "member", "id", "member_id"):
            value = self.member.get(key)
            if value:
                return str(value)
        return "member"

    @property
    def plan(self) -> str:
        return str(self.member.get("plan", "")) if self.member is not None else ""


def row_from_event(
    device_key: str,
    device_name: str,
    site: str,
    event_id: int,
    ts: datetime,
    payload: Mapping[str, Any],
) -> PlateRow | None:
    """The row of a ``plate`` event's payload; None when the payload has no plate text."""
    plate = payload.get("plate")
    if not isinstance(plate, str) or not plate:
        return None
    score = payload.get("score")
    member = payload.get("member")
    seq = payload.get("snapshot_seq")
    return PlateRow(
        device_key=device_key,
        device_name=device_name,
        site=site,
        event_id=event_id,
        ts=ts,
        plate=plate,
        score=float(score) if isinstance(score, int | float) else 0.0,
        member=member if isinstance(member, Mapping) else None,
        snapshot_seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
    )


def normalise_plate(text: str) -> str:
    """Plates compare without spaces, dashes and case: ``ab-12 3`` finds ``AB123``."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """What the feed shows. Empty fields match everything."""

    text: str = ""
    site: str | None = None
    device_key: str | None = None
    member_only: bool = False
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, row: PlateRow) -> bool:
        if self.member_only and not row.is_member:
            return False
        if self.site is not None and row.site != self.site:
            return False
        if self.device_key is not None and row.device_key != self.device_key:
            return False
        if self.since is not None and row.ts < self.since:
            return False
        if self.until is not None and row.ts > self.until:
            return False
        if self.text:
            needle = normalise_plate(self.text)
            if needle and needle not in normalise_plate(row.plate):
                return needle in normalise_plate(row.member_label)
        return True


def csv_record(row: PlateRow) -> list[str]:
    return [
        row.ts.isoformat(timespec="seconds"),
        row.site,
        row.device_name,
        row.plate,
        f"{row.score:.3f}",
        row.member_label,
        row.plan,
        row.device_key,
        str(row.event_id),
        "" if row.snapshot_seq is None else str(row.snapshot_seq),
    ]


def write_csv(path: Path, rows: Iterable[PlateRow]) -> int:
    """Write ``rows`` (UTF-8 with a BOM, so spreadsheet programs read accents) atomically enough:
    a temporary file renamed over ``path``. Returns how many rows were written. Blocking."""
    tmp = path.with_name(path.name + ".part")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            for row in rows:
                writer.writerow(csv_record(row))
                count += 1
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
