"""``create_app(edge)``: the edge's HTTP API as one ASGI application.

JSON routes are FastAPI (typed by :mod:`fleet_common.wire.edge`, documented in the served
OpenAPI); picture and metrics routes are raw ASGI in :mod:`edge.api.pictures`, described in the
same document.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from edge.api.asgi import MAX_INT
from edge.api.carts import CART_ROUTES, add_cart_routes
from edge.api.config_routes import CONFIG_ROUTES, add_config_routes, http_config_hook
from edge.api.errors import AUTH_ERRORS, document_errors, install_error_handlers
from edge.api.events import EventRoutes, add_event_routes
from edge.api.events import openapi_operation as events_operation
from edge.api.guard import Guard
from edge.api.pictures import MAX_AGE_MS, MAX_WIDTH, MJPEG_BOUNDARY, PictureRoutes
from edge.api.plates import PLATE_ROUTES, add_plate_routes
from edge.api.ratelimit import RateLimiter
from edge.api.routes import Route, RouteTable
from edge.keys import Role
from edge.service import Edge
from fleet_common.apidocs import docs_page
from fleet_common.version import VERSION
from fleet_common.wire.edge import (
    ApiKeyInfo,
    ApiKeyList,
    ErrorBody,
    Health,
    SnapshotInfo,
    SnapshotList,
)


def route_table(
    edge: Edge, pictures: PictureRoutes, events: EventRoutes | None = None
) -> RouteTable:
    metrics_role: Role | None = "viewer" if edge.config.http.metrics_requires_key else None
    events = events if events is not None else EventRoutes(edge)
    return RouteTable([
        Route("GET", "/api/snapshot", "viewer", pictures.snapshot, "Newest picture (JPEG)"),
        Route("GET", "/api/snapshot/info", "viewer"),
        Route("GET", "/api/snapshots", "viewer"),
        Route("GET", "/api/snapshots/{seq}", "viewer", pictures.snapshot_by_seq,
              "A picture from the history (JPEG)"),
        Route("GET", "/api/stream.mjpeg", "viewer", pictures.mjpeg, "Live MJPEG stream"),
        Route("GET", "/api/health", None),
        Route("GET", "/api/keys", "admin"),
        Route("GET", "/metrics", metrics_role, pictures.metrics, "Prometheus metrics"),
        # Events (edge/api/events.py).
        Route("GET", "/api/events", "viewer", events.stream, "Live events (Server-Sent Events)"),
        Route("GET", "/api/events/recent", "viewer"),
        # Live config (edge/api/config_routes.py).
        *CONFIG_ROUTES,
        # Cart locks (edge/api/carts.py).
        *CART_ROUTES,
        # Plates (edge/api/plates.py).
        *PLATE_ROUTES,
    ])  # fmt: skip


def create_app(edge: Edge) -> Guard:
    pictures = PictureRoutes(edge)
    table = route_table(edge, pictures)
    api = FastAPI(
        title="carwash-edge",
        version=VERSION,
        description="The HTTP API of one bay's edge device. Send `Authorization: Bearer KEY`."
        ' Every error is `{"error": code, "message": text}`; a request body is JSON'
        " (`application/json`) of at most `http.max_body_bytes`. Beyond `http.max_connections`"
        " connections at once, any route answers 503 (`unavailable`).",
        # The API reference is served by the edge itself (fleet_common/apidocs.py): Swagger UI and
        # ReDoc fetch their scripts from a CDN, blank on a Pi without internet.
        docs_url=None,
        redoc_url=None,
        responses={
            401: {"model": ErrorBody, "description": "No or invalid API key"},
            403: {"model": ErrorBody, "description": "The key's role is too low"},
            429: {"model": ErrorBody, "description": "Rate limited; see Retry-After"},
        },
    )

    install_error_handlers(api)

    @api.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(api.openapi()))

    @api.get("/api/snapshot/info", response_model=SnapshotInfo, tags=["pictures"])
    async def snapshot_info() -> SnapshotInfo:
        """The newest picture's metadata, the stream's health and decoder statistics."""
        return edge.info()

    @api.get("/api/snapshots", response_model=SnapshotList, tags=["pictures"])
    async def snapshots(
        limit: int = Query(100, ge=1, le=1000, description="At most this many, newest first."),
    ) -> SnapshotList:
        """Pictures kept in the cache; fetch one with `/api/snapshots/{seq}`."""
        return SnapshotList(snapshots=[edge.meta(s) for s in edge.cache.snapshots()[:limit]])

    @api.get(
        "/api/health",
        response_model=Health,
        tags=["system"],
        responses={503: {"model": Health, "description": "Not ready (with ?ready=true)"}},
    )
    async def health(
        ready: bool = Query(False, description="Answer 503 unless the stream is online."),
    ) -> Any:
        """Liveness (always 200 while the process serves) or readiness (`?ready=true`)."""
        body = edge.health()
        if ready and body.stream_status != "online":
            return JSONResponse(body.model_dump(), status_code=503)
        return body

    @api.get("/api/keys", response_model=ApiKeyList, tags=["admin"])
    async def keys(request: Request) -> ApiKeyList:
        """API keys of this edge (ids, roles, labels; never the keys themselves)."""
        entries = await asyncio.to_thread(edge.keys.list)  # reads the key file
        return ApiKeyList(keys=[
            ApiKeyInfo(id=e.id, role=e.role, label=e.label, created_at=e.created_at)
            for e in entries
        ])  # fmt: skip

    # Live config (edge/api/config_routes.py).
    add_config_routes(api, edge)

    # Events (edge/api/events.py).
    add_event_routes(api, edge)

    # Cart locks (edge/api/carts.py); edge.locks is None while locks are disabled.
    add_cart_routes(api, lambda: edge.locks)

    # Plates (edge/api/plates.py); edge.plates is None while the service is stopped.
    add_plate_routes(api, edge, lambda: edge.plates)

    api.openapi_schema = None
    api.openapi = lambda: _openapi(api, table)  # type: ignore[method-assign]
    limiter = RateLimiter(edge.config.http.rate_limit_per_s, edge.config.http.rate_limit_burst)
    http = edge.config.http
    guard = Guard(
        api, table, edge.keys, limiter, edge.metrics,
        max_body_bytes=http.max_body_bytes, max_streams=http.max_streams_per_client,
    )  # fmt: skip
    guard.stream_enders.append(pictures.end_streams)
    edge.config_hooks.append(http_config_hook(guard))  # live config: hot HTTP keys
    return guard


def _openapi(api: FastAPI, table: RouteTable) -> dict[str, Any]:
    """FastAPI's document, plus the raw routes and each operation's security from the table."""
    if api.openapi_schema is not None:
        return api.openapi_schema
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(
        title=api.title, version=api.version, description=api.description, routes=api.routes
    )
    paths: dict[str, Any] = doc.setdefault("paths", {})
    for route in table.routes:
        if route.raw is not None:
            paths.setdefault(route.template, {})[route.method.lower()] = _raw_operation(route)
    doc.setdefault("components", {}).setdefault("securitySchemes", {})["apiKey"] = {
        "type": "http", "scheme": "bearer",
        "description": "An edge API key (`carwash-edge keys create --role viewer`).",
    }  # fmt: skip
    for route in table.routes:
        operation = paths.get(route.template, {}).get(route.method.lower())
        if operation is not None:
            operation["security"] = [{"apiKey": []}] if route.role else []
            operation["x-required-role"] = route.role
    document_errors(doc)
    api.openapi_schema = doc
    return doc


_PICTURE_HEADERS = {
    "X-Frame-Seq": {"schema": {"type": "integer"}, "description": "Picture sequence number"},
    "X-Frame-Captured-At": {"schema": {"type": "string"}, "description": "RFC 3339 arrival time"},
    "X-Frame-Age-Ms": {"schema": {"type": "integer"}, "description": "Age when sent"},
    "X-Stream-Status": {"schema": {"type": "string"}, "description": "online/degraded/offline"},
    "ETag": {"schema": {"type": "string"}, "description": "Send back as If-None-Match"},
}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
_STREAMS_429 = {
    "description": "Rate limited, or this key holds `http.max_streams_per_client` streams"
    " (events and MJPEG) already (`too_many_streams`)",
    "content": _ERROR,
}


def _param(
    name: str, where: str, description: str, minimum: int | float = 0, maximum: int = MAX_INT
) -> dict[str, Any]:
    kind = "number" if isinstance(minimum, float) else "integer"
    schema: dict[str, Any] = {"type": kind, "minimum": minimum}
    if kind == "integer":
        schema["maximum"] = maximum
    return {
        "name": name, "in": where, "required": where == "path", "description": description,
        "schema": schema,
    }  # fmt: skip


def _raw_operation(route: Route) -> dict[str, Any]:
    width = _param(
        "width", "query", "Scale to this width (made once per picture and width).", 16, MAX_WIDTH
    )
    if route.template == "/api/events":
        operation = events_operation(route.summary)
        operation["responses"].update({**AUTH_ERRORS, "429": _STREAMS_429})
        return operation
    if route.template == "/metrics":
        return {
            "summary": route.summary, "tags": ["system"],
            "responses": {"200": {"description": "Prometheus text format",
                                  "content": {"text/plain": {}}}, **AUTH_ERRORS},
        }  # fmt: skip
    if route.template == "/api/stream.mjpeg":
        return {
            "summary": route.summary, "tags": ["pictures"],
            "parameters": [_param("fps", "query", "Frames per second (capped).", 0.1), width],
            "responses": {"200": {
                "description": "An endless multipart stream of JPEG parts",
                "content": {f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}": {}},
            }, "422": {"description": "Bad query parameter", "content": _ERROR},
               **AUTH_ERRORS, "429": _STREAMS_429},
        }  # fmt: skip
    params = [width]
    if route.template == "/api/snapshot":
        params += [
            _param("max_age_ms", "query",
                   "Wait (bounded) for a picture at most this old; decodes every frame meanwhile.",
                   maximum=MAX_AGE_MS),
            _param("wait_newer_than", "query",
                   "Long-poll: answer once a picture newer than this seq exists (304 on timeout)."),
        ]  # fmt: skip
    else:
        params.append(_param("seq", "path", "Sequence number from /api/snapshots."))
    return {
        "summary": route.summary, "tags": ["pictures"], "parameters": params,
        "responses": {
            "200": {"description": "JPEG", "headers": _PICTURE_HEADERS,
                    "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
            "304": {"description": "Not modified (If-None-Match, or nothing newer in a long-poll)"},
            "404": {"description": "No such picture (any more)", "content": _ERROR},
            "422": {"description": "Bad query parameter", "content": _ERROR},
            "503": {"description": "No picture yet, or none fresh enough in time",
                    "content": _ERROR},
            **AUTH_ERRORS,
        },
    }  # fmt: skip
