"""Tenancy: organisation → region → site (devices are in :mod:`cloud_sync.devices.store`).

Store functions take a connection inside a transaction (:meth:`Database.write` / ``read``);
they are blocking: call them from a worker thread, never on the event loop.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, func, insert, select

from cloud_sync.changes import Change, ChangeHook, no_hook
from cloud_sync.db.tables import devices, organisations, regions, settings, sites
from cloud_sync.errors import Invalid, NotFound, UsageError

JWT_SECRET = "jwt_secret"  # noqa: S105 - a row name, not a secret; the settings row every replica signs access tokens with


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    org_id: str
    region_id: str
    name: str
    region: str
    lat: float | None
    lon: float | None
    timezone: str


def ensure_organisation(conn: Connection, name: str, hook: ChangeHook = no_hook) -> str:
    """The organisation named ``name``, created if new; and the shared signing secret."""
    name = name.strip()
    if not name:
        raise UsageError("--org needs a name")
    org_id = conn.execute(
        select(organisations.c.id).where(organisations.c.name == name)
    ).scalar_one_or_none()
    if org_id is None:
        org_id = new_id()
        conn.execute(insert(organisations).values(id=org_id, name=name, created_at=time.time()))
        hook(conn, Change("organisation.added", org_id, "cli", org_id, after={"name": name}))
    if conn.execute(select(settings.c.key).where(settings.c.key == JWT_SECRET)).first() is None:
        conn.execute(insert(settings).values(key=JWT_SECRET, value=secrets.token_urlsafe(48)))
    return str(org_id)


def setting(conn: Connection, key: str) -> str | None:
    value = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
    return None if value is None else str(value)


def organisation_id(conn: Connection, name: str | None) -> str:
    """The organisation named ``name``; without a name, the only one there is."""
    rows = conn.execute(select(organisations.c.id, organisations.c.name)).all()
    if name is not None:
        for row in rows:
            if row.name == name:
                return str(row.id)
        raise NotFound(f"no organisation named {name!r}")
    if not rows:
        raise UsageError("the database has no organisation: run `carwash-cloud init` first")
    if len(rows) > 1:
        raise UsageError("the database holds several organisations: say which with --org NAME")
    return str(rows[0].id)


def ensure_region(conn: Connection, org_id: str, name: str) -> tuple[str, bool]:
    """The region's id, and whether it was created now."""
    name = name.strip()
    if not name:
        raise Invalid("a region needs a name")
    found = conn.execute(
        select(regions.c.id).where(regions.c.org_id == org_id, regions.c.name == name)
    ).scalar_one_or_none()
    if found is not None:
        return str(found), False
    region_id = new_id()
    conn.execute(insert(regions).values(id=region_id, org_id=org_id, name=name))
    return region_id, True


def add_site(
    conn: Connection,
    org_id: str,
    name: str,
    region: str,
    *,
    lat: float | None = None,
    lon: float | None = None,
    timezone: str = "UTC",
    hook: ChangeHook = no_hook,
    actor: str = "cli",
) -> str:
    name = name.strip()
    if not name:
        raise Invalid("a site needs a name")
    if (lat is None) != (lon is None):
        raise Invalid("give both --lat and --lon, or neither")
    if lat is not None and not -90 <= lat <= 90:
        raise Invalid(f"latitude {lat} is outside -90..90")
    if lon is not None and not -180 <= lon <= 180:
        raise Invalid(f"longitude {lon} is outside -180..180")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise Invalid(f"unknown time zone {timezone!r} (e.g. Europe/Berlin)") from err
    exists = conn.execute(
        select(sites.c.id).where(sites.c.org_id == org_id, sites.c.name == name)
    ).first()
    if exists is not None:
        raise Invalid(f"a site named {name!r} exists already (id {exists.id})")
    region_id, _ = ensure_region(conn, org_id, region)
    site_id = new_id()
    row: dict[str, Any] = {"id": site_id, "org_id": org_id, "region_id": region_id,
                           "name": name, "lat": lat, "lon": lon, "timezone": timezone}  # fmt: skip
    conn.execute(insert(sites).values(**row, created_at=time.time()))
    hook(conn, Change("site.added", org_id, actor, site_id, after={**row, "region": region}))
    return site_id


def _site_query() -> Any:
    return select(
        sites.c.id, sites.c.org_id, sites.c.region_id, sites.c.name,
        regions.c.name.label("region"), sites.c.lat, sites.c.lon, sites.c.timezone,
    ).join(regions, regions.c.id == sites.c.region_id)  # fmt: skip


def find_site(conn: Connection, ref: str, org_id: str | None = None) -> Site:
    """A site by id, or by name (within ``org_id`` if given). NotFound / UsageError."""
    query = _site_query()
    if org_id is not None:
        query = query.where(sites.c.org_id == org_id)
    rows = conn.execute(query.where(sites.c.id == ref)).all()
    if not rows:
        rows = conn.execute(query.where(sites.c.name == ref)).all()
    if not rows:
        raise NotFound(f"no site {ref!r}")
    if len(rows) > 1:
        raise UsageError(f"several organisations have a site named {ref!r}: give its id")
    return Site(*rows[0])


def find_region(conn: Connection, org_id: str, ref: str) -> str:
    """A region's id, by id or name."""
    query = select(regions.c.id).where(regions.c.org_id == org_id)
    found = conn.execute(query.where((regions.c.id == ref) | (regions.c.name == ref))).first()
    if found is None:
        raise NotFound(f"no region {ref!r}")
    return str(found.id)


def list_sites(conn: Connection, where: Any) -> list[tuple[Site, int]]:
    """Sites matching ``where`` (a scope's clause on ``sites``) with their device counts."""
    count = (
        select(func.count()).select_from(devices)
        .where(devices.c.site_id == sites.c.id).scalar_subquery()
    )  # fmt: skip
    rows = conn.execute(_site_query().add_columns(count).where(where).order_by(sites.c.name))
    return [(Site(*row[:8]), int(row[8])) for row in rows]
