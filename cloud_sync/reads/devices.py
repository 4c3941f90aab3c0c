"""``GET /api/v1/devices`` and ``GET /api/v1/sites``."""

from __future__ import annotations

from sqlalchemy import Connection, select

from cloud_sync.auth.scope import Principal, site_clause, visible_sites
from cloud_sync.db.tables import devices, regions, sites
from cloud_sync.devices.presence import is_online
from cloud_sync.tenancy import list_sites
from fleet_common.timefmt import rfc3339
from fleet_common.wire.cloud import DeviceInfo, SiteInfo


def list_devices(
    conn: Connection, who: Principal, now: float, interval_s: float, site_id: str | None = None
) -> list[DeviceInfo]:
    query = (
        select(devices, sites.c.name.label("site"), regions.c.name.label("region"))
        .join(sites, sites.c.id == devices.c.site_id)
        .join(regions, regions.c.id == sites.c.region_id)
        .where(devices.c.site_id.in_(visible_sites(who)))
        .order_by(sites.c.name, devices.c.name)
    )  # fmt: skip
    if site_id is not None:
        query = query.where(devices.c.site_id == site_id)
    return [
        DeviceInfo(
            id=r.id, name=r.name, site_id=r.site_id, site=r.site, region=r.region,
            online=r.revoked_at is None and is_online(r.last_seen, now, interval_s),
            status=r.status, stream_status=r.stream_status,
            last_heartbeat=rfc3339(r.last_seen) if r.last_seen is not None else None,
            config_version=r.config_version,
            cloud_config_version=r.cloud_config_version, edge_version=r.edge_version,
            metrics=r.metrics or {}, revoked=r.revoked_at is not None,
            enrolled_at=rfc3339(r.enrolled_at),
        )
        for r in conn.execute(query)
    ]  # fmt: skip


def count_online(conn: Connection, now: float, interval_s: float) -> tuple[int, int]:
    """(online, offline) devices of every organisation (the /metrics gauge)."""
    online = offline = 0
    rows = conn.execute(select(devices.c.last_seen).where(devices.c.revoked_at.is_(None)))
    for (last_seen,) in rows:
        if is_online(last_seen, now, interval_s):
            online += 1
        else:
            offline += 1
    return online, offline


def site_list(conn: Connection, who: Principal) -> list[SiteInfo]:
    return [
        SiteInfo(id=s.id, name=s.name, region_id=s.region_id, region=s.region, lat=s.lat,
                 lon=s.lon, timezone=s.timezone, devices=n)
        for s, n in list_sites(conn, site_clause(who))
    ]  # fmt: skip
