"""What each device is served: its effective config materialised in ``device_configs``.

:func:`publish` recomputes the effective config of some devices and, where it changed, stores
it with the device's next version and wakes every replica's long-polls (``NOTIFY`` on
PostgreSQL; on SQLite replicas poll ``max(seq)``). A device's version only grows: a rollback
is a new version with the old document. Reports from devices (applied, rejected, rolled back)
land here too, for the rollout engine to read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, bindparam, func, insert, select, update

from cloud_sync.configs.effective import compute
from cloud_sync.configs.merge import digest
from cloud_sync.db import dialect
from cloud_sync.db.tables import device_configs
from cloud_sync.errors import Invalid
from fleet_common.timefmt import rfc3339
from fleet_common.wire.cloud import ConfigReport, DeviceConfig

CHANNEL: Final = "carwash_config"  # NOTIFY channel: some device's config changed
_UPDATED: Final = (
    "version", "config", "digest", "updated_at", "seq", "template_version_id", "rollout_id"
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Published:
    changed: dict[str, int]  # device id → its new version


def publish(conn: Connection, org_id: str, device_ids: Iterable[str], now: float) -> Published:
    """Store the effective config of ``device_ids`` where it changed; wake long-polls."""
    ids = sorted(set(device_ids))
    effective = compute(conn, org_id, ids)
    stored = {}
    for start in range(0, len(ids), 500):
        stored.update(
            {
                r.device_id: r
                for r in conn.execute(
                    select(
                        device_configs.c.device_id,
                        device_configs.c.version,
                        device_configs.c.digest,
                        device_configs.c.rollout_id,
                    ).where(device_configs.c.device_id.in_(ids[start : start + 500]))
                )
            }
        )
    seq = (conn.execute(select(func.max(device_configs.c.seq))).scalar() or 0) + 1
    changed: dict[str, int] = {}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for device_id, eff in sorted(effective.items()):
        if eff.config is None:
            continue  # nothing assigned (any more): the device keeps what it runs
        old = stored.get(device_id)
        sha = digest(eff.config)
        if old is not None and old.digest == sha and old.rollout_id == eff.rollout_id:
            continue
        values = {
            "config": eff.config,
            "digest": sha,
            "updated_at": now,
            "seq": seq,
            "template_version_id": eff.template_version_id,
            "rollout_id": eff.rollout_id,
        }
        if old is None:
            version = 1
            inserts.append({"device_id": device_id, "org_id": org_id, "version": version, **values})
        else:
            version = old.version + (0 if old.digest == sha else 1)
            updates.append({"b_device_id": device_id, "b_version": version,
                            **{f"b_{k}": v for k, v in values.items()}})  # fmt: skip
        changed[device_id] = version
    # One executemany each (a statement compiled once), not one statement per device: a wave
    # of 10,000 devices is one round of the database's work, not 10,000 (bench/fleet).
    if inserts:
        conn.execute(insert(device_configs), inserts)
    if updates:
        conn.execute(
            update(device_configs)
            .where(device_configs.c.device_id == bindparam("b_device_id"))
            .values({k: bindparam(f"b_{k}") for k in _UPDATED}),
            updates,
        )
    if changed:
        dialect.notify(conn, CHANNEL, str(seq))
    return Published(changed)


def current(conn: Connection, device_id: str) -> DeviceConfig | None:
    row = conn.execute(
        select(device_configs).where(device_configs.c.device_id == device_id)
    ).first()
    if row is None:
        return None
    return DeviceConfig(
        version=row.version,
        config=row.config,
        rollout_id=row.rollout_id,
        template_version_id=row.template_version_id,
        updated_at=rfc3339(row.updated_at),
    )


def versions(conn: Connection, device_ids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for start in range(0, len(device_ids), 500):
        rows = conn.execute(
            select(device_configs.c.device_id, device_configs.c.version).where(
                device_configs.c.device_id.in_(device_ids[start : start + 500])
            )
        )
        out.update({r.device_id: int(r.version) for r in rows})
    return out


def change_seq(conn: Connection) -> int:
    """The newest change's sequence number (what SQLite replicas poll)."""
    return int(conn.execute(select(func.max(device_configs.c.seq))).scalar() or 0)


def record_report(conn: Connection, device_id: str, report: ConfigReport, now: float) -> None:
    row = conn.execute(
        select(device_configs.c.version).where(device_configs.c.device_id == device_id)
    ).first()
    if row is None or report.version > row.version:
        raise Invalid(f"version {report.version} was never served to this device")
    conn.execute(
        update(device_configs)
        .where(device_configs.c.device_id == device_id)
        .values(
            report_version=report.version,
            report_outcome=report.outcome,
            report_message=report.message,
            report_at=now,
        )
    )
