"""The exception tree of the edge. Foreign errors are translated at the boundary.

Every class derives from :class:`fleet_common.errors.FleetError`: a stable ``code`` (the
``error`` of the JSON body when it reaches an HTTP client) whose status is the one the registry
in :mod:`fleet_common.wire.errors` gives it. The edge's app maps any of them to a response in one
exception handler (:mod:`edge.api.errors`); routes raise, they never build error responses.

EdgeError
├── ApiError             a route's refusal with a registered code (not_found, no_store...)
├── ConfigError          bad configuration file or value (exit code 2 at start-up)
│   ├── ConfigInvalid      a proposed config fails validation (edge.live_config)
│   ├── ConfigConflict     If-Match names an older version
│   ├── ConfigNotFound     no such version
│   └── ConfigNotSaved     the config file could not be written
├── SourceError          a camera source could not be opened or read (retried forever)
│   └── SourceURLError   the source URL itself is wrong (scheme, parameters): not retried
├── KeyStoreError        the API key file is unreadable or malformed
├── StoreError           the local SQLite store cannot be opened, read or written
│   └── StoreVersionError  the database was written by a newer edge
├── NoFrameError         no picture is available (yet) or none fresh enough in time
├── LockError            the cart-lock driver (edge.locks.errors)
│   ├── BusError           one bus transaction failed
│   └── CommandError       a cart command was refused or failed (UnknownCart, CommandConflict,
│                          CommandFailed)
├── PlatesError          the handshake could not be answered (edge.plates.service)
├── RecognizerError      a recogniser could not read a picture (edge.plates.types)
│   └── RecognizerUnavailable  it refuses to be called now (quota, breaker, loading)
├── MembersError         a members file that cannot be used (edge.plates.members)
└── SyncError            the cloud could not be reached or refused (edge.sync)
"""

from __future__ import annotations

from typing import ClassVar

from fleet_common.errors import FleetError


class EdgeError(FleetError):
    """Base of every error the edge raises on purpose."""


class ApiError(EdgeError):
    """A route refuses a request: ``ApiError("not_found", "no stored read 12")``. The status
    comes from the code's entry in the registry."""

    def __init__(self, code: str, message: str, **details: object) -> None:
        super().__init__(message, code=code, **details)


class ConfigError(EdgeError):
    """The configuration is invalid; the message names the field and the reason."""

    code: ClassVar[str] = "invalid_config"
    http_status: ClassVar[int] = 422


class SourceError(EdgeError):
    """A frame source failed; the reader reconnects with backoff."""


class SourceURLError(SourceError):
    """The source URL cannot work as written (unknown scheme, bad parameter)."""


class KeyStoreError(EdgeError):
    """The API key store cannot be read or written."""


class StoreError(EdgeError):
    """The local store cannot be opened, read or written."""

    code: ClassVar[str] = "no_store"
    http_status: ClassVar[int] = 503


class StoreVersionError(StoreError):
    """The database file was written by a newer edge (a higher schema version)."""


class NoFrameError(EdgeError):
    """No snapshot satisfies the request (none yet, or none fresh enough within the wait)."""

    code: ClassVar[str] = "no_frame"
    http_status: ClassVar[int] = 503

    def __init__(self, message: str, *, age_ms: float | None) -> None:
        super().__init__(message)
        self.age_ms = age_ms
