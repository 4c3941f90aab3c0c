"""The cloud's HTTP API: ``create_app(cloud)`` builds it from a :class:`~cloud_sync.service.Cloud`.

Layers, outermost first: request metrics (:mod:`.observe`), body caps and gzip (:mod:`.body`),
the heartbeat's raw fast path (:mod:`.hot`), then FastAPI with one error handler per family
(:mod:`.errors`). Routes are split by domain
(people, devices, ingest, reads, system), each declares its access (:mod:`.access`).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.routing import APIRoute

from cloud_sync.api import (
    config,
    delivery,
    devices,
    ingest,
    members,
    people,
    reads,
    rollouts,
    system,
)
from cloud_sync.api.body import BodyLimits
from cloud_sync.api.errors import install_error_handlers
from cloud_sync.api.hot import HEARTBEAT_PATH, HotHeartbeat
from cloud_sync.api.observe import Observe
from cloud_sync.service import Cloud
from fleet_common.version import VERSION
from fleet_common.wire.errors import ERROR_CODES, ErrorBody

_REF: Final = "#/components/schemas/"
_SECURITY: Final = {
    "user": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
             "description": "An access token from `POST /api/v1/auth/login`."},
    "device": {"type": "http", "scheme": "bearer",
               "description": "A device key from `POST /api/v1/devices/enroll`."},
}  # fmt: skip


def create_app(cloud: Cloud) -> FastAPI:
    api = FastAPI(
        title="carwash-cloud",
        version=VERSION,
        description="The cloud of a car-wash chain: enrolment, heartbeats, ingest, rollups."
        ' Every error is `{"error": code, "message": text}`.',
        docs_url=None,
        redoc_url=None,
    )
    api.state.cloud = cloud
    install_error_handlers(api)
    for module in (people, delivery, devices, config, rollouts, members, ingest, reads, system):
        api.include_router(module.router)
    for route in api.routes:
        if isinstance(route, APIRoute) and "x-required-role" not in (route.openapi_extra or {}):
            raise RuntimeError(f"route {route.path} declares no access (cloud_sync/api/access.py)")
    settings = cloud.settings
    beat = next(r for r in devices.router.routes if getattr(r, "path", "") == HEARTBEAT_PATH)
    api.add_middleware(HotHeartbeat, cloud=cloud, route=beat)  # innermost: inside the caps
    api.add_middleware(
        BodyLimits, max_body=settings.max_body_bytes, max_ingest=settings.max_ingest_bytes,
        max_decompressed=settings.max_decompressed_bytes,
    )  # fmt: skip
    api.add_middleware(Observe, metrics=cloud.metrics)
    api.openapi = lambda: _openapi(api)  # type: ignore[method-assign]
    return api


def _openapi(api: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus each route's security and the errors it may answer."""
    if api.openapi_schema is not None:
        return api.openapi_schema
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(title=api.title, version=api.version, description=api.description,
                      routes=api.routes)  # fmt: skip
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(_SECURITY)
    schemas = components.setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template=_REF + "{model}")
    error = {"application/json": {"schema": {"$ref": _REF + "ErrorBody"}}}
    for item in doc.get("paths", {}).values():
        for op in item.values():
            access = op.get("x-required-role")
            responses: dict[str, Any] = op.setdefault("responses", {})
            if access == "device":
                op["security"] = [{"device": []}]
            elif access not in (None, "public"):
                op["security"] = [{"user": []}]
                responses.setdefault("403", {"description": ERROR_CODES["forbidden"].meaning})
            if access not in (None, "public"):
                responses.setdefault("401", {"description": ERROR_CODES["unauthorized"].meaning})
            if "requestBody" in op:
                responses.setdefault("413", {"description": "The body is too large"})
                responses.setdefault("415", {"description": "Unsupported Content-Encoding"})
            for status, response in responses.items():
                if status[0] in "45" and status != "422":
                    response["content"] = error
            if "422" in responses:
                responses["422"] = {"description": ERROR_CODES["invalid_request"].meaning,
                                    "content": error}  # fmt: skip
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    api.openapi_schema = doc
    return doc
