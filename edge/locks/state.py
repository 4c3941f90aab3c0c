"""The per-cart state machine: pure, driven by sensor readings, commands and the clock.

States (``CartState``):

- ``locked``: the lock holds (bolt closed); the bay may be empty.
- ``unlocked``: released on command, the cart still stands in the bay.
- ``in_use``: released and the cart is gone (a rental is running).
- ``returned``: the cart is back; the lock is being closed again (then ``locked``).
- ``fault``: the bolt sensor disagrees with the commanded state for longer than
  ``fault_after_s`` (jammed bolt, stuck sensor, cut wire).
- ``unknown``: the board does not answer.

Safety rule: the machine asks for a released coil (``SetCoil(release=True)``) only from
:meth:`CartMachine.command` with ``"unlock"``. A reading never does: a coil found released
without a command is set to hold again, and an unlock the board forgot (a reset) is not
repeated. ``tests/unit/test_locks_state.py`` checks this over arbitrary sequences.

A rental runs from the unlock command to the cart's return (after it was taken); an unlock that
nobody takes is locked again after ``unlock_hold_s`` and is no rental.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.locks.errors import CommandConflict, CommandFailed

CartState = Literal["locked", "unlocked", "in_use", "returned", "fault", "unknown"]
CART_STATES: tuple[CartState, ...] = (
    "locked", "unlocked", "in_use", "returned", "fault", "unknown",
)  # fmt: skip
Action = Literal["lock", "unlock"]


@dataclass(frozen=True, slots=True)
class Sensors:
    """One cart's points as read from its board (polarity already applied)."""

    released: bool  # the coil reads "release"
    bolt_closed: bool
    cart_present: bool


@dataclass(frozen=True, slots=True)
class SetCoil:
    """Write the cart's coil: release (unlock) or hold (lock)."""

    cart: int
    release: bool
    reason: str


@dataclass(frozen=True, slots=True)
class StateChange:
    cart: int
    state: CartState
    previous: CartState | None
    at: float  # wall clock (time.time())
    detail: str


@dataclass(frozen=True, slots=True)
class RentalDone:
    cart: int
    unlocked_at: float
    taken_at: float
    returned_at: float

    @property
    def duration_s(self) -> float:
        """From the unlock to the return."""
        return self.returned_at - self.unlocked_at


Effect = SetCoil | StateChange | RentalDone


@dataclass(slots=True)
class _Rental:
    unlocked_at: float
    taken_at: float | None = None


class CartMachine:
    """One cart. Not thread-safe: the driver's thread owns it."""

    def __init__(
        self, cart: int, *, fault_after_s: float, unlock_hold_s: float, now: float
    ) -> None:
        self.cart = cart
        self.fault_after_s = fault_after_s
        self.unlock_hold_s = unlock_hold_s
        self.state: CartState = "unknown"
        self.previous: CartState | None = None
        self.changed_at = now
        self.detail = "not read yet"
        self.commanded: Action = "lock"
        self.commanded_at = now
        self.sensors: Sensors | None = None
        self._rental: _Rental | None = None
        self._agree_at: float | None = None  # last reading that agreed with the command

    # ------------------------------------------------------------------ inputs
    def command(self, action: Action, now: float) -> list[Effect]:
        """An operator's command. Raises :class:`CommandError` when the cart cannot do it."""
        if self.state == "unknown":
            raise CommandFailed("board_down", f"cart {self.cart}: its board is not answering")
        if action == "lock":
            self._hold(now)
            return [SetCoil(self.cart, False, "command")]
        if self.commanded == "unlock":
            return []  # already released: nothing to write
        if self.state in ("in_use", "returned", "fault") or (
            self.sensors is not None and not self.sensors.cart_present
        ):
            why = "fault" if self.state == "fault" else "no cart in its bay"
            raise CommandConflict("invalid_state", f"cart {self.cart} cannot be unlocked: {why}")
        self.commanded, self.commanded_at = "unlock", now
        self._rental = _Rental(unlocked_at=now)
        return [SetCoil(self.cart, True, "command")]

    def observe(self, sensors: Sensors | None, now: float) -> list[Effect]:
        """A poll's reading (``None``: the board did not answer)."""
        effects: list[Effect] = []
        self.sensors = sensors
        if sensors is None:
            self._agree_at = None  # once it answers again, the sensors get a fresh grace period
            self._set("unknown", now, "board not answering", effects)
            return effects
        if sensors.released and self.commanded == "lock":
            effects.append(SetCoil(self.cart, False, "released without a command"))
        if self.commanded == "unlock" and not sensors.released:
            self._hold(now)  # the board forgot the unlock (reset): never repeat it by ourselves
        rental = self._rental
        if rental is not None and rental.taken_at is None:
            if not sensors.cart_present and not sensors.bolt_closed:
                rental.taken_at = now
            elif self.commanded == "unlock" and now - self.commanded_at >= self.unlock_hold_s:
                self._hold(now)
                effects.append(SetCoil(self.cart, False, "not taken in time"))
        elif rental is not None and rental.taken_at is not None and sensors.cart_present:
            effects.append(RentalDone(self.cart, rental.unlocked_at, rental.taken_at, now))
            self._rental = None
            if self.commanded == "unlock":
                self._hold(now)
                effects.append(SetCoil(self.cart, False, "cart returned"))
            self._set("returned", now, "cart returned", effects)
        self._derive(sensors, now, effects)
        return effects

    # ------------------------------------------------------------------ internals
    def _hold(self, now: float) -> None:
        self.commanded, self.commanded_at = "lock", now
        if self._rental is not None and self._rental.taken_at is None:
            self._rental = None  # released but never taken: no rental

    def _derive(self, sensors: Sensors, now: float, effects: list[Effect]) -> None:
        want_closed = self.commanded == "lock"
        if sensors.bolt_closed == want_closed:
            self._agree_at = now
            if want_closed:
                self._set("locked", now, "", effects)
            else:
                present = sensors.cart_present
                self._set("unlocked" if present else "in_use", now, "", effects)
            return
        if self._agree_at is None:
            self._agree_at = now
        since = max(self._agree_at, self.commanded_at)
        if now - since >= self.fault_after_s:
            wanted = "closed" if want_closed else "open"
            detail = f"bolt not {wanted} {now - since:.1f} s after the command"
            self._set("fault", now, detail, effects)
        elif self.state in ("unknown", "fault"):
            # In the grace period with no state to keep: say what the sensors show.
            if sensors.bolt_closed:
                self._set("locked", now, "", effects)
            else:
                self._set("unlocked" if sensors.cart_present else "in_use", now, "", effects)
        # else: keep the state while the bolt moves (unlocked → locked, returned → locked, ...)

    def _set(self, state: CartState, now: float, detail: str, effects: list[Effect]) -> None:
        if state == self.state:
            return
        effects.append(StateChange(self.cart, state, self.state, now, detail))
        self.previous, self.state, self.changed_at, self.detail = self.state, state, now, detail
