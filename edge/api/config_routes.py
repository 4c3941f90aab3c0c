"""The config API: read, change (PUT / merge PATCH), history, versions, rollback. Admin only.

Routes stay short: :class:`edge.live_config.ConfigManager` validates, versions, writes and
applies. Errors are the usual ``{"error", "message"}`` bodies; an invalid config is a 422 that
also lists every problem as ``{"path", "reason"}``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from edge.api.guard import Guard
from edge.api.routes import Route, RouteTable
from edge.config import EdgeConfig
from edge.keys import KeyEntry, Role
from edge.live_config import (
    ConfigConflict,
    ConfigInvalid,
    ConfigManager,
    ConfigNotFound,
    ConfigNotSaved,
    FieldProblem,
    mask,
    plain,
    problems,
)
from edge.service import Edge
from edge.wire import (
    ConfigApplied,
    ConfigDoc,
    ConfigErrorBody,
    ConfigFieldError,
    ConfigHistory,
    ConfigRollbackRequest,
    ErrorBody,
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
_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "The config store is not open (yet)"},
}
_CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    412: {"model": ErrorBody, "description": "If-Match names an older version"},
    422: {"model": ConfigErrorBody, "description": "Invalid; nothing was changed"},
    500: {"model": ErrorBody, "description": "The config file could not be written"},
}
_OBJECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _invalid(problems: list[FieldProblem], message: str) -> JSONResponse:
    body = ConfigErrorBody(
        error="invalid_config",
        message=message,
        errors=[ConfigFieldError(path=p.path, reason=p.reason) for p in problems],
    )
    return JSONResponse(body.model_dump(), status_code=422)


async def _answer(edge: Edge, call: Callable[[ConfigManager], Awaitable[Any]]) -> Any:
    """Run ``call`` with the config manager, turning its errors into responses."""
    live = edge.live
    if live is None:
        return _error(503, "config_unavailable", "the config store is not open")
    try:
        result = await call(live)
    except ConfigInvalid as err:
        return _invalid(err.errors, f"invalid configuration: {err}")
    except ConfigConflict as err:
        return _error(412, "version_conflict", str(err))
    except ConfigNotFound as err:
        return _error(404, "not_found", str(err))
    except ConfigNotSaved as err:
        return _error(500, "config_not_saved", str(err))
    if isinstance(result, ConfigDoc | ConfigApplied):
        return JSONResponse(result.model_dump(), headers={"ETag": f'"{result.version}"'})
    return result


def _if_match(request: Request) -> int | JSONResponse | None:
    value = request.headers.get("if-match")
    if value is None or value.strip() == "*":
        return None
    found = _ETAG.match(value)
    if found is None:
        return _error(412, "version_conflict", f'If-Match must be "<version>", got {value!r}')
    return int(found.group(1))


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError as err:
        raise ConfigInvalid([FieldProblem("(root)", f"not JSON: {err}")]) from err


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
        return await _answer(edge, lambda live: _now(live.document()))

    @api.put(
        "/api/config", response_model=ConfigApplied, responses=_CHANGE_ERRORS,
        openapi_extra=_OBJECT_BODY, tags=_TAGS,
    )  # fmt: skip
    async def put_config(request: Request) -> Any:
        """Replace the whole config. `***` keeps a secret; `If-Match: "<version>"` guards
        against overwriting someone else's change. Applied at once: hot keys in place, only the
        components concerned restart."""
        match = _if_match(request)
        if isinstance(match, JSONResponse):
            return match

        async def call(live: ConfigManager) -> ConfigApplied:
            body = await _json_body(request)
            return await live.put(body, if_match=match, reason=f"PUT by {_who(request)}")

        return await _answer(edge, call)

    @api.patch(
        "/api/config", response_model=ConfigApplied, responses=_CHANGE_ERRORS,
        openapi_extra=_OBJECT_BODY, tags=_TAGS,
    )  # fmt: skip
    async def patch_config(request: Request) -> Any:
        """Change some keys with a JSON merge patch (RFC 7396: `null` resets a key)."""
        match = _if_match(request)
        if isinstance(match, JSONResponse):
            return match

        async def call(live: ConfigManager) -> ConfigApplied:
            body = await _json_body(request)
            return await live.patch(body, if_match=match, reason=f"PATCH by {_who(request)}")

        return await _answer(edge, call)

    @api.get("/api/config/schema", tags=_TAGS)
    async def config_schema() -> dict[str, Any]:
        """The config's JSON schema; every key carries `x-apply`: `hot` or `restart:<part>`."""
        return EdgeConfig.model_json_schema()

    @api.get("/api/config/history", response_model=ConfigHistory, responses=_ERRORS, tags=_TAGS)
    async def history(
        limit: int = Query(50, ge=1, le=1000, description="At most this many, newest first."),
    ) -> Any:
        """Config versions, newest first, with where each came from and whether it was good."""

        async def call(live: ConfigManager) -> ConfigHistory:
            return ConfigHistory(versions=await live.history(limit))

        return await _answer(edge, call)

    @api.get(
        "/api/config/versions/{version}", response_model=ConfigDoc,
        responses={**_ERRORS, 404: {"model": ErrorBody, "description": "No such version"}},
        tags=_TAGS,
    )  # fmt: skip
    async def version(version: int) -> Any:
        """One stored version, secrets masked."""
        return await _answer(edge, lambda live: live.version_doc(version))

    @api.post(
        "/api/config/rollback", response_model=ConfigApplied,
        responses={**_CHANGE_ERRORS, 404: {"model": ErrorBody, "description": "No such version"}},
        openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
            "schema": ConfigRollbackRequest.model_json_schema()}}}},
        tags=_TAGS,
    )  # fmt: skip
    async def rollback(request: Request) -> Any:
        """Go back to a version (`{"version": n}`; omitted: the newest good one before the
        running one). Applied like any change, as a new version."""

        async def call(live: ConfigManager) -> ConfigApplied:
            body = await _json_body(request)
            try:
                target = ConfigRollbackRequest.model_validate(body or {}).version
            except ValidationError as err:
                raise ConfigInvalid(problems(err)) from err
            where = f"version {target}" if target is not None else "the last good version"
            return await live.rollback(target, reason=f"rollback to {where} by {_who(request)}")

        return await _answer(edge, call)


async def _now(doc: ConfigDoc) -> ConfigDoc:
    return doc


def http_config_hook(guard: Guard) -> Callable[[EdgeConfig], None]:
    """Applies the hot HTTP keys: the rate limiter and who may read /metrics."""

    def apply(config: EdgeConfig) -> None:
        guard.limiter.rate = config.http.rate_limit_per_s
        guard.limiter.burst = float(config.http.rate_limit_burst)
        role: Role | None = "viewer" if config.http.metrics_requires_key else None
        routes = [
            dataclasses.replace(r, role=role) if r.template == "/metrics" else r
            for r in guard.table.routes
        ]
        if routes != guard.table.routes:
            guard.table = RouteTable(routes)

    return apply
