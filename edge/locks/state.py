"""The per-cart state machine: pure, driven by sensor readings, commands and the clock.

States (``CartState``):

- ``locked``: the lock holds (bolt closed) and the cart stands in its bay: the one *free* state.
- ``unlocked``: released on command, the cart still stands in the bay.
- ``in_use``: the cart is out on a rental (released on command and gone). It stays ``in_use``
  while it is out even if the lock closes meanwhile (a board that restarted forgot the unlock).
- ``missing``: the cart is gone from a bay nobody unlocked (forced out, a mechanical key, or
  the bay was empty when the edge started); the service raises a ``cart_missing`` alert, cleared
  when the cart is back.
- ``returned``: the cart is back; the lock is being closed again (then ``locked``).
- ``fault``: the bolt sensor disagrees with the commanded state for longer than
  ``fault_after_s`` (jammed bolt, stuck sensor, cut wire).
- ``unknown``: the board does not answer.

A reading without the cart never leaves the cart ``locked`` (free): it is ``in_use``,
``missing`` or ``fault``. A reading whose sensors (cart present, bolt closed) differ from the
one before without a change of state gives a :class:`SensorChange`.

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

CartState = Literal["locked", "unlocked", "in_use", "missing", "returned", "fault", "unknown"]
CART_STATES: tuple[CartState, ...] = (
    "locked", "unlocked", "in_use", "missing", "returned", "fault", "unknown",
)  # fmt: skip
FREE_STATES: frozenset[CartState] = frozenset({"locked"})  # a cart that can be rented now
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
    cart_present: bool | None = None  # the reading that made the change (None: no answer)
    bolt_closed: bool | None = None


@dataclass(frozen=True, slots=True)
class SensorChange:
    """The cart-present or bolt sensor changed while the state stayed the same."""

    cart: int
    state: CartState
    at: float  # wall clock
    cart_present: bool
    bolt_closed: bool


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


Effect = SetCoil | StateChange | SensorChange | RentalDone


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
        before, self.sensors = self.sensors, sensors
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
            if not sensors.cart_present:  # unlocked on command, then gone: taken
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
        seen = (sensors.cart_present, sensors.bolt_closed)
        if (
            before is not None
            and (before.cart_present, before.bolt_closed) != seen
            and not any(isinstance(e, StateChange) for e in effects)
        ):
            effects.append(SensorChange(self.cart, self.state, now, *seen))
        return effects

    # ------------------------------------------------------------------ internals
    def _hold(self, now: float) -> None:
        self.commanded, self.commanded_at = "lock", now
        if self._rental is not None and self._rental.taken_at is None:
            self._rental = None  # released but never taken: no rental

    def _derive(self, sensors: Sensors, now: float, effects: list[Effect]) -> None:
        want_closed = self.commanded == "lock"
        agree = sensors.bolt_closed == want_closed
        if agree or self._agree_at is None:
            self._agree_at = now
        out = self._rental is not None and self._rental.taken_at is not None
        if not sensors.cart_present and not out and want_closed:
            # Gone from a bay nobody unlocked: whatever the bolt says, the cart is not free.
            self._set("missing", now, "cart gone from its bay without an unlock", effects)
            return
        since = max(self._agree_at, self.commanded_at)
        if not agree and now - since >= self.fault_after_s:
            wanted = "closed" if want_closed else "open"
            detail = f"bolt not {wanted} {now - since:.1f} s after the command"
            self._set("fault", now, detail, effects)
        elif not sensors.cart_present:
            # Out on a rental: released and gone, or the lock closed behind it (a board that
            # restarted forgot the unlock). Never locked-and-free while the cart is away.
            self._set("in_use", now, "", effects)
        elif agree:
            self._set("locked" if want_closed else "unlocked", now, "", effects)
        elif self.state in ("unknown", "fault", "missing", "in_use"):
            # In the grace period with no state to keep: say what the sensors show.
            self._set("locked" if sensors.bolt_closed else "unlocked", now, "", effects)
        # else: keep the state while the bolt moves (unlocked → locked, returned → locked, ...)

    def _set(self, state: CartState, now: float, detail: str, effects: list[Effect]) -> None:
        if state == self.state:
            return
        s = self.sensors
        present, closed = (s.cart_present, s.bolt_closed) if s else (None, None)
        effects.append(StateChange(self.cart, state, self.state, now, detail, present, closed))
        self.previous, self.state, self.changed_at, self.detail = self.state, state, now, detail
