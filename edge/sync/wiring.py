"""The sync client joined to a running edge: what a heartbeat reports, what a command does,
where the cloud's config and members go.

Called by the runner once the store and the config manager run. An edge that was never
enrolled (no ``DATA_DIR/cloud.json``) runs on its own, as before: nothing here starts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from edge.errors import EdgeError
from edge.sync.apply import ConfigApplier
from edge.sync.credentials import CloudCredentials
from edge.sync.errors import NotEnrolled
from edge.sync.members import MembersFileWriter
from edge.sync.metrics import SyncMetrics
from edge.sync.service import CommandOutcome, DeviceStatus, SyncService
from fleet_common.wire.cloud import Command

if TYPE_CHECKING:
    from edge.live_config import ConfigManager
    from edge.service import Edge

log = logging.getLogger("edge.sync")

CLOUD_MEMBERS_FILENAME = "cloud-members.json"


def _status(edge: Edge) -> DeviceStatus:
    health = edge.health()
    info = edge.info()
    metrics: dict[str, float] = {"fps": info.source.fps_decoded}
    if info.latest is not None:
        metrics["frame_age_ms"] = info.latest.age_ms
    live = edge.live
    return DeviceStatus(
        status=health.status, stream_status=health.stream_status,
        config_version=live.version if live is not None else None, metrics=metrics,
    )  # fmt: skip


async def _command(edge: Edge, command: Command) -> CommandOutcome:
    """``restart_stream`` and ``read_plate`` (``resync_members`` is the client's own)."""
    if command.kind == "restart_stream":
        await edge.restart_component("camera")
        return CommandOutcome(True, "camera source restarted")
    if command.kind == "read_plate":
        if edge.plates is None:
            return CommandOutcome(False, "plate reading is not running")
        try:
            outcome = await edge.plates.recognize_now()
        except EdgeError as err:
            return CommandOutcome(False, f"{err.code}: {err.message}")
        plate = outcome.payload["plate"] if outcome.payload else None
        return CommandOutcome(True, f"read {plate}" if plate else "no plate in the picture")
    return CommandOutcome(False, f"unknown command {command.kind}")


async def start_sync(edge: Edge, live: ConfigManager | None) -> SyncService | None:
    """The running sync client of ``edge``, or None when it was never enrolled."""
    if edge.store is None:
        return None
    data_dir = edge.config.resolved_data_dir()
    try:
        creds = await asyncio.to_thread(CloudCredentials.load, data_dir)
    except NotEnrolled as err:
        log.debug("cloud sync off: %s", err)
        return None
    # The cloud's member list is the edge's list, unless the site set a file of its own
    # (plates.members_file): that one wins and is never overwritten by the cloud's.
    plates = edge.config.plates
    writer: MembersFileWriter | None = None
    if plates.members_file is None:
        plates.members_file = data_dir / CLOUD_MEMBERS_FILENAME
        writer = MembersFileWriter(plates.members_file)
    else:
        log.info("members: the site's own file %s is used, not the cloud's list",
                 plates.members_file)  # fmt: skip
    sync = SyncService(
        creds, edge.store,
        status=lambda: _status(edge),
        on_command=lambda command: _command(edge, command),
        on_config=ConfigApplier(live) if live is not None else None,
        on_members=writer,
        members_version=await asyncio.to_thread(writer.version) if writer is not None else None,
        metrics=SyncMetrics(edge.metrics.registry),
    )  # fmt: skip
    await sync.start()
    log.info("cloud sync to %s as device %s", creds.cloud_url, creds.device_id)
    return sync
