"""Remote commands: an admin or operator queues one; the device's next heartbeat carries it;
the device reports the result in a later heartbeat.

A command is claimed for delivery by one conditional ``UPDATE ... RETURNING`` (pending → sent),
so two replicas answering heartbeats of one device never deliver it twice. One still pending
after ``ttl_s`` expires: a device that was off for a day does not restart its stream then.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from sqlalchemy import Connection, insert, select, update

from cloud_sync.changes import Change, ChangeHook, no_hook
from cloud_sync.db import dialect
from cloud_sync.db.tables import commands
from fleet_common.timefmt import rfc3339
from fleet_common.wire.cloud import Command, CommandInfo, CommandResult

CHANNEL: Final = "carwash_commands"  # NOTIFY channel: a command was queued
TTL_S: Final = 600.0


def queue(
    conn: Connection,
    org_id: str,
    device_id: str,
    kind: str,
    args: dict[str, Any],
    actor: str,
    now: float,
    hook: ChangeHook = no_hook,
) -> CommandInfo:
    command_id = conn.execute(
        insert(commands).values(
            org_id=org_id, device_id=device_id, kind=kind, args=args, status="pending",
            created_at=now, created_by=actor, sent_at=None, done_at=None, detail="",
        ).returning(commands.c.id)
    ).scalar_one()  # fmt: skip
    dialect.notify(conn, CHANNEL, device_id)
    hook(conn, Change("command.queued", org_id, actor, device_id, at=now,
                      after={"id": command_id, "kind": kind, "args": args}))  # fmt: skip
    return CommandInfo(id=command_id, device_id=device_id, kind=kind, args=args,
                       status="pending", created_at=rfc3339(now))  # fmt: skip


def pending_devices(conn: Connection, now: float) -> set[str]:
    """Devices with a command waiting (and the expiry of old ones, on the way)."""
    conn.execute(
        update(commands)
        .where(commands.c.status == "pending", commands.c.created_at < now - TTL_S)
        .values(status="expired", done_at=now)
    )  # fmt: skip
    rows = conn.execute(
        select(commands.c.device_id).where(commands.c.status == "pending").distinct()
    )
    return {str(r[0]) for r in rows}


def claim(conn: Connection, device_id: str, now: float) -> list[Command]:
    rows = conn.execute(
        update(commands)
        .where(commands.c.device_id == device_id, commands.c.status == "pending")
        .values(status="sent", sent_at=now)
        .returning(commands.c.id, commands.c.kind, commands.c.args)
    ).all()  # fmt: skip
    return sorted((Command(id=r.id, kind=r.kind, args=r.args) for r in rows), key=lambda c: c.id)


def record_results(
    conn: Connection, device_id: str, results: Iterable[CommandResult], now: float
) -> None:
    for result in results:
        conn.execute(
            update(commands)
            .where(commands.c.id == result.id, commands.c.device_id == device_id,
                   commands.c.status.in_(("pending", "sent")))
            .values(status="succeeded" if result.ok else "failed", done_at=now,
                    detail=result.detail)
        )  # fmt: skip


def list_commands(conn: Connection, device_id: str, limit: int = 50) -> list[CommandInfo]:
    rows = conn.execute(
        select(commands).where(commands.c.device_id == device_id)
        .order_by(commands.c.id.desc()).limit(limit)
    )  # fmt: skip
    return [
        CommandInfo(
            id=r.id, device_id=r.device_id, kind=r.kind, args=r.args, status=r.status,
            created_at=rfc3339(r.created_at),
            sent_at=rfc3339(r.sent_at) if r.sent_at is not None else None,
            done_at=rfc3339(r.done_at) if r.done_at is not None else None, detail=r.detail,
        )
        for r in rows
    ]  # fmt: skip
