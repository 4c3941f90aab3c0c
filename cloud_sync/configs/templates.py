"""Config templates and their immutable versions (blocking store functions: call in a thread).

A template belongs to an organisation and has versions 1, 2, ...; each version is a whole edge
config document, validated against the edge's schema when it is added and never changed after.
Assignments and rollouts name a version by its id (unique across templates).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from cloud_sync.changes import Change, ChangeHook, no_hook
from cloud_sync.configs.schema import edge_validator
from cloud_sync.db.tables import config_template_versions as versions
from cloud_sync.db.tables import config_templates as templates
from cloud_sync.errors import Conflict, Invalid, NotFound
from cloud_sync.tenancy import new_id
from fleet_common.timefmt import rfc3339
from fleet_common.wire.cloud import TemplateInfo, TemplateVersionInfo


def validate(config: dict[str, Any], *, partial: bool = False, what: str = "config") -> None:
    """Invalid (``invalid_config``, with ``errors`` listing paths and reasons) unless ``config``
    fits the edge's schema; ``partial`` for overrides (nothing is required)."""
    problems = edge_validator().problems(config, partial=partial)
    if problems:
        listed = "; ".join(f"{p.path}: {p.reason}" for p in problems[:5])
        raise Invalid(
            f"the {what} does not fit the edge config schema: {listed}",
            code="invalid_config",
            errors=[p.as_dict() for p in problems],
        )


def add_template(
    conn: Connection,
    org_id: str,
    name: str,
    description: str,
    config: dict[str, Any],
    comment: str,
    actor: str,
    now: float,
    hook: ChangeHook = no_hook,
) -> TemplateInfo:
    name = name.strip()
    if not name:
        raise Invalid("a template needs a name")
    validate(config)
    taken = conn.execute(
        select(templates.c.id).where(templates.c.org_id == org_id, templates.c.name == name)
    ).first()
    if taken is not None:
        raise Conflict(f"a template named {name!r} exists already (id {taken.id})")
    template_id = new_id()
    conn.execute(
        insert(templates).values(
            id=template_id,
            org_id=org_id,
            name=name,
            description=description,
            created_at=now,
            created_by=actor,
        )
    )
    add_version(conn, org_id, template_id, config, comment, actor, now, hook)
    return get_template(conn, org_id, template_id)


def add_version(
    conn: Connection,
    org_id: str,
    template_id: str,
    config: dict[str, Any],
    comment: str,
    actor: str,
    now: float,
    hook: ChangeHook = no_hook,
) -> TemplateVersionInfo:
    _template_row(conn, org_id, template_id)
    validate(config)
    number = 1 + (
        conn.execute(
            select(func.max(versions.c.number)).where(versions.c.template_id == template_id)
        ).scalar()
        or 0
    )
    try:
        version_id = conn.execute(
            insert(versions)
            .values(
                template_id=template_id,
                number=number,
                config=config,
                comment=comment,
                created_at=now,
                created_by=actor,
            )
            .returning(versions.c.id)
        ).scalar_one()
    except IntegrityError as err:  # another replica added the same number just now
        raise Conflict("the template changed meanwhile; try again") from err
    hook(
        conn,
        Change(
            "config.template_version_added",
            org_id,
            actor,
            template_id,
            at=now,
            after={"version_id": version_id, "number": number, "config": config},
        ),
    )
    return TemplateVersionInfo(
        id=version_id,
        template_id=template_id,
        number=number,
        config=config,
        comment=comment,
        created_at=rfc3339(now),
        created_by=actor,
    )


def _template_row(conn: Connection, org_id: str, template_id: str) -> Any:
    row = conn.execute(
        select(templates).where(templates.c.id == template_id, templates.c.org_id == org_id)
    ).first()
    if row is None:
        raise NotFound(f"no template {template_id!r}")
    return row


def _version_info(row: Any) -> TemplateVersionInfo:
    return TemplateVersionInfo(
        id=row.id,
        template_id=row.template_id,
        number=row.number,
        config=row.config,
        comment=row.comment,
        created_at=rfc3339(row.created_at),
        created_by=row.created_by,
    )


def get_template(conn: Connection, org_id: str, template_id: str) -> TemplateInfo:
    row = _template_row(conn, org_id, template_id)
    found = [
        _version_info(v)
        for v in conn.execute(
            select(versions)
            .where(versions.c.template_id == template_id)
            .order_by(versions.c.number)
        )
    ]
    return TemplateInfo(
        id=row.id,
        name=row.name,
        description=row.description,
        latest_version=found[-1].number if found else 0,
        created_at=rfc3339(row.created_at),
        versions=found,
    )


def list_templates(conn: Connection, org_id: str) -> list[TemplateInfo]:
    latest = (
        select(versions.c.template_id, func.max(versions.c.number).label("n"))
        .group_by(versions.c.template_id)
        .subquery()
    )
    rows = conn.execute(
        select(templates, latest.c.n)
        .join(latest, latest.c.template_id == templates.c.id)
        .where(templates.c.org_id == org_id)
        .order_by(templates.c.name)
    )
    return [
        TemplateInfo(
            id=r.id,
            name=r.name,
            description=r.description,
            latest_version=r.n,
            created_at=rfc3339(r.created_at),
        )
        for r in rows
    ]


def get_version(conn: Connection, org_id: str, version_id: int) -> TemplateVersionInfo:
    row = conn.execute(
        select(versions)
        .join(templates, templates.c.id == versions.c.template_id)
        .where(versions.c.id == version_id, templates.c.org_id == org_id)
    ).first()
    if row is None:
        raise NotFound(f"no template version {version_id}")
    return _version_info(row)


def version_configs(conn: Connection, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = conn.execute(select(versions.c.id, versions.c.config).where(versions.c.id.in_(wanted)))
    return {int(r.id): r.config for r in rows}
