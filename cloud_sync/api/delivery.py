"""The device side of config and members: ``GET /api/v1/devices/config`` (long-poll, ETag),
``POST /api/v1/devices/config/report``, ``GET /api/v1/devices/members`` (ETag)."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from cloud_sync import members
from cloud_sync.api.access import cloud_of, declare, device
from cloud_sync.configs import delivery
from cloud_sync.devices.keys import DeviceAuth
from cloud_sync.errors import NotFound
from fleet_common.wire.cloud import ConfigReport, DeviceConfig, MemberFile

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
Device = Annotated[DeviceAuth, Depends(device)]
IfNoneMatch = Annotated[str | None, Header(max_length=100)]
_NOT_MODIFIED: Final[dict[int | str, dict[str, Any]]] = {
    304: {"description": "Not modified: the version in If-None-Match is current."}
}


def etag(version: int) -> str:
    return f'"{version}"'


def known_version(header: str | None) -> int | None:
    """The version an ``If-None-Match`` names (``"7"``, ``W/"7"``, ``7``); None otherwise."""
    if not header:
        return None
    text = header.split(",")[0].strip().removeprefix("W/").strip('"')
    return int(text) if text.isdigit() else None


@router.get(
    "/config",
    response_model=DeviceConfig,
    responses={**_NOT_MODIFIED, 404: {"description": "No config is assigned (`no_config`)"}},
    **declare("device"),
)
async def device_config(
    me: Device,
    request: Request,
    response: Response,
    if_none_match: IfNoneMatch = None,
    wait: Annotated[
        float, Query(ge=0, le=60, description="Long-poll up to this many seconds.")
    ] = 0,
) -> Any:
    """The device's effective config; ETag = its version. With `If-None-Match` and `wait`, the
    answer comes as soon as the version changes, else 304 after `wait` seconds."""
    cloud = cloud_of(request)
    known = known_version(if_none_match)
    found = await cloud.read(delivery.current, me.device_id)
    have = found.version if found is not None else None
    wait = min(wait, cloud.settings.max_config_wait_s)
    if (
        wait > 0
        and (found is None or have == known)
        and await cloud.config_watch.wait(me.device_id, have, wait)
    ):
        found = await cloud.read(delivery.current, me.device_id)
    if found is None:
        raise NotFound("no config is assigned to this device: keep the local one", code="no_config")
    if found.version == known:
        return Response(status_code=304, headers={"ETag": etag(found.version)})
    response.headers["ETag"] = etag(found.version)
    return found


@router.post("/config/report", status_code=status.HTTP_204_NO_CONTENT, **declare("device"))
async def config_report(body: ConfigReport, me: Device, request: Request) -> None:
    """What became of a version: `applied`, `rejected` or `rolled_back` (with a message);
    rollouts wait for it (or for a heartbeat's `cloud_config_version`) and a healthy stream."""
    cloud = cloud_of(request)
    await cloud.write(delivery.record_report, me.device_id, body, cloud.clock())


@router.get("/members", response_model=MemberFile, responses=_NOT_MODIFIED, **declare("device"))
async def device_members(
    me: Device, request: Request, response: Response, if_none_match: IfNoneMatch = None
) -> Any:
    """The organisation's member list as the edge's members file; ETag = its version."""
    cloud = cloud_of(request)
    known = known_version(if_none_match)
    version = await cloud.read(members.version_of, me.org_id)
    if known is not None and version == known:
        return Response(status_code=304, headers={"ETag": etag(version)})
    found = await cloud.read(members.member_file, me.org_id)
    response.headers["ETag"] = etag(found.version)
    return found
