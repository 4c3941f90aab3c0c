"""One error shape for every answer: ``{"error": code, "message": text}``, codes from the
registry (fleet_common/wire/errors.py) with their one status each.

One handler per exception family, all here: the cloud's own errors, FastAPI's request
validation (a 422 naming each field and reason, never the input), Starlette's HTTP errors
(404, 405), and anything unexpected (500, logged with its traceback, nothing leaked).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from cloud_sync.errors import RateLimited
from fleet_common.errors import FleetError
from fleet_common.problems import listed, problem_list, short
from fleet_common.wire.errors import ERROR_CODES, status_of

log = logging.getLogger("cloud.api")

_MAX_TEXT: Final = 300
_BY_STATUS: Final = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid_request", 429: "rate_limited", 503: "unavailable",
}  # fmt: skip


def error_response(
    code: str, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    if code not in ERROR_CODES:  # pragma: no cover - a code must be registered first
        log.error("unregistered error code %r", code)
        code = "internal"
    body = {"error": code, "message": short(message), **extra}
    return JSONResponse(body, status_code=status_of(code), headers=headers)


def fleet_error_response(exc: FleetError) -> JSONResponse:
    """The answer to one of our own errors (also used by the raw routes of :mod:`.hot`)."""
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return error_response(exc.code, exc.message, headers, **exc.details)


async def _fleet_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FleetError)  # noqa: S101 - registered for it only
    if status_of(exc.code) >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc.message)
    return fleet_error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    problems = problem_list(exc.errors())
    return error_response(
        "invalid_request", f"invalid request: {listed(problems)}", errors=problems
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for it only
    code = _BY_STATUS.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(code, message, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response("internal", "internal error; the server's log has the details")


def install_error_handlers(api: FastAPI) -> None:
    api.add_exception_handler(FleetError, _fleet_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(HTTPException, _http_error)
    api.add_exception_handler(Exception, _unexpected)
