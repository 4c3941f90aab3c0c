"""The error body every service answers with, and the registry of its codes.

Every error code has exactly one HTTP status, wherever it is raised; a test checks that each
code a route can raise appears in that route's OpenAPI responses with that status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import Field

from fleet_common.wire.base import ResponseModel


class ErrorBody(ResponseModel):
    """Every error response: a stable machine code and a sentence for people.

    Extra fields (``stream_status``, ``age_ms``, ``field_errors``...) may follow on some codes;
    they never echo the request's input."""

    error: str = Field(description="Machine-readable code from the registry, e.g. `unauthorized`.")
    message: str = Field(description="What went wrong, for people.")


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    status: int
    meaning: str


def _codes(*entries: tuple[str, int, str]) -> dict[str, ErrorCode]:
    table: dict[str, ErrorCode] = {}
    for code, status, meaning in entries:
        if code in table:
            raise ValueError(f"error code {code!r} registered twice")
        table[code] = ErrorCode(code, status, meaning)
    return table


# The registry. Add a code here before raising it; its status never changes once published.
ERROR_CODES: Final[dict[str, ErrorCode]] = _codes(
    # any service
    ("bad_request", 400, "The request is malformed (not JSON, wrong type)."),
    ("unauthorized", 401, "No credentials, or credentials that are not valid."),
    ("forbidden", 403, "Valid credentials without the role this needs."),
    ("not_found", 404, "No such resource."),
    ("method_not_allowed", 405, "The route does not take this method."),
    ("conflict", 409, "The resource changed; re-read and try again."),
    ("version_conflict", 412, "If-Match names an older version."),
    ("payload_too_large", 413, "The body is larger than the route accepts."),
    ("unsupported_media_type", 415, "The body's Content-Type is not one the route takes."),
    ("invalid_request", 422, "The body or parameters fail validation; nothing was changed."),
    ("rate_limited", 429, "Too many requests; Retry-After says when to try again."),
    ("too_many_streams", 429, "Too many open streams for this client."),
    ("internal", 500, "A fault on the server's side; the log has the details."),
    ("unavailable", 503, "A component this needs is not running (yet)."),
    # edge: pictures
    ("no_frame", 503, "No picture yet."),
    ("stale", 503, "No picture fresh enough within the wait (`age_ms` says how old)."),
    # edge: config and store
    ("invalid_config", 422, "The config fails validation; nothing was changed."),
    ("config_not_saved", 500, "The config file could not be written; nothing was applied."),
    ("config_unavailable", 503, "The config manager is not running (yet)."),
    ("no_store", 503, "The local store is not open (yet)."),
    # edge: plates
    ("bad_time", 422, "A time parameter is neither RFC 3339 nor Unix seconds."),
    ("plates_disabled", 503, "Plate reading is off in this edge's config."),
    ("recognizer_failed", 502, "The plate recogniser answered with an error."),
    ("recognizer_unavailable", 503, "No plate recogniser can read now (loading, quota, off)."),
    ("timeout", 504, "The recogniser did not answer in time."),
    # edge: cart locks
    ("unknown_cart", 404, "No such cart."),
    ("invalid_state", 409, "The cart cannot do that from its current state."),
    ("request_id_reused", 409, "The request id was used for another command."),
    ("crc_error", 502, "The lock board's answers were corrupted."),
    ("board_down", 503, "The lock board does not answer."),
    ("bus_error", 503, "The RS485 bus cannot be used (port missing or failing)."),
    ("locks_disabled", 503, "This edge has no lock boards configured."),
    ("board_timeout", 504, "The lock board did not answer in time."),
    ("not_confirmed", 504, "The lock did not confirm the command in time."),
    # cloud
    ("token_invalid", 401, "The enrolment token is unknown, used or expired."),
    ("device_revoked", 401, "This device's key was revoked."),
    ("refresh_invalid", 401, "The refresh token is unknown, used, revoked or expired."),
    ("bad_cursor", 422, "The paging cursor is not one this server handed out."),
    ("unsupported_encoding", 415, "The body's Content-Encoding is neither gzip nor identity."),
    ("no_config", 404, "No config is assigned to this device: keep the local one."),
)


def status_of(code: str) -> int:
    """The HTTP status of ``code``; KeyError for a code nobody registered."""
    return ERROR_CODES[code].status
