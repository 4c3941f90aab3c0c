"""The exception tree of the lock driver (a branch of :class:`edge.errors.EdgeError`).

LockError
├── BusError             one bus transaction failed; ``kind`` says how (counted in metrics)
└── CommandError         a cart command was refused or failed; ``code`` is the API error code
    ├── UnknownCart      no such cart in the configuration (404)
    ├── CommandConflict  the cart cannot do that now, or a request id was reused (409)
    └── CommandFailed    the bus or the lock failed: board_timeout, crc_error, not_confirmed,
                         board_down, bus_error (503/504)
"""

from __future__ import annotations

from typing import Literal

from edge.errors import EdgeError

# How a bus transaction can fail. "mismatch" is an answer that does not belong to the request
# (a late answer to an earlier one): it is discarded and the request is tried again.
BusErrorKind = Literal[
    "timeout", "crc_error", "garbage", "mismatch", "exception_response", "bus_error"
]
BUS_ERROR_KINDS: tuple[BusErrorKind, ...] = (
    "timeout", "crc_error", "garbage", "mismatch", "exception_response", "bus_error",
)  # fmt: skip

CommandErrorCode = Literal[
    "unknown_cart",
    "invalid_state",
    "request_id_reused",
    "board_timeout",
    "crc_error",
    "not_confirmed",
    "board_down",
    "bus_error",
]


class LockError(EdgeError):
    """Base of the lock driver's errors."""


class BusError(LockError):
    """A Modbus transaction failed after its retries."""

    def __init__(self, kind: BusErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: BusErrorKind = kind

    @property
    def command_code(self) -> CommandErrorCode:
        """The API error code a command that hit this error answers with."""
        if self.kind == "crc_error":
            return "crc_error"
        if self.kind == "bus_error":
            return "bus_error"
        return "board_timeout"  # no (usable) answer in time: timeout, garbage, late answers


class CommandError(LockError):
    """A cart command was refused or did not succeed: ``code`` is its API error code (whose
    status the registry gives)."""

    def __init__(self, code: CommandErrorCode, message: str) -> None:
        super().__init__(message, code=code)


class UnknownCart(CommandError):
    """No such cart in the configuration (``unknown_cart``)."""


class CommandConflict(CommandError):
    """The cart cannot do that now, or a request id was reused."""


class CommandFailed(CommandError):
    """The bus or the lock failed."""
