"""``/api/v1/devices``: enrolment, heartbeat, keys, commands, and the device list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from cloud_sync.api.access import cloud_of, declare, device, user
from cloud_sync.auth.scope import Principal, visible_sites
from cloud_sync.devices import commands
from cloud_sync.devices import store as device_store
from cloud_sync.devices.keys import DeviceAuth
from cloud_sync.reads import devices as device_reads
from fleet_common.wire.cloud import (
    CommandInfo,
    CommandList,
    CommandRequest,
    DeviceKey,
    DeviceList,
    EnrollRequest,
    EnrollResponse,
    HeartbeatRequest,
    HeartbeatResponse,
)

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
Device = Annotated[DeviceAuth, Depends(device)]
Viewer = Annotated[Principal, Depends(user("viewer"))]
Operator = Annotated[Principal, Depends(user("operator"))]
Admin = Annotated[Principal, Depends(user("admin"))]


@router.post("/enroll", response_model=EnrollResponse, **declare("public"))
async def enroll(body: EnrollRequest, request: Request) -> EnrollResponse:
    """A one-time enrolment token → this device's id and key (shown once)."""
    return await cloud_of(request).enroll(body)


@router.post("/heartbeat", response_model=HeartbeatResponse, **declare("device"))
async def heartbeat(body: HeartbeatRequest, me: Device, request: Request) -> HeartbeatResponse:
    """Status, stream status, key figures, versions and command results → pending commands."""
    return await cloud_of(request).heartbeat(me, body)


@router.post("/rotate-key", response_model=DeviceKey, **declare("device"))
async def rotate_own_key(me: Device, request: Request) -> DeviceKey:
    """A new key for the calling device; the one it called with stops working."""
    cloud = cloud_of(request)
    key = await cloud.write(device_store.rotate, me.device_id, f"device:{me.device_id}", cloud.hook)
    cloud.forget(me.device_id)
    return DeviceKey(device_id=me.device_id, device_key=key)


@router.get("", response_model=DeviceList, **declare("viewer"))
async def list_devices(
    who: Viewer, request: Request, site: Annotated[str | None, Query(max_length=64)] = None
) -> DeviceList:
    """Devices of the caller's sites: online (heartbeat within 3 intervals), versions."""
    cloud = cloud_of(request)
    found = await cloud.read(
        device_reads.list_devices, who, cloud.clock(), cloud.settings.heartbeat_interval_s, site
    )
    return DeviceList(devices=found)


@router.post("/{device_id}/revoke", status_code=status.HTTP_204_NO_CONTENT, **declare("admin"))
async def revoke(device_id: str, who: Admin, request: Request) -> None:
    """The device's key stops working (on every replica within `key_cache_ttl_s`)."""
    cloud = cloud_of(request)
    await cloud.read(device_store.device_org, device_id, visible_sites(who))
    await cloud.write(device_store.revoke, device_id, who.actor, cloud.hook)
    cloud.forget(device_id)


@router.post("/{device_id}/rotate-key", response_model=DeviceKey, **declare("admin"))
async def rotate_key(device_id: str, who: Admin, request: Request) -> DeviceKey:
    """A new key for the device (shown once; a revoked device is re-admitted with it)."""
    cloud = cloud_of(request)
    await cloud.read(device_store.device_org, device_id, visible_sites(who))
    key = await cloud.write(device_store.rotate, device_id, who.actor, cloud.hook)
    cloud.forget(device_id)
    return DeviceKey(device_id=device_id, device_key=key)


@router.post(
    "/{device_id}/commands", response_model=CommandInfo, status_code=201, **declare("operator")
)
async def queue_command(
    device_id: str, body: CommandRequest, who: Operator, request: Request
) -> CommandInfo:
    """Queue a command; the device's next heartbeat carries it (expires after 10 minutes)."""
    cloud = cloud_of(request)
    org_id, _ = await cloud.read(device_store.device_org, device_id, visible_sites(who))
    info = await cloud.write(
        commands.queue, org_id, device_id, body.kind, body.args, who.actor, cloud.clock(),
        cloud.hook,
    )  # fmt: skip
    cloud.pending.add(device_id)
    return info


@router.get("/{device_id}/commands", response_model=CommandList, **declare("viewer"))
async def list_commands(device_id: str, who: Viewer, request: Request) -> CommandList:
    """The device's newest commands and their results."""
    cloud = cloud_of(request)
    await cloud.read(device_store.device_org, device_id, visible_sites(who))
    return CommandList(commands=await cloud.read(commands.list_commands, device_id))
