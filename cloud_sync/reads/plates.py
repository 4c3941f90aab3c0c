"""``GET /api/v1/plates``: plate reads across the caller's sites, newest first, paged.

A plate filter is a prefix: ``plate >= 'AB1' AND plate < 'AB2'``, an index range scan on both
databases (plates are stored upper case; PostgreSQL compares them byte-wise, ``COLLATE "C"``).
The cursor is the last row's (time, id), so pages stay stable while new reads arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Final

from sqlalchemy import Connection, and_, or_, select

from cloud_sync.auth.scope import Principal, visible_sites
from cloud_sync.db.tables import plate_reads
from cloud_sync.errors import Invalid
from fleet_common.timefmt import rfc3339
from fleet_common.wire.cloud import PlatePage, PlateReadInfo

MAX_PAGE: Final = 500


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (None: no bound)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


def encode_cursor(ts: float, row_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([ts, row_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        ts, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return float(ts), int(row_id)
    except (ValueError, TypeError, binascii.Error) as err:
        raise Invalid("the cursor is not one this server handed out", code="bad_cursor") from err


def search(
    conn: Connection,
    who: Principal,
    *,
    plate: str | None = None,
    site_id: str | None = None,
    start: float | None = None,
    end: float | None = None,
    member: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> PlatePage:
    pr = plate_reads.c
    query = select(plate_reads).where(pr.org_id == who.org_id, pr.site_id.in_(visible_sites(who)))
    if plate:
        prefix = plate.strip().upper()
        query = query.where(pr.plate >= prefix)
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            query = query.where(pr.plate < upper)
    if site_id is not None:
        query = query.where(pr.site_id == site_id)
    if start is not None:
        query = query.where(pr.ts >= start)
    if end is not None:
        query = query.where(pr.ts < end)
    if member is not None:
        query = query.where(pr.member_id == member)
    if cursor is not None:
        c_ts, c_id = decode_cursor(cursor)
        query = query.where(or_(pr.ts < c_ts, and_(pr.ts == c_ts, pr.id < c_id)))
    limit = max(1, min(limit, MAX_PAGE))
    rows = conn.execute(query.order_by(pr.ts.desc(), pr.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return PlatePage(
        reads=[
            PlateReadInfo(id=r.id, ts=rfc3339(r.ts), plate=r.plate, score=r.score,
                          member_id=r.member_id, site_id=r.site_id, device_id=r.device_id,
                          payload=r.payload)
            for r in rows
        ],
        next_cursor=encode_cursor(rows[-1].ts, rows[-1].id) if more else None,
    )  # fmt: skip
