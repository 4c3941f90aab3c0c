"""``/api/v1/rollouts``: start a staged rollout, follow its progress, pause, resume, abort."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from cloud_sync.api.access import cloud_of, declare, user
from cloud_sync.api.config import org_wide
from cloud_sync.auth.scope import Principal
from cloud_sync.rollouts import store
from fleet_common.wire.cloud import RolloutInfo, RolloutList, RolloutRequest

router = APIRouter(prefix="/api/v1/rollouts", tags=["config"])
Admin = Annotated[Principal, Depends(user("admin"))]
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "A target device is in another active rollout, or it ended"}
}


@router.post(
    "", response_model=RolloutInfo, status_code=201, responses=_CONFLICT, **declare("admin")
)
async def start(body: RolloutRequest, who: Admin, request: Request) -> RolloutInfo:
    """Start a rollout: its first wave (the canary) gets the version at once; later waves
    follow when every device of the wave runs it with a healthy stream."""
    cloud = cloud_of(request)
    info = await cloud.write(
        store.create, org_wide(who), body, who.actor, cloud.clock(), cloud.hook
    )
    cloud.config_watch.kick()
    return info


@router.get("", response_model=RolloutList, **declare("admin"))
async def list_rollouts(
    who: Admin, request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> RolloutList:
    """Newest first, without the per-device rows."""
    found = await cloud_of(request).read(store.list_rollouts, org_wide(who), limit)
    return RolloutList(rollouts=found)


@router.get("/{rollout_id}", response_model=RolloutInfo, **declare("admin"))
async def progress(rollout_id: str, who: Admin, request: Request) -> RolloutInfo:
    """State and reason, counts per wave, and each device's state and reason."""
    return await cloud_of(request).read(store.get, org_wide(who), rollout_id)


async def _control(rollout_id: str, action: str, who: Principal, request: Request) -> RolloutInfo:
    cloud = cloud_of(request)
    info = await cloud.write(
        store.control, org_wide(who), rollout_id, action, who.actor, cloud.clock(), cloud.hook
    )
    cloud.config_watch.kick()
    return info


@router.post(
    "/{rollout_id}/pause", response_model=RolloutInfo, responses=_CONFLICT, **declare("admin")
)
async def pause(rollout_id: str, who: Admin, request: Request) -> RolloutInfo:
    """No wave starts and no device is judged until resumed."""
    return await _control(rollout_id, "pause", who, request)


@router.post(
    "/{rollout_id}/resume", response_model=RolloutInfo, responses=_CONFLICT, **declare("admin")
)
async def resume(rollout_id: str, who: Admin, request: Request) -> RolloutInfo:
    return await _control(rollout_id, "resume", who, request)


@router.post(
    "/{rollout_id}/abort", response_model=RolloutInfo, responses=_CONFLICT, **declare("admin")
)
async def abort(rollout_id: str, who: Admin, request: Request) -> RolloutInfo:
    """End it: every device it reached gets its previous config back."""
    return await _control(rollout_id, "abort", who, request)
