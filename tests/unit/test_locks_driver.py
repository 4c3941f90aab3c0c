"""The lock driver's thread with a scripted bus (no serial port): commands, board loss, memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from edge.config import LocksConfig
from edge.locks import driver as driver_module
from edge.locks.driver import LockDriver
from edge.locks.errors import BusError, CommandConflict, CommandFailed, UnknownCart
from edge.locks.register_map import Span
from edge.locks.state import Effect, StateChange

pytestmark = pytest.mark.unit


class FakeBoard:
    """A board behind a fake bus: coils move bolts at once; it can go silent."""

    def __init__(self, locks: int) -> None:
        self.coils = [False] * locks
        self.present = [True] * locks
        self.silent = False
        self.stuck_closed: set[int] = set()
        self.writes: list[tuple[int, bool]] = []
        self.reads = 0
        self.lock = threading.Lock()

    def _check(self) -> None:
        if self.silent:
            raise BusError("timeout", "no answer")

    def read_coils(self, unit: int, span: Span, *, retries: int | None = None) -> list[bool]:
        with self.lock:
            self.reads += 1
            self._check()
            return list(self.coils[span.start : span.start + span.count])

    def read_inputs(self, unit: int, span: Span, *, retries: int | None = None) -> list[bool]:
        with self.lock:
            self._check()
            bolts = [not c or i in self.stuck_closed for i, c in enumerate(self.coils)]
            return (bolts + self.present)[span.start : span.start + span.count]

    def write_coil(self, unit: int, address: int, value: bool) -> None:
        with self.lock:
            self._check()
            self.coils[address] = value
            self.writes.append((address + 1, value))

    def close(self) -> None:
        pass


@pytest.fixture
def board() -> FakeBoard:
    return FakeBoard(3)


@pytest.fixture
def effects() -> list[Effect]:
    return []


@pytest.fixture
def boards_seen() -> list[tuple[int, bool]]:
    return []


@pytest.fixture
def drv(
    board: FakeBoard, effects: list[Effect], boards_seen: list[tuple[int, bool]]
) -> Iterator[LockDriver]:
    config = LocksConfig.model_validate({
        "enabled": True, "poll_hz": 20, "confirm_timeout_s": 0.3, "fault_after_s": 5,
        "boards": [{"unit": 1, "locks": 3}],
    })  # fmt: skip
    d = LockDriver(
        config, board, on_effects=lambda e: effects.extend(e),
        on_board=lambda unit, up, _: boards_seen.append((unit, up)),
    )  # fmt: skip
    d.start()
    _wait(lambda: all(v.state == "locked" for v in d.carts()))
    yield d
    d.stop()


def _wait(check: Callable[[], bool], within_s: float = 2.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_unlock_is_written_once_and_confirmed(drv: LockDriver, board: FakeBoard) -> None:
    first = drv.submit(2, "unlock", "r1")
    repeat = drv.submit(2, "unlock", "r1")
    assert repeat is first
    outcome = first.result(timeout=2)
    assert outcome.state == "unlocked"
    assert board.writes == [(2, True)]
    with pytest.raises(CommandConflict):
        drv.submit(3, "unlock", "r1")
    with pytest.raises(UnknownCart):
        drv.submit(9, "unlock", "r2")


def test_a_board_that_goes_silent_is_unknown_and_commands_fail_fast(
    drv: LockDriver, board: FakeBoard, effects: list[Effect], boards_seen: list[tuple[int, bool]]
) -> None:
    board.silent = True
    _wait(lambda: all(v.state == "unknown" for v in drv.carts()), 2 / 20 + 0.05)
    assert boards_seen == [(1, False)]
    reads = board.reads
    with pytest.raises(CommandFailed) as err:
        drv.submit(1, "unlock", "down").result(timeout=1)
    assert err.value.code == "board_down"
    assert board.writes == []
    assert board.reads - reads <= 2  # the command itself did not touch the bus
    board.silent = False
    _wait(lambda: all(v.state == "locked" for v in drv.carts()))
    assert boards_seen == [(1, False), (1, True)]
    unknown = [e for e in effects if isinstance(e, StateChange) and e.state == "unknown"]
    assert len(unknown) == 3


def test_an_unconfirmed_unlock_is_taken_back(drv: LockDriver, board: FakeBoard) -> None:
    board.stuck_closed.add(0)  # cart 1's bolt never opens
    with pytest.raises(CommandFailed) as err:
        drv.submit(1, "unlock", "stuck").result(timeout=2)
    assert err.value.code == "not_confirmed"
    assert board.writes == [(1, True), (1, False)]
    assert drv.cart(1).commanded == "lock"


def test_a_coil_released_behind_our_back_is_held_again(drv: LockDriver, board: FakeBoard) -> None:
    with board.lock:
        board.coils[2] = True  # someone else on the bus, or a board glitch
    _wait(lambda: (3, False) in board.writes)
    assert not board.coils[2]
    assert all(value is False for _, value in board.writes)


def test_request_ids_are_remembered_within_a_bound(
    drv: LockDriver, board: FakeBoard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "REQUEST_MEMORY", 3)
    futures = [drv.submit(1, "lock", f"id-{i}") for i in range(5)]
    for f in futures:
        f.result(timeout=2)
    assert len(drv._requests) == 3
    assert drv.submit(1, "lock", "id-4") is futures[4]
    assert drv.submit(1, "lock", "id-0") is not futures[0]  # forgotten: a new command


def test_stop_fails_queued_commands(board: FakeBoard) -> None:
    config = LocksConfig.model_validate(
        {"enabled": True, "poll_hz": 20, "boards": [{"unit": 1, "locks": 3}]}
    )
    d = LockDriver(config, board, on_effects=lambda e: None, on_board=lambda *a: None)
    queued = d.submit(1, "lock", "never-run")  # the thread never started
    d.stop()
    with pytest.raises(CommandFailed, match="stopped"):
        queued.result(timeout=1)
    with pytest.raises(CommandFailed):
        d.submit(1, "lock", "after-stop")
