"""The root of every program's exception tree, and how an error becomes an HTTP answer.

Each program derives its own tree from :class:`FleetError` (``edge.errors.EdgeError``,
``cloud_sync.errors.CloudError``). An error that reaches an HTTP client carries a stable
``code`` from the registry in :mod:`fleet_common.wire.errors` and the status that code always
has; each program's app maps every such error to a response in one exception handler, so a code
means the same status wherever it is raised.

Standard library only: imported by the light wire modules and by every program.
"""

from __future__ import annotations

from typing import Any, ClassVar


class FleetError(Exception):
    """Base of every error raised on purpose by the edge, the console or the cloud.

    ``code`` names the error for machines (it is the ``error`` field of the JSON body);
    subclasses set a default and an instance may narrow it (``SomeError("...", code="x")``).
    ``details`` are extra fields for the error body: never the request's input.
    """

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]  # an instance may narrow its class's code
        self.details = details

    def __str__(self) -> str:
        return self.message
