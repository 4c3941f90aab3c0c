"""Supervisors' reads: ``/api/v1/sites``, ``/api/v1/rollups``, ``/api/v1/plates``."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from cloud_sync.api.access import cloud_of, declare, user
from cloud_sync.auth.scope import Principal
from cloud_sync.errors import Invalid
from cloud_sync.reads import devices as device_reads
from cloud_sync.reads import plates, rollups
from fleet_common.timefmt import parse_timestamp
from fleet_common.wire.cloud import GroupBy, PlatePage, RollupList, SiteList

router = APIRouter(prefix="/api/v1", tags=["reads"])
Viewer = Annotated[Principal, Depends(user("viewer"))]
TimeParam = Annotated[str | None, Query(max_length=40, description="RFC 3339, or Unix seconds.")]


def parse_time(text: str | None, name: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_timestamp(text)
        except ValueError as err:
            raise Invalid(
                f"`{name}` is neither RFC 3339 nor Unix seconds", code="bad_time"
            ) from err
    if not math.isfinite(value):
        raise Invalid(f"`{name}` is not a time", code="bad_time")
    return value


@router.get("/sites", response_model=SiteList, **declare("viewer"))
async def sites(who: Viewer, request: Request) -> SiteList:
    """The caller's sites with their regions and device counts."""
    return SiteList(sites=await cloud_of(request).read(device_reads.site_list, who))


@router.get("/rollups", response_model=RollupList, **declare("viewer"))
async def rollup_list(
    who: Viewer,
    request: Request,
    from_: Annotated[TimeParam, Query(alias="from")] = None,
    to: TimeParam = None,
    group_by: GroupBy = "site",
) -> RollupList:
    """Vehicles, plate reads, member recognitions, rentals (mean and 95th-percentile duration)
    and stream uptime over [from, to) (default: the last 24 hours), by site, region, UTC hour or
    UTC day. Made of hourly rollups: the cost is sites x hours, never raw events."""
    cloud = cloud_of(request)
    end = parse_time(to, "to") or cloud.clock()
    start = parse_time(from_, "from")
    start = end - 86400 if start is None else start
    rows = await cloud.read(rollups.query_rollups, who, start, end, group_by)
    return RollupList(group_by=group_by, rows=rows)


@router.get("/plates", response_model=PlatePage, **declare("viewer"))
async def plate_search(
    who: Viewer,
    request: Request,
    plate: Annotated[str | None, Query(max_length=32, description="A prefix.")] = None,
    site: Annotated[str | None, Query(max_length=64, description="A site id.")] = None,
    from_: Annotated[TimeParam, Query(alias="from")] = None,
    to: TimeParam = None,
    member: Annotated[str | None, Query(max_length=64, description="A member id.")] = None,
    limit: Annotated[int, Query(ge=1, le=plates.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PlatePage:
    """Plate reads across the caller's sites, newest first; `next_cursor` pages on."""
    return await cloud_of(request).read(
        plates.search, who, plate=plate, site_id=site, start=parse_time(from_, "from"),
        end=parse_time(to, "to"), member=member, limit=limit, cursor=cursor,
    )  # fmt: skip
