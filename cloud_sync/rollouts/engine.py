"""The rollout engine: one step over every running rollout (blocking; a worker thread).

Every replica runs :func:`advance` every second. It claims running rollouts with
``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one writer), so two replicas never judge
the same rollout at once, and keeps nothing in memory: the rollout's state, its devices'
states and the devices' heartbeats and reports are all rows. A step judges each in-progress
device (:func:`cloud_sync.rollouts.plan.judge`), then the wave: failed → roll back; done →
start the next wave, or finish.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from cloud_sync.changes import Change, ChangeHook, no_hook
from cloud_sync.configs import assignments, delivery
from cloud_sync.configs.effective import PRECEDENCE, compute, placements
from cloud_sync.db import dialect
from cloud_sync.db.tables import device_configs, devices, rollout_devices, rollouts
from cloud_sync.rollouts.plan import DeviceView, judge, wave_verdict

log = logging.getLogger("cloud.rollouts")


def advance(conn: Connection, now: float, interval_s: float, hook: ChangeHook = no_hook) -> int:
    """One step of every running rollout this replica can claim; how many it stepped."""
    claimed = conn.execute(
        dialect.for_claim(
            conn,
            select(rollouts).where(rollouts.c.state == "running").order_by(rollouts.c.created_at),
        )
    ).all()
    for rollout in claimed:
        step(conn, rollout, now, interval_s, hook)
    return len(claimed)


def step(
    conn: Connection, rollout: Any, now: float, interval_s: float, hook: ChangeHook = no_hook
) -> None:
    rows = conn.execute(
        select(
            rollout_devices,
            devices.c.last_seen,
            devices.c.status,
            devices.c.stream_status,
            devices.c.cloud_config_version,
            device_configs.c.report_version,
            device_configs.c.report_outcome,
            device_configs.c.report_message,
            device_configs.c.report_at,
        )
        .join(devices, devices.c.id == rollout_devices.c.device_id)
        .outerjoin(device_configs, device_configs.c.device_id == rollout_devices.c.device_id)
        .where(rollout_devices.c.rollout_id == rollout.id, rollout_devices.c.wave == rollout.wave)
    ).all()
    states: list[str] = []
    failures: list[str] = []
    judged: list[dict[str, Any]] = []
    for row in rows:
        state = row.state
        if state == "in_progress":
            view = DeviceView(
                version=row.version or 0,
                started_at=row.started_at or now,
                last_seen=row.last_seen,
                status=row.status,
                stream_status=row.stream_status,
                cloud_config_version=row.cloud_config_version,
                report_version=row.report_version,
                report_outcome=row.report_outcome,
                report_message=row.report_message or "",
                report_at=row.report_at,
            )
            verdict = judge(view, now, rollout.device_timeout_s, interval_s)
            if verdict is not None:
                state, reason = verdict
                judged.append({"b_device_id": row.device_id, "b_state": state, "b_reason": reason})
                if state == "failed":
                    failures.append(f"{row.device_id}: {reason}")
        elif state == "failed":
            failures.append(f"{row.device_id}: {row.reason}")
        states.append(state)
    _set_devices(conn, rollout.id, judged, now)
    wave = wave_verdict(states, rollout.failure_threshold)
    if wave == "failed":
        reason = (
            f"wave {rollout.wave + 1}: {len(failures)} of {len(states)} devices failed"
            f" (threshold {rollout.failure_threshold:.0%}); " + "; ".join(failures[:3])
        )
        roll_back(conn, rollout, "rolled_back", reason, now, "engine", hook)
    elif wave == "done":
        waves = (
            conn.execute(
                select(rollout_devices.c.wave)
                .where(rollout_devices.c.rollout_id == rollout.id)
                .distinct()
            )
            .scalars()
            .all()
        )
        if rollout.wave + 1 < len(waves):
            start_wave(conn, rollout.id, rollout.org_id, rollout.wave + 1, now)
        else:
            finish(conn, rollout, now, hook)


def _set_devices(
    conn: Connection, rollout_id: str, judged: list[dict[str, Any]], now: float
) -> None:
    """The judged devices' new states: one executemany, not one statement per device."""
    if not judged:
        return
    conn.execute(
        update(rollout_devices)
        .where(
            rollout_devices.c.rollout_id == rollout_id,
            rollout_devices.c.device_id == bindparam("b_device_id"),
        )
        .values(state=bindparam("b_state"), reason=bindparam("b_reason"), updated_at=now),
        judged,
    )


def start_wave(conn: Connection, rollout_id: str, org_id: str, wave: int, now: float) -> None:
    """Deliver the version to the wave's devices (their pin becomes active)."""
    where = (rollout_devices.c.rollout_id == rollout_id, rollout_devices.c.wave == wave)
    conn.execute(
        update(rollout_devices)
        .where(*where)
        .values(state="in_progress", started_at=now, updated_at=now)
    )
    conn.execute(
        update(rollouts).where(rollouts.c.id == rollout_id).values(wave=wave, updated_at=now)
    )
    ids = conn.execute(select(rollout_devices.c.device_id).where(*where)).scalars().all()
    published = delivery.publish(conn, org_id, ids, now)
    unchanged = delivery.versions(conn, [d for d in ids if not published.changed.get(d)])
    versions = [
        {"b_device_id": d, "b_version": published.changed.get(d) or unchanged.get(d)} for d in ids
    ]
    if versions:
        conn.execute(
            update(rollout_devices)
            .where(
                rollout_devices.c.rollout_id == rollout_id,
                rollout_devices.c.device_id == bindparam("b_device_id"),
            )
            .values(version=bindparam("b_version")),
            versions,
        )
    log.info("rollout %s: wave %d started on %d devices", rollout_id, wave + 1, len(ids))


def roll_back(
    conn: Connection,
    rollout: Any,
    state: str,
    reason: str,
    now: float,
    actor: str,
    hook: ChangeHook = no_hook,
) -> None:
    """End the rollout (``rolled_back`` or ``aborted``): every device it reached gets its
    previous effective config back (a new version), no other device ever receives it."""
    conn.execute(
        update(rollouts)
        .where(rollouts.c.id == rollout.id)
        .values(state=state, reason=reason, updated_at=now, paused_at=None)
    )
    reached = (
        conn.execute(
            select(rollout_devices.c.device_id).where(
                rollout_devices.c.rollout_id == rollout.id,
                rollout_devices.c.state.in_(("in_progress", "succeeded", "failed")),
            )
        )
        .scalars()
        .all()
    )
    conn.execute(
        update(rollout_devices)
        .where(
            rollout_devices.c.rollout_id == rollout.id,
            rollout_devices.c.state.in_(("in_progress", "succeeded", "failed")),
        )
        .values(state="rolled_back", updated_at=now)
    )
    conn.execute(
        update(rollout_devices)
        .where(rollout_devices.c.rollout_id == rollout.id, rollout_devices.c.state == "waiting")
        .values(state="skipped", reason="the rollout ended before this wave", updated_at=now)
    )
    delivery.publish(conn, rollout.org_id, reached, now)
    log.warning("rollout %s %s: %s", rollout.id, state.replace("_", " "), reason)
    hook(
        conn,
        Change(
            f"rollout.{state}",
            rollout.org_id,
            actor,
            rollout.id,
            at=now,
            extra={"reason": reason, "devices": len(reached)},
        ),
    )


def finish(conn: Connection, rollout: Any, now: float, hook: ChangeHook = no_hook) -> None:
    """Every wave done: the version becomes the base of the target's assignments (and of any
    more specific assignment that named another base for one of its devices), so the devices
    keep it once the rollout's pins are gone."""
    target = rollout.target
    version = int(rollout.template_version_id)
    actor = rollout.created_by
    if target.get("organisation"):
        assignments.set_base(
            conn, rollout.org_id, "organisation", rollout.org_id, version, actor, now
        )
    for kind, key in (("region", "regions"), ("site", "sites"), ("device", "devices")):
        for scope_id in target.get(key, []):
            assignments.set_base(conn, rollout.org_id, kind, scope_id, version, actor, now)
    ids = (
        conn.execute(
            select(rollout_devices.c.device_id).where(rollout_devices.c.rollout_id == rollout.id)
        )
        .scalars()
        .all()
    )
    counts = dict.fromkeys(("succeeded", "failed"), 0)
    for state in conn.execute(
        select(rollout_devices.c.state).where(rollout_devices.c.rollout_id == rollout.id)
    ).scalars():
        counts[state] = counts.get(state, 0) + 1
    reason = f"done: {counts['succeeded']} succeeded, {counts['failed']} failed"
    conn.execute(
        update(rollouts)
        .where(rollouts.c.id == rollout.id)
        .values(state="succeeded", reason=reason, updated_at=now)
    )
    unpinned = compute(conn, rollout.org_id, ids)
    for place in placements(conn, ids):
        eff = unpinned.get(place.device_id)
        if eff is not None and eff.template_version_id != version:
            for kind in reversed(PRECEDENCE):  # the most specific layer naming a base
                layer = next(
                    (x for x in eff.layers if x.source == kind and x.template_version_id), None
                )
                if layer is not None:
                    assignments.set_base(
                        conn, rollout.org_id, kind, place.scope_id(kind), version, actor, now
                    )
                    break
    delivery.publish(conn, rollout.org_id, ids, now)
    log.info("rollout %s succeeded: %s", rollout.id, reason)
    hook(
        conn,
        Change(
            "rollout.succeeded",
            rollout.org_id,
            actor or "engine",
            rollout.id,
            at=now,
            extra={"reason": reason},
        ),
    )
