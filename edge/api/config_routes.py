"""The config API: read, change (PUT / merge PATCH), history, versions, rollback. Admin only.

Routes stay short: :class:`edge.live_config.ConfigManager` validates, versions, writes and
applies. Errors are the usual ``{"error", "message"}`` bodies; an invalid config is a 422 that
also lists every problem as ``{"path", "reason"}``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from enum import Enum
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from edge.api.errors import documented
from edge.api.guard import Guard
from edge.api.routes import Route, RouteTable
from edge.config import EdgeConfig
from edge.errors import ApiError
from edge.keys import KeyEntry, Role
from edge.live_config import (
    MAX_JSON_DEPTH,
    MAX_VERSION,
    ConfigInvalid,
    ConfigManager,
    FieldProblem,
    json_depth,
    mask,
    plain,
    problems,
)
from edge.service import Edge
from fleet_common.wire.edge import (
    ConfigApplied,
    ConfigDoc,
    ConfigHistory,
    ConfigRollbackRequest,
)

CONFIG_ROUTES = [
    Route("GET", "/api/config", "admin"),
    Route("PUT", "/api/config", "admin"),
    Route("PATCH", "/api/config", "admin"),
    Route("GET", "/api/config/schema", "admin"),
    Route("GET", "/api/config/history", "admin"),
    Route("GET", "/api/config/versions/{version}", "admin"),
    Route("POST", "/api/config/rollback", "admin"),
]

_TAGS: list[str | Enum] = ["config"]
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
_ERRORS = documented("config_unavailable")
_CHANGE_ERRORS = documented(
    "config_unavailable",
    "version_conflict",
    "unsupported_media_type",
    "invalid_config",
    "config_not_saved",
)
_OBJECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
_PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/merge-patch+json": {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}
# Media types a config body may have (PATCH: RFC 7396's own, or plain JSON).
_JSON_TYPES = frozenset({"application/json"})
_PATCH_TYPES = frozenset({"application/json", "application/merge-patch+json"})


def _live(edge: Edge) -> ConfigManager:
    """The config manager, or ``config_unavailable`` while the store is not open."""
    if edge.live is None:
        raise ApiError("config_unavailable", "the config store is not open")
    return edge.live


def _tagged(result: ConfigDoc | ConfigApplied) -> JSONResponse:
    """The answer with its version as the ETag."""
    return JSONResponse(result.model_dump(), headers={"ETag": f'"{result.version}"'})


def _if_match(request: Request) -> int | None:
    value = request.headers.get("if-match")
    if value is None or value.strip() == "*":
        return None
    found = _ETAG.match(value)
    if found is None or len(found.group(1)) > 19:
        raise ApiError("version_conflict", 'If-Match must be "<version>"')
    return int(found.group(1))


def _media_type(request: Request, allowed: frozenset[str]) -> None:
    """``unsupported_media_type`` unless the body is declared as one of ``allowed`` (an empty
    body needs none)."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind in allowed or (not kind and request.headers.get("content-length") in (None, "0")):
        return
    raise ApiError("unsupported_media_type", f"send the body as {' or '.join(sorted(allowed))}")


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except RecursionError as err:  # nested too deeply for the parser itself
        raise ConfigInvalid([FieldProblem("(root)", f"nested deeper than {MAX_JSON_DEPTH} levels")]
                            ) from err  # fmt: skip
    except ValueError as err:  # the parser's message gives the position, never the text
        raise ConfigInvalid([FieldProblem("(root)", f"not JSON: {err}")]) from err
    if json_depth(data) > MAX_JSON_DEPTH:
        raise ConfigInvalid([FieldProblem("(root)", f"nested deeper than {MAX_JSON_DEPTH} levels")])
    return data


def _who(request: Request) -> str:
    entry = request.scope.get("state", {}).get("api_key")
    return f"key {entry.id}" if isinstance(entry, KeyEntry) else "unknown key"


def add_config_routes(api: FastAPI, edge: Edge) -> None:
    """Register the config routes on ``api`` (directly: an included router hides their paths
    from ``api.routes``, which the role-table test reads)."""

    @api.get("/api/config", response_model=ConfigDoc, responses=_ERRORS, tags=_TAGS)
    async def get_config() -> Any:
        """The running config and its version (also the `ETag`); secrets masked as `***`."""
        if edge.live is None:  # no store: the running config, unversioned (version 0)
            return ConfigDoc(version=0, config=mask(plain(edge.config)))
        return _tagged(edge.live.document())

    @api.put(
        "/api/config", response_model=ConfigApplied, responses=_CHANGE_ERRORS,
        openapi_extra=_OBJECT_BODY, tags=_TAGS,
    )  # fmt: skip
    async def put_config(request: Request) -> Any:
        """Replace the whole config. `***` keeps a secret; `If-Match: "<version>"` guards
        against overwriting someone else's change. Applied at once: hot keys in place, only the
        components concerned restart."""
        live = _live(edge)
        _media_type(request, _JSON_TYPES)
        match = _if_match(request)
        body = await _json_body(request)
        return _tagged(await live.put(body, if_match=match, reason=f"PUT by {_who(request)}"))

    @api.patch(
        "/api/config", response_model=ConfigApplied, responses=_CHANGE_ERRORS,
        openapi_extra=_PATCH_BODY, tags=_TAGS,
    )  # fmt: skip
    async def patch_config(request: Request) -> Any:
        """Change some keys with a JSON merge patch (RFC 7396), sent as
        `application/merge-patch+json` or `application/json`. Objects merge key by key; any
        other value replaces. `null` removes the key, which puts it back to its **default**
        (for an optional key such as `camera.password` the default is none: it is cleared).
        `***` keeps a secret as it is."""
        live = _live(edge)
        _media_type(request, _PATCH_TYPES)
        match = _if_match(request)
        body = await _json_body(request)
        return _tagged(await live.patch(body, if_match=match, reason=f"PATCH by {_who(request)}"))

    @api.get("/api/config/schema", tags=_TAGS)
    async def config_schema() -> dict[str, Any]:
        """The config's JSON schema; every key carries `x-apply`: `hot` or `restart:<part>`."""
        return EdgeConfig.model_json_schema()

    @api.get("/api/config/history", response_model=ConfigHistory, responses=_ERRORS, tags=_TAGS)
    async def history(
        limit: int = Query(50, ge=1, le=1000, description="At most this many, newest first."),
    ) -> Any:
        """Config versions, newest first, with where each came from and whether it was good."""
        return ConfigHistory(versions=await _live(edge).history(limit))

    @api.get(
        "/api/config/versions/{version}", response_model=ConfigDoc,
        responses=documented("config_unavailable", "not_found"), tags=_TAGS,
    )  # fmt: skip
    async def version(
        version: int = PathParam(ge=0, le=MAX_VERSION, description="A config version."),
    ) -> Any:
        """One stored version, secrets masked."""
        return _tagged(await _live(edge).version_doc(version))

    @api.post(
        "/api/config/rollback", response_model=ConfigApplied,
        responses={**_CHANGE_ERRORS, **documented("not_found")},
        openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
            "schema": ConfigRollbackRequest.model_json_schema()}}}},
        tags=_TAGS,
    )  # fmt: skip
    async def rollback(request: Request) -> Any:
        """Go back to a version (`{"version": n}`; omitted: the newest good one before the
        running one). Applied like any change, as a new version. Stored versions hold their
        secrets masked: a version made since the edge started gets its own secrets back, an
        older one keeps the running secrets."""
        live = _live(edge)
        _media_type(request, _JSON_TYPES)
        body = await _json_body(request)
        try:
            target = ConfigRollbackRequest.model_validate(body or {}).version
        except ValidationError as err:
            raise ConfigInvalid(problems(err)) from err
        if target is not None and not 0 <= target <= MAX_VERSION:
            raise ConfigInvalid([FieldProblem("version", f"must be 0 to {MAX_VERSION}")])
        where = f"version {target}" if target is not None else "the last good version"
        return _tagged(
            await live.rollback(target, reason=f"rollback to {where} by {_who(request)}")
        )


def http_config_hook(guard: Guard) -> Callable[[EdgeConfig], None]:
    """Applies the hot HTTP keys: the rate limiter, body and stream caps, who reads /metrics."""

    def apply(config: EdgeConfig) -> None:
        guard.limiter.rate = config.http.rate_limit_per_s
        guard.limiter.burst = float(config.http.rate_limit_burst)
        guard.max_body_bytes = config.http.max_body_bytes
        guard.max_streams = config.http.max_streams_per_client
        role: Role | None = "viewer" if config.http.metrics_requires_key else None
        routes = [
            dataclasses.replace(r, role=role) if r.template == "/metrics" else r
            for r in guard.table.routes
        ]
        if routes != guard.table.routes:
            guard.table = RouteTable(routes)

    return apply
