"""Devices in the database: enrolment tokens, enrolment, key lookup, revocation, rotation.

Blocking: call from a worker thread (or the command line). Single use of a token is one
conditional ``UPDATE ... RETURNING``, so two replicas racing on one token cannot both win.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from cloud_sync.changes import Change, ChangeHook, no_hook
from cloud_sync.db.tables import devices, enrolment_tokens
from cloud_sync.devices import keys
from cloud_sync.devices.keys import DeviceAuth
from cloud_sync.errors import Invalid, NotFound, Unauthorized
from cloud_sync.tenancy import Site, new_id


@dataclass(frozen=True, slots=True)
class Enrolled:
    device_id: str
    device_key: str
    site_id: str


def create_token(
    conn: Connection,
    site: Site,
    ttl_s: float,
    hook: ChangeHook = no_hook,
    actor: str = "cli",
    now: float | None = None,
) -> str:
    """A one-time enrolment token for ``site``; only its hash is stored."""
    if ttl_s <= 0:
        raise Invalid("--expires-in must be positive")
    token, digest = keys.new_enrolment_token()
    now = time.time() if now is None else now
    conn.execute(
        insert(enrolment_tokens).values(
            token_hash=digest, org_id=site.org_id, site_id=site.id, created_at=now,
            expires_at=now + ttl_s, used_at=None, device_id=None,
        )
    )  # fmt: skip
    hook(conn, Change("enrolment_token.created", site.org_id, actor, site.id,
                      after={"site_id": site.id, "expires_at": now + ttl_s}))  # fmt: skip
    return token


def enroll(
    conn: Connection,
    token: str,
    name: str,
    edge_id: str,
    edge_version: str,
    now: float,
    hook: ChangeHook = no_hook,
) -> Enrolled:
    device_id = new_id()
    claimed = conn.execute(
        update(enrolment_tokens)
        .where(enrolment_tokens.c.token_hash == keys.key_hash(token),
               enrolment_tokens.c.used_at.is_(None), enrolment_tokens.c.expires_at > now)
        .values(used_at=now, device_id=device_id)
        .returning(enrolment_tokens.c.org_id, enrolment_tokens.c.site_id)
    ).first()  # fmt: skip
    if claimed is None:
        raise Unauthorized("the enrolment token is unknown, used or expired", code="token_invalid")
    key, digest = keys.new_key(device_id)
    row: dict[str, Any] = {"id": device_id, "org_id": claimed.org_id, "site_id": claimed.site_id,
                           "name": name or f"device-{device_id[:8]}", "edge_id": edge_id,
                           "edge_version": edge_version}  # fmt: skip
    conn.execute(
        insert(devices).values(
            **row, key_hash=digest, revoked_at=None, enrolled_at=now, last_seen=None,
            status=None, stream_status=None, config_version=None, metrics={},
        )
    )  # fmt: skip
    hook(conn, Change("device.enrolled", claimed.org_id, f"device:{device_id}", device_id,
                      after=row, at=now))  # fmt: skip
    return Enrolled(device_id, key, claimed.site_id)


def authenticate(conn: Connection, key: str) -> tuple[DeviceAuth | None, str]:
    """The device ``key`` belongs to, or (None, ``unknown`` / ``revoked``)."""
    device_id = keys.device_of(key)
    if device_id is None:
        return None, "unknown"
    row = conn.execute(
        select(devices.c.org_id, devices.c.site_id, devices.c.key_hash, devices.c.revoked_at)
        .where(devices.c.id == device_id)
    ).first()  # fmt: skip
    if row is None or not keys.matches(row.key_hash, key):
        return None, "unknown"
    if row.revoked_at is not None:
        return None, "revoked"
    return DeviceAuth(device_id, row.org_id, row.site_id), ""


def authenticate_many(
    conn: Connection, keys_: list[str]
) -> dict[str, tuple[DeviceAuth | None, str]]:
    """:func:`authenticate` of several keys in one query (the key cache's misses, batched)."""
    wanted = {key: keys.device_of(key) for key in keys_}
    ids = sorted({d for d in wanted.values() if d is not None})
    rows = {}
    for start in range(0, len(ids), 500):
        rows.update({
            r.id: r
            for r in conn.execute(
                select(devices.c.id, devices.c.org_id, devices.c.site_id, devices.c.key_hash,
                       devices.c.revoked_at)
                .where(devices.c.id.in_(ids[start : start + 500]))
            )
        })  # fmt: skip
    out: dict[str, tuple[DeviceAuth | None, str]] = {}
    for key, device_id in wanted.items():
        row = rows.get(device_id) if device_id is not None else None
        if row is None or not keys.matches(row.key_hash, key):
            out[key] = (None, "unknown")
        elif row.revoked_at is not None:
            out[key] = (None, "revoked")
        else:
            out[key] = (DeviceAuth(row.id, row.org_id, row.site_id), "")
    return out


def device_org(conn: Connection, device_id: str, site_ids: Any) -> tuple[str, str]:
    """(org, site) of a device the caller may see (``site_ids``: a visible-sites select)."""
    row = conn.execute(
        select(devices.c.org_id, devices.c.site_id)
        .where(devices.c.id == device_id, devices.c.site_id.in_(site_ids))
    ).first()  # fmt: skip
    if row is None:
        raise NotFound(f"no device {device_id!r}")
    return row.org_id, row.site_id


def revoke(conn: Connection, device_id: str, actor: str, hook: ChangeHook = no_hook) -> None:
    now = time.time()
    row = conn.execute(
        update(devices).where(devices.c.id == device_id).values(revoked_at=now)
        .returning(devices.c.org_id)
    ).first()  # fmt: skip
    if row is None:
        raise NotFound(f"no device {device_id!r}")
    hook(conn, Change("device.revoked", row.org_id, actor, device_id, at=now))


def rotate(conn: Connection, device_id: str, actor: str, hook: ChangeHook = no_hook) -> str:
    """A new key for the device (revocation lifted); the old key stops working."""
    key, digest = keys.new_key(device_id)
    row = conn.execute(
        update(devices).where(devices.c.id == device_id)
        .values(key_hash=digest, revoked_at=None).returning(devices.c.org_id)
    ).first()  # fmt: skip
    if row is None:
        raise NotFound(f"no device {device_id!r}")
    hook(conn, Change("device.key_rotated", row.org_id, actor, device_id, at=time.time()))
    return key
