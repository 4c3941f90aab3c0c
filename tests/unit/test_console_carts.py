"""The carts page's rules without a window: when Unlock and Lock make sense, the texts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from console.models.cart_tiles import (
    OPERATOR_KEY_NEEDED,
    CartSection,
    CartSummary,
    CartTile,
    Command,
    can_lock,
    can_unlock,
    cart_summary,
    command_error_text,
    done_text,
    sensors_text,
    since_text,
    summary_kind,
)
from console.services.edge_client import cart_info, cart_list
from fleet_common.wire.edge import CartInfo

pytestmark = pytest.mark.unit


def info(state: str = "locked", **fields: Any) -> CartInfo:
    data: dict[str, Any] = {
        "id": 1, "board": 1, "lock": 1, "state": state, "previous": None,
        "changed_at": "2026-11-24T15:00:00.000Z", "detail": "", "cart_present": True,
        "bolt_closed": state == "locked",
    }  # fmt: skip
    return CartInfo.model_validate({**data, **fields})


def section(**fields: Any) -> CartSection:
    return CartSection("dev", "bay 1", enabled=True, **fields)


@pytest.mark.parametrize(
    ("state", "unlock", "lock"),
    [
        ("locked", True, False),
        ("unlocked", False, True),
        ("in_use", False, True),
        ("returned", False, False),
        ("fault", False, True),
        ("unknown", False, False),
    ],
)
def test_buttons_follow_the_state(state: str, unlock: bool, lock: bool) -> None:
    tile = CartTile(info(state))
    assert (can_unlock(section(), tile), can_lock(section(), tile)) == (unlock, lock)


def test_nothing_can_be_commanded_while_it_would_not_work() -> None:
    locked = CartTile(info("locked"))
    assert can_unlock(section(), locked)
    # An empty bay (a sensor says so) cannot be unlocked.
    assert not can_unlock(section(), CartTile(info("locked", cart_present=False)))
    # A command still running, a board down, a viewer key, an unreachable edge: no buttons.
    running = CartTile(info("locked"), Command("unlock", "r1"))
    assert not can_unlock(section(), running)
    assert not can_unlock(section(boards_down=[1]), locked)
    assert not can_unlock(section(read_only="operator key needed"), locked)
    assert not can_unlock(section(reachable=False), locked)
    assert not can_lock(section(problem="no key"), CartTile(info("unlocked")))
    # A finished command does not block the next one.
    done = CartTile(info("unlocked"), Command("unlock", "r1", "done"))
    assert can_lock(section(), done)


def test_error_texts_say_what_happened() -> None:
    assert "operator key" in command_error_text("unlock", OPERATOR_KEY_NEEDED)
    assert "Unlocking" in command_error_text("unlock", OPERATOR_KEY_NEEDED)
    text = command_error_text("unlock", "not_confirmed", "cart 2: bolt still closed")
    assert text.startswith("The bolt sensor did not show the lock open")
    assert "taken back" in text
    assert text.endswith("(cart 2: bolt still closed)")
    assert "closed in time" in command_error_text("lock", "not_confirmed")
    assert "not answering" in command_error_text("unlock", "board_down")
    assert command_error_text("lock", "something_new", "why") == "The command failed. (why)"


def test_sensor_and_time_texts() -> None:
    assert sensors_text(info("locked")) == "cart present · bolt closed"
    assert sensors_text(info("in_use", cart_present=False)) == "bay empty · bolt open"
    unknown = info("unknown", cart_present=None, bolt_closed=None)
    assert sensors_text(unknown) == "sensors unknown"
    now = datetime.now().astimezone()
    stamp = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert since_text(stamp, now) == f"since {now:%H:%M:%S}"
    earlier = now - timedelta(days=2)
    assert since_text(earlier.isoformat(), now) == f"since {earlier:%d %b %H:%M}"
    assert since_text("not a time") == ""
    at = datetime(2026, 11, 24, 15, 4, 5)
    assert done_text("unlock", "unlocked", at) == "Unlock confirmed: unlocked at 15:04:05"
    assert done_text("lock", "locked", at) == "Lock confirmed: locked at 15:04:05"


# ---------------------------------------------------------------------- the wall tile's summary
def test_cart_summary_counts_free_out_fault_and_unknown() -> None:
    carts = {
        n: CartTile(info(state, id=n, board=1 if n <= 6 else 2))
        for n, state in enumerate(
            ["locked", "locked", "unlocked", "in_use", "returned", "fault", "locked"], start=1
        )
    }
    summary = cart_summary(section(carts=carts, boards_down=[2]))
    assert summary == CartSummary(free=2, out=3, fault=1, unknown=1, current=True)
    assert summary.text == "Carts 2 free · 3 out · 1 fault · 1 unknown"
    assert [kind for kind, _text in summary.parts()] == ["free", "out", "fault", "unknown"]


def test_cart_summary_shows_zero_free_and_greys_when_not_current() -> None:
    carts = {1: CartTile(info("in_use", id=1))}
    summary = cart_summary(section(carts=carts, reachable=False))
    assert summary is not None
    assert summary.text == "Carts 0 free · 1 out"
    assert not summary.current
    assert cart_summary(section(carts=carts, problem="no key")) == CartSummary(out=1, current=False)


def test_only_a_locked_cart_standing_in_its_bay_counts_free() -> None:
    assert summary_kind(info("locked", cart_present=True)) == "free"
    # A locked bay whose switch says empty: the cart is gone (the edge's "missing" soon).
    assert summary_kind(info("locked", cart_present=False)) == "missing"
    assert summary_kind(info("locked", cart_present=None)) == "unknown"  # switch unknown
    assert summary_kind(info("missing", cart_present=False)) == "missing"
    carts = {
        1: CartTile(info("locked", id=1)),
        2: CartTile(info("missing", id=2, cart_present=False)),
        3: CartTile(info("locked", id=3, cart_present=False)),
        4: CartTile(info("locked", id=4, cart_present=None)),
    }
    summary = cart_summary(section(carts=carts))
    assert summary == CartSummary(free=1, missing=2, unknown=1)
    assert summary.text == "Carts 1 free · 2 missing · 1 unknown"


def test_a_state_this_console_does_not_know_is_kept_as_is_and_never_free() -> None:
    raw: dict[str, Any] = {
        "enabled": True, "boards_down": [], "carts": [
            {"id": 1, "board": 1, "lock": 1, "state": "impounded", "previous": "towed",
             "changed_at": "2026-11-24T15:00:00.000Z", "detail": "", "cart_present": True,
             "bolt_closed": True, "colour": "red"},
            {"id": 2, "board": 1, "lock": 2, "state": "locked", "previous": None,
             "changed_at": "2026-11-24T15:00:00.000Z", "detail": "", "cart_present": True,
             "bolt_closed": True},
        ],
    }  # fmt: skip
    carts = cart_list(raw)  # the whole list still reads: one odd cart does not hide the rest
    odd = carts.carts[0]
    assert (odd.state, odd.previous) == ("impounded", "towed")  # shown as the edge said it
    assert summary_kind(odd) == "unknown"
    summary = cart_summary(section(carts={c.id: CartTile(c) for c in carts.carts}))
    assert summary == CartSummary(free=1, unknown=1)
    # A cart event with a new state, merged into the cart the console had.
    merged = cart_info({**carts.carts[1].model_dump(), "state": "quarantined"})
    assert merged.state == "quarantined"
    assert not can_unlock(section(), CartTile(merged))
    assert not can_lock(section(), CartTile(merged))


def test_no_cart_summary_without_lock_boards() -> None:
    assert cart_summary(None) is None
    assert cart_summary(CartSection("dev", "bay 1")) is None  # not known yet
    assert cart_summary(CartSection("dev", "bay 1", enabled=False)) is None
    assert cart_summary(section()) is None  # enabled, but no carts configured
