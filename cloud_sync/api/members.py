"""``/api/v1/members``: the organisation's member list (admins upload, replace and edit it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from cloud_sync import members
from cloud_sync.api.access import cloud_of, declare, user
from cloud_sync.api.config import org_wide
from cloud_sync.auth.scope import Principal
from cloud_sync.errors import Invalid, UnsupportedMedia
from fleet_common.wire.cloud import MemberEntry, MemberFile, MembersInfo, MemberUpload

router = APIRouter(prefix="/api/v1/members", tags=["members"])
Admin = Annotated[Principal, Depends(user("admin"))]
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": MemberUpload.model_json_schema()},
            "text/csv": {"schema": {"type": "string", "description": "plate,id,name,plan,status"}},
        },
    }
}


@router.get("", response_model=MemberFile, **declare("admin"))
async def list_members(who: Admin, request: Request) -> MemberFile:
    return await cloud_of(request).read(members.member_file, org_wide(who))


@router.put(
    "",
    response_model=MembersInfo,
    openapi_extra={**_BODY, "x-required-role": "admin"},
    responses={413: {"description": "Too large"}, 415: {"description": "Not JSON or CSV"}},
)
async def replace_members(who: Admin, request: Request) -> MembersInfo:
    """Replace the whole list: JSON `{"members": [...]}` or CSV with a header row."""
    cloud = cloud_of(request)
    org_id = org_wide(who)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if kind in ("text/csv", "text/plain"):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise Invalid("the CSV is not UTF-8") from err
        entries = members.parse_csv(text)
    elif kind in ("application/json", ""):
        try:
            entries = list(MemberUpload.model_validate_json(raw).members)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
            raise Invalid(f"invalid member list: {where}: {first.get('msg')}") from err
    else:
        raise UnsupportedMedia("send application/json or text/csv")
    return await cloud.write(members.replace, org_id, entries, who.actor, cloud.clock(), cloud.hook)


@router.put("/{plate}", response_model=MembersInfo, **declare("admin"))
async def put_member(plate: str, body: MemberEntry, who: Admin, request: Request) -> MembersInfo:
    """Add or change one member (the body's plate must be the path's)."""
    if members.clean_plate(plate) != members.clean_plate(body.plate):
        raise Invalid("the body's plate differs from the path's")
    cloud = cloud_of(request)
    return await cloud.write(
        members.put_one, org_wide(who), body, who.actor, cloud.clock(), cloud.hook
    )


@router.delete("/{plate}", response_model=MembersInfo, **declare("admin"))
async def delete_member(plate: str, who: Admin, request: Request) -> MembersInfo:
    cloud = cloud_of(request)
    return await cloud.write(
        members.remove_one, org_wide(who), plate, who.actor, cloud.clock(), cloud.hook
    )
