"""``/api/v1/health``, ``/metrics`` and ``/docs`` (served by the cloud itself, no CDN)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloud_sync.api.access import cloud_of, declare
from cloud_sync.db import migrate
from fleet_common.apidocs import docs_page
from fleet_common.version import VERSION
from fleet_common.wire.cloud import Health

router = APIRouter(tags=["system"])


@router.get("/api/v1/health", response_model=Health, **declare("public"))
async def health(request: Request) -> Health:
    """Liveness and the database's schema revision (503 when the database does not answer)."""
    cloud = cloud_of(request)
    revision = await asyncio.to_thread(migrate.current_revision, cloud.db)
    return Health(version=VERSION, database=cloud.db.dialect, schema_revision=revision)


@router.get("/metrics", include_in_schema=False, **declare("public"))
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    body = await asyncio.to_thread(generate_latest, cloud_of(request).metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse, **declare("public"))
async def docs(request: Request) -> HTMLResponse:
    """The API reference as one self-contained page (works without internet)."""
    return HTMLResponse(docs_page(request.app.openapi()))
