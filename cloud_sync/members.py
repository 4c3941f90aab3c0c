"""Club members per organisation (plate → member id, name, plan, status), versioned for edges.

An upload replaces the whole list; an edit changes one plate. Each change raises the list's
version, which devices send back as ``If-None-Match`` (``GET /api/v1/devices/members``). Plates
are normalised as the edge does (upper case, A-Z and 0-9 only; edge/plates/normalize.py), and
the answer is the edge's members file as it reads it (``{"members": [...]}``).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from typing import Any, Final

from sqlalchemy import Connection, delete, insert, select, update

from cloud_sync.changes import Change, ChangeHook, no_hook
from cloud_sync.db import dialect
from cloud_sync.db.tables import member_lists, members
from cloud_sync.errors import Invalid, NotFound
from fleet_common.timefmt import rfc3339
from fleet_common.wire.cloud import MemberEntry, MemberFile, MembersInfo

_NOT_PLATE: Final = re.compile(r"[^A-Z0-9]")
_COLUMNS: Final = ("plate", "id", "name", "plan", "status")


def clean_plate(text: str) -> str:
    """As the edge's ``edge.plates.normalize.clean``: NFKC, upper case, A-Z 0-9 only."""
    return _NOT_PLATE.sub("", unicodedata.normalize("NFKC", text).upper())


def parse_csv(text: str) -> list[MemberEntry]:
    """A header row naming ``plate`` and ``id`` (``name``, ``plan``, ``status`` optional, any
    order, extra columns ignored); ``,`` ``;`` or tab separated, as the edge reads its file."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise Invalid("empty CSV (expected a header: plate,id,name,plan,status)")
    delimiter = max(",;\t", key=lines[0].count)
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    header = [cell.strip().lower() for cell in rows[0]]
    if "plate" not in header or "id" not in header:
        raise Invalid("the CSV header needs plate and id columns")
    where = {name: header.index(name) for name in _COLUMNS if name in header}
    out = []
    for number, row in enumerate(rows[1:], start=2):
        item = {k: row[i].strip() for k, i in where.items() if i < len(row)}
        try:
            out.append(MemberEntry(**{k: v for k, v in item.items() if v or k in ("plate", "id")}))
        except ValueError as err:
            raise Invalid(f"CSV line {number}: {str(err).splitlines()[0]}") from err
    return out


def _rows(org_id: str, entries: Iterable[MemberEntry]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        plate = clean_plate(entry.plate)
        if not plate:
            raise Invalid(f"members[{i}]: the plate has no letters or digits")
        if plate in out:
            raise Invalid(f"members[{i}]: plate {plate} is listed twice")
        out[plate] = {
            "org_id": org_id,
            "plate": plate,
            "member_id": entry.id,
            "name": entry.name,
            "plan": entry.plan,
            "status": entry.status.lower() or "active",
        }
    return list(out.values())


def _bump(conn: Connection, org_id: str, actor: str, now: float) -> int:
    conn.execute(
        dialect.insert_ignore(conn, member_lists, ["org_id"]).values(
            org_id=org_id, version=0, updated_at=now, updated_by=actor
        )
    )
    conn.execute(
        update(member_lists)
        .where(member_lists.c.org_id == org_id)
        .values(version=member_lists.c.version + 1, updated_at=now, updated_by=actor)
    )
    return int(
        conn.execute(
            select(member_lists.c.version).where(member_lists.c.org_id == org_id)
        ).scalar_one()
    )


def replace(
    conn: Connection,
    org_id: str,
    entries: list[MemberEntry],
    actor: str,
    now: float,
    hook: ChangeHook = no_hook,
) -> MembersInfo:
    rows = _rows(org_id, entries)
    version = _bump(conn, org_id, actor, now)
    conn.execute(delete(members).where(members.c.org_id == org_id))
    if rows:
        conn.execute(insert(members), rows)
    hook(
        conn,
        Change(
            "members.replaced",
            org_id,
            actor,
            org_id,
            at=now,
            after={"version": version, "count": len(rows)},
        ),
    )
    return MembersInfo(version=version, count=len(rows), updated_at=rfc3339(now))


def put_one(
    conn: Connection,
    org_id: str,
    entry: MemberEntry,
    actor: str,
    now: float,
    hook: ChangeHook = no_hook,
) -> MembersInfo:
    (row,) = _rows(org_id, [entry])
    _bump(conn, org_id, actor, now)
    conn.execute(delete(members).where(members.c.org_id == org_id, members.c.plate == row["plate"]))
    conn.execute(insert(members).values(**row))
    hook(conn, Change("members.edited", org_id, actor, row["plate"], at=now, after=row))
    return info(conn, org_id)


def remove_one(
    conn: Connection, org_id: str, plate: str, actor: str, now: float, hook: ChangeHook = no_hook
) -> MembersInfo:
    gone = conn.execute(
        delete(members).where(members.c.org_id == org_id, members.c.plate == clean_plate(plate))
    )
    if not gone.rowcount:
        raise NotFound(f"no member with plate {clean_plate(plate)!r}")
    _bump(conn, org_id, actor, now)
    hook(conn, Change("members.removed", org_id, actor, clean_plate(plate), at=now))
    return info(conn, org_id)


def version_of(conn: Connection, org_id: str) -> int:
    found = conn.execute(
        select(member_lists.c.version).where(member_lists.c.org_id == org_id)
    ).scalar()
    return int(found or 0)


def info(conn: Connection, org_id: str) -> MembersInfo:
    row = conn.execute(select(member_lists).where(member_lists.c.org_id == org_id)).first()
    count = len(conn.execute(select(members.c.plate).where(members.c.org_id == org_id)).all())
    return MembersInfo(
        version=row.version if row else 0,
        count=count,
        updated_at=rfc3339(row.updated_at) if row else None,
    )


def member_file(conn: Connection, org_id: str) -> MemberFile:
    version = version_of(conn, org_id)
    rows = conn.execute(select(members).where(members.c.org_id == org_id).order_by(members.c.plate))
    return MemberFile(
        version=version,
        members=[
            {
                "plate": r.plate,
                "id": r.member_id,
                "name": r.name,
                "plan": r.plan,
                "status": r.status,
            }
            for r in rows
        ],
    )
