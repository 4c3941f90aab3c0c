"""The one device state (console/services/status.py) and the retry on a closed kept-alive
connection (console/services/edge_client.py)."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from console.services.edge_client import EdgeClient
from console.services.errors import EdgeUnreachable
from console.services.status import DeviceState, DeviceStates, plain_reason

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def states() -> tuple[DeviceStates, Clock, list[tuple[str, DeviceState]]]:
    clock = Clock()
    changes: list[tuple[str, DeviceState]] = []
    board = DeviceStates(
        on_change=lambda k, s: changes.append((k, s)),
        clock=clock,
        wall=lambda: datetime(2026, 1, 5, 14, 5).astimezone(),
    )
    return board, clock, changes


def test_connecting_then_online() -> None:
    board, _clock, changes = states()
    assert board.state("bay").name == "connecting"
    assert board.ok("bay", authenticated=True, stream="online").name == "online"
    assert [s.name for _k, s in changes] == ["online"]
    assert board.state("bay").since is not None


def test_one_missed_check_changes_nothing_two_make_offline() -> None:
    board, clock, changes = states()
    board.ok("bay", authenticated=True)
    assert board.miss("bay", "Server disconnected without sending a response").name == "online"
    clock.now += 0.2
    # Two pollers missing at the same moment: one hiccup, not an outage yet.
    assert board.miss("bay", "All connection attempts failed").name == "online"
    clock.now += 1.0
    gone = board.miss("bay", "All connection attempts failed")
    assert gone.name == "offline"
    assert "connection refused" in gone.reason
    assert [s.name for _k, s in changes] == ["online", "offline"]
    # Back: one answer is enough.
    assert board.ok("bay", authenticated=False, stream="online").name == "online"


def test_key_needed_is_its_own_state_and_health_alone_does_not_clear_it() -> None:
    board, _clock, _changes = states()
    board.ok("bay", authenticated=False, stream="online")  # /api/health needs no key
    state = board.refused("bay", 401)
    assert state.name == "key_needed"
    assert state.answers
    assert not state.working
    assert board.ok("bay", authenticated=False).name == "key_needed"
    assert board.ok("bay", authenticated=True).name == "online"


def test_degraded_while_the_camera_is_offline() -> None:
    board, _clock, _changes = states()
    state = board.ok("bay", authenticated=True, stream="offline")
    assert state.name == "degraded"
    assert "camera" in state.reason


def test_summary_counts_the_one_state() -> None:
    board, clock, _changes = states()
    board.ok("a", authenticated=True)
    board.refused("b", 401)
    board.miss("c", "timed out")
    clock.now += 2
    board.miss("c", "timed out")
    assert board.summary(["a", "b", "c"]) == "3 edges, 1 online, 1 offline, 1 needs a key"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("All connection attempts failed", "switched on"),
        ("ReadTimeout", "stopped answering"),
        ("Server disconnected without sending a response", "broke off"),
    ],
)
def test_plain_reasons(raw: str, words: str) -> None:
    assert words in plain_reason(raw)


@pytest.mark.asyncio
async def test_a_get_is_sent_once_more_on_a_closed_kept_alive_connection() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response")
        return httpx.Response(200, text="carwash_edge_up 1\n")

    client = EdgeClient("http://edge", transport=httpx.MockTransport(handler))
    try:
        assert await client.metrics() == {"carwash_edge_up": 1.0}
        assert calls == ["GET", "GET"]
        calls.clear()
        # Not twice: a second failure is an answer ("unreachable"), and a POST is never resent.
        calls.append("x")  # makes every further call fail

        def failing(request: httpx.Request) -> httpx.Response:
            calls.append(request.method)
            raise httpx.ReadError("connection reset")

        failing_client = EdgeClient("http://edge", transport=httpx.MockTransport(failing))
        with pytest.raises(EdgeUnreachable):
            await failing_client.metrics()
        assert calls.count("GET") == 2
        with pytest.raises(EdgeUnreachable):
            await failing_client.unlock(1, "r1")
        assert calls.count("POST") == 1
        await failing_client.aclose()
    finally:
        await client.aclose()


def test_events_are_written_for_people() -> None:
    from console.models.event_text import describe_event

    cart = {"cart": "8", "change": "state", "state": "locked", "previous": "unlocked"}
    assert describe_event("cart", cart) == "Cart 8 locked (was unlocked)"
    assert describe_event("cart", {**cart, "state": "missing", "previous": "locked"}) == (
        "Cart 8 missing from its bay (was locked)"
    )
    alert = {"code": "lock_fault", "severity": "critical", "active": False, "message": "board 2"}
    assert describe_event("alert", alert) == "Cleared: board 2"
    assert describe_event("stream", {"status": "offline", "detail": ""}) == "Camera stream offline"
    assert describe_event("config", {"version": 7, "action": "rolled_back", "restarted": []}) == (
        "Config version 7 rolled back"
    )
    assert describe_event("odd_kind", {"a": 1}) == "Odd kind: a 1"
