"""The exception tree of the edge. Foreign errors are translated at the boundary.

EdgeError
├── ConfigError          bad configuration file or value (exit code 2 at start-up)
├── SourceError          a camera source could not be opened or read (retried forever)
│   └── SourceURLError   the source URL itself is wrong (scheme, parameters): not retried
├── KeyStoreError        the API key file is unreadable or malformed
├── StoreError           the local SQLite store cannot be opened, read or written
│   └── StoreVersionError  the database was written by a newer edge
└── NoFrameError         no picture is available (yet) or none fresh enough in time
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error the edge raises on purpose."""


class ConfigError(EdgeError):
    """The configuration is invalid; the message names the field and the reason."""


class SourceError(EdgeError):
    """A frame source failed; the reader reconnects with backoff."""


class SourceURLError(SourceError):
    """The source URL cannot work as written (unknown scheme, bad parameter)."""


class KeyStoreError(EdgeError):
    """The API key store cannot be read or written."""


class StoreError(EdgeError):
    """The local store cannot be opened, read or written."""


class StoreVersionError(StoreError):
    """The database file was written by a newer edge (a higher schema version)."""


class NoFrameError(EdgeError):
    """No snapshot satisfies the request (none yet, or none fresh enough within the wait)."""

    def __init__(self, message: str, *, age_ms: float | None) -> None:
        super().__init__(message)
        self.age_ms = age_ms
