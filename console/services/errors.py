"""The console services' exception tree; foreign errors (httpx, OSError, JSON) are translated
at the boundary with ``raise ... from err``.

``ConsoleError`` is the one base a presenter catches to turn a failed call into an ``error``
signal::

    ConsoleError
    ├── EdgeUnreachable       connect/read errors, timeouts, a closed client
    ├── EdgeAuthError         401/403: a missing or wrong API key (.status)
    ├── EdgeApiError          other 4xx/5xx, unreadable answers (.status .code .message .errors)
    └── CredentialStoreError  the credential file cannot be read or written (.path)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ConsoleError(Exception):
    """Base of every error the console services raise on purpose."""


class EdgeUnreachable(ConsoleError):
    """The edge did not answer: connection refused or reset, timeout, DNS, or the client was
    closed (the device was forgotten or its URL/key changed: ask the pool for a new client)."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message


class EdgeAuthError(ConsoleError):
    """401 (no or unknown API key) or 403 (the key's role is too low)."""

    def __init__(self, url: str, status: int, message: str) -> None:
        super().__init__(f"{url}: HTTP {status}: {message}")
        self.url = url
        self.status = status
        self.message = message


class EdgeApiError(ConsoleError):
    """The edge answered with an error (``{"error": code, "message": text, ...}``) or with a body
    the console cannot read (``code == "bad_response"``).

    ``errors`` holds the per-field problems of a 422 ``invalid_config``: ``[{"path", "reason"}]``.
    """

    def __init__(
        self,
        url: str,
        status: int,
        code: str,
        message: str,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{url}: HTTP {status} {code}: {message}")
        self.url = url
        self.status = status
        self.code = code
        self.message = message
        self.errors: list[dict[str, Any]] = errors or []


class CredentialStoreError(ConsoleError):
    """The credential file is unreadable, corrupt, or cannot be written."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
