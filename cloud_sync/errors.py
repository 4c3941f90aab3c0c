"""The exception tree of the cloud. Foreign errors are translated at the boundary.

CloudError (fleet_common.errors.FleetError)
├── UsageError          a command line or setting that cannot work (exit code 2)
├── DatabaseError       the database cannot be reached, read or written (exit code 1, HTTP 503)
│   └── SchemaError     not initialised, behind, or written by a newer cloud (run `init`)
├── NotFound            no such organisation, region, site, device, user (HTTP 404)
├── Conflict            the thing exists already, or changed meanwhile (HTTP 409)
├── Invalid             a value that fails the cloud's own rules (HTTP 422)
├── Unauthorized        no or wrong credentials (HTTP 401; ``token_invalid``, ``device_revoked``,
│                       ``refresh_invalid`` narrow it)
├── Forbidden           valid credentials without the role or the scope (HTTP 403)
├── TooLarge            a body, a decompressed body or a batch beyond its cap (HTTP 413)
├── UnsupportedMedia    a body that is not JSON, or an encoding other than gzip (HTTP 415)
└── RateLimited         too many requests; ``retry_after_s`` says for how long (HTTP 429)

Every error that reaches an HTTP client carries a code from :mod:`fleet_common.wire.errors`
and that code's status (``cloud_sync/api/errors.py`` maps them in one handler).
"""

from __future__ import annotations

import math
from typing import ClassVar

from fleet_common.errors import FleetError


class CloudError(FleetError):
    """Base of every error the cloud raises on purpose."""


class UsageError(CloudError):
    code: ClassVar[str] = "bad_request"
    http_status: ClassVar[int] = 400


class DatabaseError(CloudError):
    code: ClassVar[str] = "unavailable"
    http_status: ClassVar[int] = 503


class SchemaError(DatabaseError):
    """The database's schema is not the one this version of the cloud serves."""


class NotFound(CloudError):
    code: ClassVar[str] = "not_found"
    http_status: ClassVar[int] = 404


class Conflict(CloudError):
    code: ClassVar[str] = "conflict"
    http_status: ClassVar[int] = 409


class Invalid(CloudError):
    code: ClassVar[str] = "invalid_request"
    http_status: ClassVar[int] = 422


class Unauthorized(CloudError):
    code: ClassVar[str] = "unauthorized"
    http_status: ClassVar[int] = 401


class Forbidden(CloudError):
    code: ClassVar[str] = "forbidden"
    http_status: ClassVar[int] = 403


class TooLarge(CloudError):
    code: ClassVar[str] = "payload_too_large"
    http_status: ClassVar[int] = 413


class UnsupportedMedia(CloudError):
    code: ClassVar[str] = "unsupported_media_type"
    http_status: ClassVar[int] = 415


class RateLimited(CloudError):
    code: ClassVar[str] = "rate_limited"
    http_status: ClassVar[int] = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, math.ceil(retry_after_s))
