"""A rollout's progress: state and reason, counts per wave, each device's state and reason."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from cloud_sync.configs.templates import get_version
from cloud_sync.db.tables import rollout_devices, rollouts
from cloud_sync.errors import NotFound
from fleet_common.timefmt import rfc3339
from fleet_common.wire.cloud import RolloutDevice, RolloutInfo, RolloutWave


def row_of(conn: Connection, org_id: str, rollout_id: str, *, lock: bool = False) -> Any:
    query = select(rollouts).where(rollouts.c.id == rollout_id, rollouts.c.org_id == org_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no rollout {rollout_id!r}")
    return row


def _info(
    row: Any,
    waves: list[RolloutWave],
    version: int,
    template_id: str,
    devices_: list[RolloutDevice],
) -> RolloutInfo:
    return RolloutInfo(
        id=row.id,
        name=row.name,
        state=row.state,
        reason=row.reason,
        template_version_id=row.template_version_id,
        template_id=template_id,
        template_version=version,
        failure_threshold=row.failure_threshold,
        device_timeout_s=row.device_timeout_s,
        created_at=rfc3339(row.created_at),
        created_by=row.created_by,
        updated_at=rfc3339(row.updated_at),
        waves=waves,
        devices=devices_,
    )


def _waves(conn: Connection, row: Any) -> list[RolloutWave]:
    counts: dict[int, dict[str, int]] = {}
    started: dict[int, float | None] = {}
    for wave, state, n, first in conn.execute(
        select(
            rollout_devices.c.wave,
            rollout_devices.c.state,
            func.count(),
            func.min(rollout_devices.c.started_at),
        )
        .where(rollout_devices.c.rollout_id == row.id)
        .group_by(rollout_devices.c.wave, rollout_devices.c.state)
    ):
        counts.setdefault(wave, {})[state] = n
        if first is not None:
            started[wave] = min(first, started.get(wave) or first)
    out = []
    for wave in sorted(counts):
        c = counts[wave]
        total = sum(c.values())
        done = c.get("succeeded", 0) + c.get("failed", 0)
        if c.get("rolled_back"):
            failed_here = row.state == "rolled_back" and wave == row.wave
            state = "failed" if failed_here else "rolled_back"
        elif c.get("skipped"):
            state = "skipped"
        elif c.get("waiting"):
            state = "waiting"
        else:
            state = "succeeded" if done == total else "running"
        out.append(
            RolloutWave(
                index=wave,
                share=row.waves[wave] if wave < len(row.waves) else 1.0,
                state=state,
                devices=total,
                waiting=c.get("waiting", 0),
                in_progress=c.get("in_progress", 0),
                succeeded=c.get("succeeded", 0),
                failed=c.get("failed", 0),
                started_at=rfc3339(started[wave]) if wave in started else None,
            )
        )
    return out


def get(conn: Connection, org_id: str, rollout_id: str) -> RolloutInfo:
    row = row_of(conn, org_id, rollout_id)
    version = get_version(conn, org_id, row.template_version_id)
    per_device = [
        RolloutDevice(
            device_id=r.device_id,
            wave=r.wave,
            state=r.state,
            reason=r.reason,
            version=r.version,
            updated_at=rfc3339(r.updated_at),
        )
        for r in conn.execute(
            select(rollout_devices)
            .where(rollout_devices.c.rollout_id == rollout_id)
            .order_by(rollout_devices.c.wave, rollout_devices.c.device_id)
        )
    ]
    return _info(row, _waves(conn, row), version.number, version.template_id, per_device)


def list_rollouts(conn: Connection, org_id: str, limit: int = 100) -> list[RolloutInfo]:
    rows = conn.execute(
        select(rollouts)
        .where(rollouts.c.org_id == org_id)
        .order_by(rollouts.c.created_at.desc())
        .limit(limit)
    ).all()
    out = []
    for row in rows:
        version = get_version(conn, org_id, row.template_version_id)
        out.append(_info(row, _waves(conn, row), version.number, version.template_id, []))
    return out
