"""The plate feed's pure half: rows from ``plate.read`` events, the filter, CSV export.

No Qt: :mod:`console.ui.feed` keeps these rows in a table model and asks :class:`FeedFilter`
which to show; :func:`write_csv` runs in a worker thread.

The edge's plate service emits ``plate.read`` (one per read: the plate, its score, the member
it matched if any, the snapshot it was read from and a crop of the plate) and, for a member,
``member.recognized`` as well; the feed needs only the first (it carries the member too).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

PLATE_READ: Final = "plate.read"
# The only crop URLs the console follows: a path on the same edge (the API key is sent with it).
_CROP_PATH: Final = re.compile(r"/api/plates/[A-Za-z0-9][A-Za-z0-9._~-]*/crop\.jpg")

CSV_COLUMNS = (
    "time", "site", "device", "plate", "score", "member", "plan", "match", "device_key",
    "event_id", "read_id", "snapshot_seq",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PlateRow:
    """One plate read as the feed shows it."""

    device_key: str
    device_name: str
    site: str
    event_id: int
    ts: datetime  # when the picture was taken (else when the edge logged the read)
    plate: str  # normalised: A-Z and 0-9 only
    score: float
    member: Mapping[str, Any] | None  # {"id", "name", "plan", "status", "match"}
    snapshot_seq: int | None
    read_id: str = ""
    text: str = ""  # the raw text the recogniser read
    crop_url: str | None = None  # the edge's crop of the plate (a path on the edge)

    @property
    def is_member(self) -> bool:
        return self.member is not None

    @property
    def member_label(self) -> str:
        """The member's name (or id) for the table; empty for a non-member."""
        if self.member is None:
            return ""
        for key in ("name", "id", "member", "member_id"):
            value = self.member.get(key)
            if value:
                return str(value)
        return "member"

    @property
    def plan(self) -> str:
        return self._member_field("plan")

    @property
    def match(self) -> str:
        """ "exact" or "fuzzy" (a near miss of the member's plate); empty for a non-member."""
        return self._member_field("match")

    @property
    def member_status(self) -> str:
        return self._member_field("status")

    def _member_field(self, key: str) -> str:
        value = self.member.get(key) if self.member is not None else None
        return str(value) if value is not None else ""

    @property
    def thumb_key(self) -> str | None:
        """What identifies this row's thumbnail on its device: the crop, else the snapshot."""
        if self.crop_url:
            return self.crop_url
        return f"seq:{self.snapshot_seq}" if self.snapshot_seq is not None else None


def row_from_event(
    device_key: str,
    device_name: str,
    site: str,
    event_id: int,
    ts: datetime,
    payload: Mapping[str, Any],
) -> PlateRow | None:
    """The row of a ``plate.read`` event's payload; None when the payload has no plate."""
    plate = payload.get("plate")
    if not isinstance(plate, str) or not plate:
        return None
    score = payload.get("score")
    member = payload.get("member")
    seq = payload.get("snapshot_seq")
    crop = payload.get("crop_url")
    read_id = payload.get("id")
    text = payload.get("text")
    return PlateRow(
        device_key=device_key,
        device_name=device_name,
        site=site,
        event_id=event_id,
        ts=_captured_at(payload.get("captured_at")) or ts,
        plate=plate,
        score=float(score) if isinstance(score, int | float) else 0.0,
        member=member if isinstance(member, Mapping) else None,
        snapshot_seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
        read_id=str(read_id) if isinstance(read_id, str | int) else "",
        text=text if isinstance(text, str) else "",
        crop_url=crop if isinstance(crop, str) and _CROP_PATH.fullmatch(crop) else None,
    )


def _captured_at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


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
        row.match,
        row.device_key,
        str(row.event_id),
        row.read_id,
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
