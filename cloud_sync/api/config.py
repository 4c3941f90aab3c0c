"""``/api/v1/config``: templates and their immutable versions, assignments, the edge schema;
and ``GET /api/v1/devices/{id}/effective-config``. Changes need an organisation-wide admin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status

from cloud_sync.api.access import cloud_of, declare, user
from cloud_sync.auth.scope import Principal, visible_sites
from cloud_sync.configs import assignments, delivery, templates
from cloud_sync.configs.effective import compute
from cloud_sync.configs.schema import load_schema
from cloud_sync.db.tables import devices
from cloud_sync.devices import store as device_store
from cloud_sync.errors import Forbidden
from fleet_common.wire.cloud import (
    AssignmentInfo,
    AssignmentList,
    AssignmentRequest,
    EffectiveConfig,
    TemplateInfo,
    TemplateList,
    TemplateRequest,
    TemplateVersionInfo,
    TemplateVersionRequest,
)

router = APIRouter(prefix="/api/v1", tags=["config"])
Viewer = Annotated[Principal, Depends(user("viewer"))]
Admin = Annotated[Principal, Depends(user("admin"))]
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "The config does not fit the edge schema (`invalid_config`)"}
}


def org_wide(who: Principal) -> str:
    """The caller's organisation, if their role covers all of it (config is organisation-wide)."""
    if who.scope != "organisation":
        raise Forbidden("config templates, assignments and rollouts need an organisation-wide role")
    return who.org_id


@router.get("/config/schema", **declare("viewer"))
async def edge_schema(who: Viewer) -> dict[str, Any]:
    """The edge config's JSON schema templates and overrides are validated against."""
    return load_schema()


@router.get("/config/templates", response_model=TemplateList, **declare("admin"))
async def list_templates(who: Admin, request: Request) -> TemplateList:
    found = await cloud_of(request).read(templates.list_templates, org_wide(who))
    return TemplateList(templates=found)


@router.post(
    "/config/templates",
    response_model=TemplateInfo,
    status_code=201,
    responses=_INVALID,
    **declare("admin"),
)
async def add_template(body: TemplateRequest, who: Admin, request: Request) -> TemplateInfo:
    """A new template with its version 1 (validated against the edge schema)."""
    cloud = cloud_of(request)
    return await cloud.write(
        templates.add_template,
        org_wide(who),
        body.name,
        body.description,
        body.config,
        body.comment,
        who.actor,
        cloud.clock(),
        cloud.hook,
    )


@router.get("/config/templates/{template_id}", response_model=TemplateInfo, **declare("admin"))
async def get_template(template_id: str, who: Admin, request: Request) -> TemplateInfo:
    return await cloud_of(request).read(templates.get_template, org_wide(who), template_id)


@router.post(
    "/config/templates/{template_id}/versions",
    response_model=TemplateVersionInfo,
    status_code=201,
    responses=_INVALID,
    **declare("admin"),
)
async def add_version(
    template_id: str, body: TemplateVersionRequest, who: Admin, request: Request
) -> TemplateVersionInfo:
    """A new immutable version of the template; nothing is delivered until it is assigned or
    rolled out."""
    cloud = cloud_of(request)
    return await cloud.write(
        templates.add_version,
        org_wide(who),
        template_id,
        body.config,
        body.comment,
        who.actor,
        cloud.clock(),
        cloud.hook,
    )


@router.get("/config/versions/{version_id}", response_model=TemplateVersionInfo, **declare("admin"))
async def get_version(version_id: int, who: Admin, request: Request) -> TemplateVersionInfo:
    return await cloud_of(request).read(templates.get_version, org_wide(who), version_id)


@router.get("/config/assignments", response_model=AssignmentList, **declare("admin"))
async def list_assignments(who: Admin, request: Request) -> AssignmentList:
    found = await cloud_of(request).read(assignments.list_all, org_wide(who))
    return AssignmentList(assignments=found)


@router.put(
    "/config/assignments", response_model=AssignmentInfo, responses=_INVALID, **declare("admin")
)
async def put_assignment(body: AssignmentRequest, who: Admin, request: Request) -> AssignmentInfo:
    """Set the base template version and/or overrides of one scope (replacing what it had);
    the devices it covers get their new effective config at once (no staging: use a rollout)."""
    cloud = cloud_of(request)
    info = await cloud.write(
        assignments.put, org_wide(who), body, who.actor, cloud.clock(), cloud.hook
    )
    cloud.config_watch.kick()
    return info


@router.delete(
    "/config/assignments/{assignment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    **declare("admin"),
)
async def delete_assignment(assignment_id: int, who: Admin, request: Request) -> None:
    cloud = cloud_of(request)
    await cloud.write(
        assignments.remove, org_wide(who), assignment_id, who.actor, cloud.clock(), cloud.hook
    )
    cloud.config_watch.kick()


def _effective(conn: Any, org_id: str, device_id: str) -> EffectiveConfig:
    from sqlalchemy import select

    eff = compute(conn, org_id, [device_id]).get(device_id)
    served = delivery.current(conn, device_id)
    applied = conn.execute(
        select(devices.c.cloud_config_version).where(devices.c.id == device_id)
    ).scalar()
    return EffectiveConfig(
        device_id=device_id,
        config=(eff.config if eff else None) or {},
        version=served.version if served else None,
        applied_version=applied,
        template_version_id=eff.template_version_id if eff else None,
        rollout_id=eff.rollout_id if eff else None,
        layers=eff.layers if eff else [],
    )


@router.get(
    "/devices/{device_id}/effective-config", response_model=EffectiveConfig, **declare("viewer")
)
async def effective_config(device_id: str, who: Viewer, request: Request) -> EffectiveConfig:
    """What the device gets now: the merged config, its layers, the delivered and the applied
    version."""
    cloud = cloud_of(request)
    org_id, _ = await cloud.read(device_store.device_org, device_id, visible_sites(who))
    return await cloud.read(_effective, org_id, device_id)
