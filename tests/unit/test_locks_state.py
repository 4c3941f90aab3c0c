"""The cart state machine (edge/locks/state.py): examples, and properties over any sequence."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.locks.errors import CommandConflict, CommandError, CommandFailed
from edge.locks.state import (
    CART_STATES,
    FREE_STATES,
    CartMachine,
    Effect,
    RentalDone,
    SensorChange,
    Sensors,
    SetCoil,
    StateChange,
)

pytestmark = pytest.mark.unit

LOCKED = Sensors(released=False, bolt_closed=True, cart_present=True)
OPEN = Sensors(released=True, bolt_closed=False, cart_present=True)
TAKEN = Sensors(released=True, bolt_closed=False, cart_present=False)
EMPTY_LOCKED = Sensors(released=False, bolt_closed=True, cart_present=False)


def _machine(now: float = 1000.0) -> CartMachine:
    return CartMachine(7, fault_after_s=3.0, unlock_hold_s=30.0, now=now)


def _states(effects: list[Effect]) -> list[str]:
    return [e.state for e in effects if isinstance(e, StateChange)]


def test_a_rental_from_unlock_to_return() -> None:
    m = _machine()
    assert _states(m.observe(LOCKED, 1000.0)) == ["locked"]
    assert m.command("unlock", 1001.0) == [SetCoil(7, True, "command")]
    moving = Sensors(released=True, bolt_closed=True, cart_present=True)
    assert m.observe(moving, 1001.1) == []  # the bolt is still moving: still locked
    assert _states(m.observe(OPEN, 1001.2)) == ["unlocked"]
    assert _states(m.observe(TAKEN, 1005.0)) == ["in_use"]
    back = m.observe(OPEN, 1601.0)
    assert [e for e in back if isinstance(e, RentalDone)] == [RentalDone(7, 1001.0, 1005.0, 1601.0)]
    assert SetCoil(7, False, "cart returned") in back
    assert _states(back) == ["returned"]
    assert _states(m.observe(LOCKED, 1601.3)) == ["locked"]
    assert RentalDone(7, 1001.0, 1005.0, 1601.0).duration_s == 600.0
    assert m.state == "locked"
    assert m.previous == "returned"


def test_an_unlock_nobody_takes_is_locked_again_and_is_no_rental() -> None:
    m = _machine()
    m.observe(LOCKED, 1000.0)
    m.command("unlock", 1000.0)
    m.observe(OPEN, 1000.2)
    effects = m.observe(OPEN, 1030.5)
    assert SetCoil(7, False, "not taken in time") in effects
    assert m.commanded == "lock"
    effects = m.observe(Sensors(False, True, True), 1030.7)
    assert _states(effects) == ["locked"]
    assert not [e for e in effects if isinstance(e, RentalDone)]


def test_a_bolt_that_does_not_open_is_a_fault_after_the_timeout_and_recovers() -> None:
    m = _machine()
    m.observe(LOCKED, 1000.0)
    m.command("unlock", 1000.0)
    stuck = Sensors(released=True, bolt_closed=True, cart_present=True)
    assert m.observe(stuck, 1002.9) == []
    assert _states(m.observe(stuck, 1003.0)) == ["fault"]
    assert "bolt not open" in m.detail
    m.command("lock", 1004.0)
    assert _states(m.observe(LOCKED, 1004.1)) == ["locked"]


def test_a_coil_released_without_a_command_is_held_again() -> None:
    m = _machine()
    m.observe(LOCKED, 1000.0)
    effects = m.observe(OPEN, 1000.5)  # a glitch, a reset, someone with a Modbus tool
    assert SetCoil(7, False, "released without a command") in effects
    assert m.state == "locked"  # within fault_after_s: the bolt is expected to close again


def test_an_unlock_the_board_forgot_is_not_repeated() -> None:
    m = _machine()
    m.observe(LOCKED, 1000.0)
    m.command("unlock", 1000.0)
    m.observe(OPEN, 1000.2)
    effects = m.observe(LOCKED, 1000.4)  # the board restarted: coil off, bolt closed
    assert not [e for e in effects if isinstance(e, SetCoil) and e.release]
    assert m.commanded == "lock"
    assert m.state == "locked"


def test_commands_that_cannot_run() -> None:
    m = _machine()
    with pytest.raises(CommandFailed) as down:
        m.command("unlock", 1000.0)  # never read: its board is not known to answer
    assert down.value.code == "board_down"
    m.observe(Sensors(False, True, cart_present=False), 1000.0)
    with pytest.raises(CommandConflict) as empty:
        m.command("unlock", 1000.1)
    assert empty.value.code == "invalid_state"
    assert m.command("lock", 1000.2) == [SetCoil(7, False, "command")]
    m.observe(None, 1000.3)
    assert m.state == "unknown"
    with pytest.raises(CommandFailed):
        m.command("lock", 1000.4)


def test_a_cart_pulled_from_a_locked_bay_is_missing_until_it_is_back() -> None:
    m = _machine()
    m.observe(LOCKED, 1000.0)
    gone = m.observe(EMPTY_LOCKED, 1000.5)  # forced out: the lock still holds
    assert [(e.state, e.previous, e.cart_present) for e in gone if isinstance(e, StateChange)] == [
        ("missing", "locked", False)
    ]
    assert m.state == "missing"
    assert "without an unlock" in m.detail
    assert not [e for e in gone if isinstance(e, SetCoil)]
    with pytest.raises(CommandConflict, match="no cart in its bay"):
        m.command("unlock", 1001.0)
    key = Sensors(released=False, bolt_closed=False, cart_present=False)  # a key turns the bolt
    assert m.observe(key, 1002.0) == [SensorChange(7, "missing", 1002.0, False, False)]
    assert m.observe(key, 1010.0) == []  # still missing (not a fault): nothing new
    back = m.observe(LOCKED, 1011.0)
    assert _states(back) == ["locked"]
    assert not [e for e in back if isinstance(e, RentalDone)]


def test_a_bay_found_empty_at_start_is_missing_not_free() -> None:
    m = _machine()
    assert _states(m.observe(EMPTY_LOCKED, 1000.0)) == ["missing"]
    assert _states(m.observe(None, 1001.0)) == ["unknown"]
    assert _states(m.observe(EMPTY_LOCKED, 1002.0)) == ["missing"]


def test_a_board_that_restarts_during_a_rental_keeps_the_cart_out() -> None:
    m = _machine()
    m.observe(LOCKED, 1000.0)
    m.command("unlock", 1000.0)
    m.observe(OPEN, 1000.2)
    m.observe(TAKEN, 1005.0)
    assert m.state == "in_use"
    assert _states(m.observe(None, 1100.0)) == ["unknown"]  # the board restarts
    after = m.observe(EMPTY_LOCKED, 1101.0)  # coil back to off, bolt closed, the cart still out
    assert _states(after) == ["in_use"]
    assert not [e for e in after if isinstance(e, SetCoil) and e.release]  # not unlocked again
    assert m.commanded == "lock"
    assert m.observe(EMPTY_LOCKED, 1200.0) == []  # no fault, no missing: it is on its rental
    back = m.observe(LOCKED, 1300.0)
    assert [e for e in back if isinstance(e, RentalDone)] == [RentalDone(7, 1000.0, 1005.0, 1300.0)]
    assert _states(back) == ["returned", "locked"]


def test_sensor_changes_without_a_state_change_are_reported() -> None:
    m = _machine()
    m.observe(LOCKED, 1000.0)
    m.command("unlock", 1000.0)
    assert _states(m.observe(OPEN, 1000.2)) == ["unlocked"]  # the state change carries them
    m.observe(TAKEN, 1001.0)
    assert m.state == "in_use"
    pushed = Sensors(released=True, bolt_closed=True, cart_present=False)  # bolt pushed shut
    assert m.observe(pushed, 1001.5) == [SensorChange(7, "in_use", 1001.5, False, True)]
    assert m.observe(pushed, 1001.7) == []


def test_a_repeated_unlock_writes_nothing_more() -> None:
    m = _machine()
    m.observe(LOCKED, 1000.0)
    assert m.command("unlock", 1000.0)
    assert m.command("unlock", 1000.1) == []


# ---------------------------------------------------------------------- properties
@dataclass(frozen=True)
class Observe:
    sensors: Sensors | None


@dataclass(frozen=True)
class Command:
    action: str


@dataclass(frozen=True)
class Tick:
    seconds: float


sensors = st.builds(Sensors, st.booleans(), st.booleans(), st.booleans())
steps = st.lists(
    st.one_of(
        st.builds(Observe, st.one_of(st.none(), sensors)),
        st.builds(Command, st.sampled_from(["lock", "unlock"])),
        st.builds(Tick, st.floats(0.0, 40.0)),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(steps)
def test_no_sequence_releases_a_lock_nobody_commanded(
    program: list[Observe | Command | Tick],
) -> None:
    """Whatever the sensors say and whatever the order: a release only comes from an unlock,
    and a cart that is not in its bay never counts as free."""
    m = _machine()
    now = 1000.0
    coil = False  # the coil as the driver would have written it
    unlocks_accepted = 0
    releases_written = 0
    last_command: str | None = None
    state = m.state
    for step in program:
        if isinstance(step, Tick):
            now += step.seconds
            continue
        if isinstance(step, Command):
            try:
                effects = m.command(step.action, now)  # type: ignore[arg-type]
            except CommandError:
                effects = []
            else:
                last_command = step.action
                if step.action == "unlock" and effects:
                    unlocks_accepted += 1
        else:
            before = m.commanded
            effects = m.observe(step.sensors, now)
            assert not [e for e in effects if isinstance(e, SetCoil) and e.release], (
                "a reading asked for a release"
            )
            if step.sensors is None:
                assert m.state == "unknown"
            elif step.sensors.released and before == "lock":
                assert SetCoil(7, False, "released without a command") in effects
        for effect in effects:
            if isinstance(effect, SetCoil):
                coil = effect.release
                releases_written += effect.release
            elif isinstance(effect, StateChange):
                assert effect.previous == state
                assert effect.state in CART_STATES
                state = effect.state
            elif isinstance(effect, RentalDone):
                assert effect.unlocked_at <= effect.taken_at <= effect.returned_at
            elif isinstance(effect, SensorChange):
                assert effect.state == m.state
                assert not [e for e in effects if isinstance(e, StateChange)]
                assert m.sensors is not None
                assert (effect.cart_present, effect.bolt_closed) == (
                    m.sensors.cart_present, m.sensors.bolt_closed,
                )  # fmt: skip
        assert m.state == state
        if m.sensors is not None and not m.sensors.cart_present:
            assert m.state not in FREE_STATES, "a cart that is not in its bay counts as free"
        assert releases_written <= unlocks_accepted
        if coil or m.commanded == "unlock":
            assert last_command == "unlock", "released while the last word was not an unlock"
