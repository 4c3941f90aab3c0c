"""What the command line's admin commands do: ``init``, ``user``, ``site``, ``token``.

Each opens the database, does its work in one transaction and returns what to print; errors
are :class:`~cloud_sync.errors.CloudError` (the command line turns them into messages and exit
codes).
"""

from __future__ import annotations

import re
from typing import Final

from cloud_sync.auth import users
from cloud_sync.auth.passwords import HashCost, Passwords
from cloud_sync.auth.scope import ScopeKind
from cloud_sync.changes import ChangeHook, no_hook
from cloud_sync.db import migrate
from cloud_sync.db.engine import Database
from cloud_sync.devices import store as device_store
from cloud_sync.errors import UsageError
from cloud_sync.tenancy import (
    add_site,
    ensure_organisation,
    find_region,
    find_site,
    organisation_id,
)

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TOKEN_TTL_S: Final = 30 * 86400


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``24h``, ``7d`` → seconds. UsageError otherwise."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise UsageError(f"{text!r} is not a duration (e.g. 30m, 24h, 7d)")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not 0 < seconds <= MAX_TOKEN_TTL_S:
        raise UsageError(f"{text!r}: a token lives between 1 second and 30 days")
    return seconds


def init(db: Database, org: str, hook: ChangeHook = no_hook) -> tuple[str, str | None, str]:
    """Migrate and make sure the organisation exists: (org id, revision before, after)."""
    before, after = migrate.upgrade(db)
    with db.write() as conn:
        org_id = ensure_organisation(conn, org, hook)
    return org_id, before, after


def add_user(
    db: Database,
    email: str,
    role: str,
    password: str,
    *,
    site: str | None = None,
    region: str | None = None,
    org: str | None = None,
    cost: HashCost | None = None,
    hook: ChangeHook = no_hook,
) -> users.User:
    if site is not None and region is not None:
        raise UsageError("give --site or --region, not both")
    password_hash = Passwords(cost).hash(password)
    migrate.check_schema(db)
    with db.write() as conn:
        org_id = organisation_id(conn, org)
        scope: ScopeKind = "organisation"
        scope_id = None
        if site is not None:
            scope, scope_id = "site", find_site(conn, site, org_id).id
        elif region is not None:
            scope, scope_id = "region", find_region(conn, org_id, region)
        return users.add_user(conn, org_id, email, role, password_hash, scope, scope_id, hook)


def set_password(db: Database, email: str, password: str, cost: HashCost | None = None) -> None:
    password_hash = Passwords(cost).hash(password)
    migrate.check_schema(db)
    with db.write() as conn:
        users.set_password(conn, email, password_hash)


def disable_user(db: Database, email: str) -> None:
    migrate.check_schema(db)
    with db.write() as conn:
        users.set_disabled(conn, email, True)


def list_users(db: Database) -> list[users.User]:
    migrate.check_schema(db)
    with db.read() as conn:
        return users.list_users(conn)


def site_add(
    db: Database,
    name: str,
    region: str,
    *,
    lat: float | None = None,
    lon: float | None = None,
    timezone: str = "UTC",
    org: str | None = None,
) -> str:
    migrate.check_schema(db)
    with db.write() as conn:
        org_id = organisation_id(conn, org)
        return add_site(conn, org_id, name, region, lat=lat, lon=lon, timezone=timezone)


def token_create(db: Database, site: str, expires_in: str, org: str | None = None) -> str:
    ttl_s = parse_duration(expires_in)
    migrate.check_schema(db)
    with db.write() as conn:
        org_id = organisation_id(conn, org) if org is not None else None
        return device_store.create_token(conn, find_site(conn, site, org_id), ttl_s)
