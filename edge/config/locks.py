"""The cart locks' section (edge/locks): the RS485 bus, its boards and their register maps."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue, model_validator

from edge.config.base import APPLY_KEY, Section

# Every key restarts only the lock driver (it owns the serial port): the camera and the HTTP
# server keep running.
_LOCKS_APPLY: dict[str, JsonValue] = {APPLY_KEY: "restart:locks"}


class LockMapConfig(Section):
    coil_base: int = Field(
        0, ge=0, le=65535, description="Coil address of the board's first lock (0-based).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    lock_sensor_base: int = Field(
        0, ge=0, le=65535,
        description="Discrete-input address of the first lock's bolt sensor (0-based).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    # Sentinels rather than None: TOML has no null, and the config is written back as TOML.
    cart_sensor_base: int = Field(
        -1, ge=-1, le=65535,
        description="Discrete-input address of the first cart-present switch (-1: right after"
        " the lock sensors).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    unlock_coil_on: bool = Field(
        True, description="A coil ON releases its lock (false: ON holds it).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    bolt_closed_on: bool = Field(
        True, description="A lock sensor reads ON while its bolt is closed.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    cart_present_on: bool = Field(
        True, description="A cart-present switch reads ON while a cart stands in its bay.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip


class LockBoardConfig(Section):
    unit: int = Field(
        ..., ge=1, le=247, description="Modbus unit id (slave address) of the board.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    locks: int = Field(
        ..., ge=1, le=64, description="Locks (carts) on the board.", json_schema_extra=_LOCKS_APPLY
    )
    first_cart: int = Field(
        0, ge=0,
        description="Cart number of the board's first lock (0: right after the previous board's).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    map: LockMapConfig = Field(
        default_factory=LockMapConfig, description="Register map (default: see the README)."
    )


class LocksConfig(Section):
    enabled: bool = Field(
        False,
        description="Drive cart lock boards over RS485 (Modbus RTU). Off: no serial port is"
        " opened and nothing of pyserial or pymodbus is loaded.",
        json_schema_extra=_LOCKS_APPLY,
    )
    port: str = Field(
        "/dev/ttyUSB0",
        description="Serial device of the RS485 adapter, or a pyserial URL (socket://, rfc2217://).",
        json_schema_extra=_LOCKS_APPLY,
    )
    baudrate: int = Field(
        19200, ge=1200, le=921_600, description="Bits per second.", json_schema_extra=_LOCKS_APPLY
    )
    parity: Literal["N", "E", "O"] = Field(
        "N", description="Parity: N(one), E(ven), O(dd).", json_schema_extra=_LOCKS_APPLY
    )
    stopbits: Literal[1, 2] = Field(1, description="Stop bits.", json_schema_extra=_LOCKS_APPLY)
    timeout_s: float = Field(
        0.1, ge=0.01, le=5,
        description="Seconds to wait for a board's answer before the request counts as lost.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    retries: int = Field(
        1, ge=0, le=5, description="Times a lost or corrupted request is sent again.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    poll_hz: float = Field(
        4.0, ge=0.2, le=20,
        description="Polls of every board per second. A board that stops answering shows its"
        " carts as unknown within two poll periods (keep (retries + 1) x timeout_s below one"
        " period).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    confirm_timeout_s: float = Field(
        2.0, gt=0, le=30,
        description="Seconds a lock/unlock command waits for the sensors to confirm it; an unlock"
        " not confirmed in time is taken back (the coil is set to hold again).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    fault_after_s: float = Field(
        3.0, gt=0, le=300,
        description="Seconds a bolt sensor may disagree with the commanded state before the cart"
        " is reported as fault.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    unlock_hold_s: float = Field(
        30.0, gt=0, le=3600,
        description="An unlocked cart that nobody takes is locked again after this many seconds.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    boards: list[LockBoardConfig] = Field(
        default_factory=list, description="Lock boards on the bus.", json_schema_extra=_LOCKS_APPLY
    )

    @model_validator(mode="after")
    def _check_boards(self) -> LocksConfig:
        units = [b.unit for b in self.boards]
        if len(set(units)) != len(units):
            raise ValueError(f"two boards share a unit id: {sorted(units)}")
        carts: set[int] = set()
        next_cart = 1
        for board in self.boards:
            first = board.first_cart or next_cart
            numbers = set(range(first, first + board.locks))
            if numbers & carts:
                raise ValueError(f"board {board.unit}: cart numbers overlap another board's")
            carts |= numbers
            next_cart = first + board.locks
        if self.enabled and not self.boards:
            raise ValueError("locks are enabled but no board is configured")
        return self
