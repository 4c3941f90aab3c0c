"""Rollouts as rows: start one (its first wave is delivered in the same transaction), pause,
resume, abort (progress reads are in :mod:`.progress`). Blocking: call in a worker thread."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from cloud_sync.changes import Change, ChangeHook, no_hook
from cloud_sync.configs.effective import ACTIVE_ROLLOUT_STATES, compute
from cloud_sync.configs.templates import get_version
from cloud_sync.db.tables import devices, regions, rollout_devices, rollouts, sites
from cloud_sync.errors import Conflict, Invalid, NotFound
from cloud_sync.rollouts import engine
from cloud_sync.rollouts.plan import check_waves, split
from cloud_sync.rollouts.progress import get, list_rollouts, row_of
from cloud_sync.tenancy import new_id
from fleet_common.wire.cloud import RolloutInfo, RolloutRequest


def _targets(conn: Connection, org_id: str, body: RolloutRequest) -> list[str]:
    t = body.target
    query = select(devices.c.id).where(devices.c.org_id == org_id, devices.c.revoked_at.is_(None))
    if not t.organisation:
        for table, ids, what in (
            (regions, t.regions, "region"),
            (sites, t.sites, "site"),
            (devices, t.devices, "device"),
        ):
            known = set(
                conn.execute(
                    select(table.c.id).where(table.c.org_id == org_id, table.c.id.in_(ids))
                ).scalars()
            )
            missing = sorted(set(ids) - known)
            if missing:
                raise NotFound(f"no {what} {missing[0]!r}")
        in_regions = select(sites.c.id).where(sites.c.region_id.in_(t.regions))
        query = query.where(
            devices.c.site_id.in_(in_regions)
            | devices.c.site_id.in_(t.sites)
            | devices.c.id.in_(t.devices)
        )
    return sorted(str(d) for d in conn.execute(query).scalars())


def create(
    conn: Connection,
    org_id: str,
    body: RolloutRequest,
    actor: str,
    now: float,
    hook: ChangeHook = no_hook,
) -> RolloutInfo:
    check_waves(body.waves)
    version = get_version(conn, org_id, body.template_version_id)
    target = _targets(conn, org_id, body)
    if not target:
        raise Invalid("the target holds no devices")
    bare = sorted(d for d, eff in compute(conn, org_id, target).items() if eff.config is None)
    if bare:  # a rollback would have nothing to give back
        raise Invalid(
            f"{len(bare)} target devices have no config assigned (e.g. {bare[0]}):"
            " assign a base first (PUT /api/v1/config/assignments), then roll out"
        )
    busy = conn.execute(
        select(rollout_devices.c.device_id, rollouts.c.id)
        .join(rollouts, rollouts.c.id == rollout_devices.c.rollout_id)
        .where(
            rollouts.c.org_id == org_id,
            rollouts.c.state.in_(ACTIVE_ROLLOUT_STATES),
            rollout_devices.c.device_id.in_(target),
        )
        .limit(1)
    ).first()
    if busy is not None:
        raise Conflict(
            f"device {busy.device_id} is in rollout {busy.id}, which is still active:"
            " abort it or wait for it to end"
        )
    rollout_id = new_id()
    conn.execute(
        insert(rollouts).values(
            id=rollout_id,
            org_id=org_id,
            name=body.name,
            template_version_id=version.id,
            target=body.target.model_dump(),
            waves=list(body.waves),
            failure_threshold=body.failure_threshold,
            device_timeout_s=body.device_timeout_s,
            state="running",
            reason="wave 1 (canary) started",
            wave=0,
            paused_at=None,
            created_at=now,
            created_by=actor,
            updated_at=now,
        )
    )
    rows = [
        {
            "rollout_id": rollout_id,
            "device_id": d,
            "wave": i,
            "state": "waiting",
            "reason": "",
            "version": None,
            "started_at": None,
            "updated_at": now,
        }
        for i, wave in enumerate(split(rollout_id, target, body.waves))
        for d in wave
    ]
    conn.execute(insert(rollout_devices), rows)
    engine.start_wave(conn, rollout_id, org_id, 0, now)
    hook(
        conn,
        Change(
            "rollout.started",
            org_id,
            actor,
            rollout_id,
            at=now,
            after={"template_version_id": version.id, "devices": len(target)},
        ),
    )
    return get(conn, org_id, rollout_id)


def control(
    conn: Connection,
    org_id: str,
    rollout_id: str,
    action: str,
    actor: str,
    now: float,
    hook: ChangeHook = no_hook,
) -> RolloutInfo:
    """``pause``, ``resume`` or ``abort`` (which rolls back every device the rollout reached)."""
    row = row_of(conn, org_id, rollout_id, lock=True)
    if row.state not in ACTIVE_ROLLOUT_STATES:
        raise Conflict(f"the rollout has ended ({row.state})")
    if action == "abort":
        engine.roll_back(conn, row, "aborted", f"aborted by {actor}", now, actor, hook)
    elif action == "pause":
        if row.state == "running":
            conn.execute(
                update(rollouts)
                .where(rollouts.c.id == rollout_id)
                .values(state="paused", paused_at=now, reason=f"paused by {actor}", updated_at=now)
            )
    elif row.state == "paused":  # resume: the pause does not count against device timeouts
        held = now - (row.paused_at or now)
        conn.execute(
            update(rollout_devices)
            .where(
                rollout_devices.c.rollout_id == rollout_id, rollout_devices.c.state == "in_progress"
            )
            .values(started_at=rollout_devices.c.started_at + held)
        )
        conn.execute(
            update(rollouts)
            .where(rollouts.c.id == rollout_id)
            .values(state="running", paused_at=None, reason=f"resumed by {actor}", updated_at=now)
        )
    hook(conn, Change(f"rollout.{action}", org_id, actor, rollout_id, at=now))
    return get(conn, org_id, rollout_id)


__all__ = ["control", "create", "get", "list_rollouts"]
