"""Assignments: a base template version and overrides for an organisation, a region, a site or
a device. Each change republishes the effective config of the devices it covers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, update

from cloud_sync.changes import Change, ChangeHook, no_hook
from cloud_sync.configs import delivery
from cloud_sync.configs.templates import get_version, validate
from cloud_sync.db import dialect
from cloud_sync.db.tables import config_assignments as assignments
from cloud_sync.db.tables import devices, regions, sites
from cloud_sync.errors import Invalid, NotFound
from fleet_common.timefmt import rfc3339
from fleet_common.wire.cloud import AssignmentInfo, AssignmentRequest


def scope_devices(conn: Connection, org_id: str, kind: str, scope_id: str) -> list[str]:
    """Ids of the (not revoked) devices an assignment of ``kind``/``scope_id`` covers."""
    query = select(devices.c.id).where(devices.c.org_id == org_id, devices.c.revoked_at.is_(None))
    if kind == "region":
        query = query.where(
            devices.c.site_id.in_(select(sites.c.id).where(sites.c.region_id == scope_id))
        )
    elif kind == "site":
        query = query.where(devices.c.site_id == scope_id)
    elif kind == "device":
        query = query.where(devices.c.id == scope_id)
    return [str(r[0]) for r in conn.execute(query)]


def _check_scope(conn: Connection, org_id: str, kind: str, scope_id: str | None) -> str:
    if kind == "organisation":
        if scope_id not in (None, org_id):
            raise Invalid("an organisation assignment takes no scope_id (or the organisation's)")
        return org_id
    if not scope_id:
        raise Invalid(f"a {kind} assignment needs a scope_id")
    table = {"region": regions, "site": sites, "device": devices}[kind]
    found = conn.execute(
        select(table.c.id).where(table.c.id == scope_id, table.c.org_id == org_id)
    ).first()
    if found is None:
        raise NotFound(f"no {kind} {scope_id!r}")
    return scope_id


def _info(row: Any) -> AssignmentInfo:
    return AssignmentInfo(
        id=row.id,
        scope=row.scope_kind,
        scope_id=None if row.scope_kind == "organisation" else row.scope_id,
        template_version_id=row.template_version_id,
        overrides=row.overrides,
        updated_at=rfc3339(row.updated_at),
        updated_by=row.updated_by,
    )


def put(
    conn: Connection,
    org_id: str,
    body: AssignmentRequest,
    actor: str,
    now: float,
    hook: ChangeHook = no_hook,
) -> AssignmentInfo:
    """Create or replace the assignment of one scope; republish its devices."""
    scope_id = _check_scope(conn, org_id, body.scope, body.scope_id)
    validate(body.overrides, partial=True, what="overrides")
    if body.template_version_id is not None:
        get_version(conn, org_id, body.template_version_id)
    if body.template_version_id is None and not body.overrides:
        raise Invalid("an assignment needs a template_version_id, overrides, or both")
    key = {"org_id": org_id, "scope_kind": body.scope, "scope_id": scope_id}
    values = {
        "template_version_id": body.template_version_id,
        "overrides": body.overrides,
        "updated_at": now,
        "updated_by": actor,
    }
    before = conn.execute(
        select(assignments).where(*(assignments.c[k] == v for k, v in key.items()))
    ).first()
    conn.execute(dialect.insert_ignore(conn, assignments, list(key)).values(**key, **values))
    conn.execute(
        update(assignments).where(*(assignments.c[k] == v for k, v in key.items())).values(**values)
    )
    row = conn.execute(
        select(assignments).where(*(assignments.c[k] == v for k, v in key.items()))
    ).one()
    delivery.publish(conn, org_id, scope_devices(conn, org_id, body.scope, scope_id), now)
    hook(
        conn,
        Change(
            "config.assigned",
            org_id,
            actor,
            f"{body.scope}:{scope_id}",
            at=now,
            before=_info(before).model_dump() if before else None,
            after=_info(row).model_dump(),
        ),
    )
    return _info(row)


def remove(
    conn: Connection,
    org_id: str,
    assignment_id: int,
    actor: str,
    now: float,
    hook: ChangeHook = no_hook,
) -> None:
    row = conn.execute(
        select(assignments).where(assignments.c.id == assignment_id, assignments.c.org_id == org_id)
    ).first()
    if row is None:
        raise NotFound(f"no assignment {assignment_id}")
    conn.execute(delete(assignments).where(assignments.c.id == assignment_id))
    delivery.publish(conn, org_id, scope_devices(conn, org_id, row.scope_kind, row.scope_id), now)
    hook(
        conn,
        Change(
            "config.unassigned",
            org_id,
            actor,
            f"{row.scope_kind}:{row.scope_id}",
            at=now,
            before=_info(row).model_dump(),
        ),
    )


def list_all(conn: Connection, org_id: str) -> list[AssignmentInfo]:
    rows = conn.execute(
        select(assignments).where(assignments.c.org_id == org_id).order_by(assignments.c.id)
    )
    return [_info(r) for r in rows]


def set_base(
    conn: Connection, org_id: str, kind: str, scope_id: str, version_id: int, actor: str, now: float
) -> None:
    """Make ``version_id`` the base at one scope, keeping its overrides (a finished rollout)."""
    key = {"org_id": org_id, "scope_kind": kind, "scope_id": scope_id}
    conn.execute(
        dialect.insert_ignore(conn, assignments, list(key)).values(
            **key, template_version_id=version_id, overrides={}, updated_at=now, updated_by=actor
        )
    )
    conn.execute(
        update(assignments)
        .where(*(assignments.c[k] == v for k, v in key.items()))
        .values(template_version_id=version_id, updated_at=now, updated_by=actor)
    )
