"""One error shape for every route: ``{"error": code, "message": text}`` (DESIGN.md).

FastAPI's own answers (``{"detail": ...}`` for a bad request, a 422 listing every problem *with
the input that caused it*) are replaced here: a bad request is a 422 whose ``errors`` name each
field and reason, and no error ever carries the request's input back. The served OpenAPI
document says the same (:func:`document_errors`).

Every error the edge raises on purpose (:class:`edge.errors.EdgeError`, a
:class:`fleet_common.errors.FleetError`) becomes a response here, in one handler, with the status
the registry (:mod:`fleet_common.wire.errors`) gives its code; routes raise, and declare the
codes they may raise with :func:`documented`, which writes their OpenAPI responses from the same
registry. So a code has one status wherever it is raised.

Two answers come from below the app, in the same shape: the guard's (401, 403, 404, 405, 413,
415, 429; edge/api/guard.py) and the HTTP protocol's 503 to a connection beyond
``http.max_connections`` (uvicorn's own is plain text; edge/api/http_protocol.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.exceptions import HTTPException

from fleet_common.errors import FleetError
from fleet_common.problems import listed, problem_list, short
from fleet_common.wire.edge import ConfigErrorBody, ConfigFieldError, ErrorBody
from fleet_common.wire.errors import ERROR_CODES, status_of

_REF: Final = "#/components/schemas/"

# Codes of the errors the framework raises itself, by status.
_CODES: Final = {
    401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "rate_limited", 503: "unavailable",
}  # fmt: skip
log = logging.getLogger("edge.api")


class RequestErrorBody(ErrorBody):
    """422 of a request that does not fit the route: each problem with where it is. The input
    itself is never sent back."""

    errors: list[ConfigFieldError] = Field(
        default_factory=list, description="Each problem: `path` (e.g. `query.limit`), `reason`."
    )


def error_response(
    code: str, message: str, headers: Mapping[str, str] | None = None, **fields: Any
) -> JSONResponse:
    """The error body with the status the registry gives ``code``."""
    body = {"error": code, "message": message, **fields}
    return JSONResponse(body, status_code=status_of(code), headers=headers)


def documented(*codes: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that may raise ``codes``: grouped by the status the
    registry gives each, every description naming its codes (a test reads them back)."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(status_of(code), []).append(code)
    return {
        status: {
            "model": ConfigErrorBody if names == ["invalid_config"] else ErrorBody,
            "description": "; ".join(f"`{c}`: {ERROR_CODES[c].meaning}" for c in names),
        }
        for status, names in sorted(by_status.items())
    }


async def _edge_error(request: Request, exc: Exception) -> JSONResponse:
    """Any error raised on purpose: its code, its message, the registry's status."""
    assert isinstance(exc, FleetError)  # noqa: S101 - registered for it only
    if exc.code not in ERROR_CODES:  # a code nobody registered: a bug, not the client's fault
        log.error("unregistered error code %r: %s", exc.code, exc.message)
        return error_response("internal", "internal error (the log has the details)")
    return error_response(exc.code, short(exc.message), **exc.details)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    problems = problem_list(exc.errors())
    return error_response(
        "invalid_request", short(f"invalid request: {listed(problems)}"), errors=problems
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for it only
    if exc.status_code == 400:
        # FastAPI's one 400 here: a JSON body it cannot even decode (not UTF-8; a decodable
        # body that is not JSON is already a 422). A bad body like any other, and 422 is what
        # every route with a body documents (schemathesis found the undocumented 400).
        problem = {"path": "body", "reason": "not JSON text (UTF-8)"}
        body = {"error": "invalid_request", "message": "invalid request: body: not JSON text",
                "errors": [problem]}  # fmt: skip
        return JSONResponse(body, status_code=422)
    code = _CODES.get(exc.status_code, "internal")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(code, short(message), exc.headers)


def install_error_handlers(api: FastAPI) -> None:
    """Every framework error in the documented shape."""
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(HTTPException, _http_error)
    api.add_exception_handler(FleetError, _edge_error)


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF + ref}}}


# Responses every route with a request body may give (the guard enforces both).
BODY_ERRORS: Final = {
    "413": {"description": "The body is larger than `http.max_body_bytes`",
            "content": _json("ErrorBody")},
    "415": {"description": "The body is not JSON (`application/json`)",
            "content": _json("ErrorBody")},
}  # fmt: skip
AUTH_ERRORS: Final = {
    "401": {"description": "No or invalid API key", "content": _json("ErrorBody")},
    "403": {"description": "The key's role is too low", "content": _json("ErrorBody")},
    "429": {"description": "Rate limited; see Retry-After", "content": _json("ErrorBody")},
}


def document_errors(doc: dict[str, Any]) -> None:
    """Make the OpenAPI document tell the errors as they are sent: FastAPI's 422 schema
    (``HTTPValidationError``) becomes :class:`RequestErrorBody`; routes with a body may give
    413 and 415; every route documents 401, 403 and 429."""
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["RequestErrorBody"] = RequestErrorBody.model_json_schema(ref_template=_REF + "{model}")
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template=_REF + "{model}"))
    schemas.setdefault(
        "ConfigFieldError", ConfigFieldError.model_json_schema(ref_template=_REF + "{model}")
    )
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            invalid = responses.get("422")
            if invalid is not None and "HTTPValidationError" in str(invalid):
                invalid["content"] = _json("RequestErrorBody")
            if "requestBody" in operation:
                for status, response in BODY_ERRORS.items():
                    responses.setdefault(status, response)
            for status, response in AUTH_ERRORS.items():
                responses.setdefault(status, response)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
