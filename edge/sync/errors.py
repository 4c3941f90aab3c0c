"""The sync client's errors: every failure of a call to the cloud is one of these.

SyncError (edge.errors.EdgeError)
├── NotEnrolled        no ``cloud.json`` in the data folder, or an unreadable one
├── EnrollRefused      the cloud refused the enrolment token (unknown, used, expired)
└── CloudCallFailed    a call failed; ``reason`` is a short label for metrics and the state
    ├── CloudUnavailable   not reachable, timed out, or a 5xx: retried with backoff
    ├── RateLimited        429: wait ``retry_after_s``
    ├── Unauthorized       401/403: the device key is revoked or wrong (retried slowly)
    └── Refused            the cloud refused the request as it is (400, 413, 415, 422)

httpx errors are translated at the boundary (:mod:`edge.sync.client`).
"""

from __future__ import annotations

from edge.errors import EdgeError


class SyncError(EdgeError):
    """Base of every error of the sync client."""


class NotEnrolled(SyncError):
    """The edge has no cloud credentials (run ``carwash-edge enroll``)."""


class EnrollRefused(SyncError):
    """The cloud refused the enrolment token."""


class CloudCallFailed(SyncError):
    """A call to the cloud failed. ``reason`` labels it (``unreachable``, ``timeout``,
    ``http_503``...); ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, *, reason: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class CloudUnavailable(CloudCallFailed):
    """Down, unreachable, too slow, or answering 5xx: try again later."""


class RateLimited(CloudCallFailed):
    """429: the cloud asks to wait ``retry_after_s`` seconds."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message, reason="rate_limited", status=429)
        self.retry_after_s = retry_after_s


class Unauthorized(CloudCallFailed):
    """The device key was refused (revoked, rotated elsewhere, or another cloud)."""


class Refused(CloudCallFailed):
    """The cloud refused this request as it is (too large, invalid): sending it again as it
    is would fail again."""
