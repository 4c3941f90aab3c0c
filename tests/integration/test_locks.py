"""The real lock driver against the board simulator (pymodbus's server) over a socat pty pair."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from edge.events import EventLog
from edge.locks import rentals
from edge.locks.errors import CommandConflict, CommandFailed, UnknownCart
from edge.locks.service import LockService
from edge.metrics import EdgeMetrics
from edge.store import Store
from tests.conftest import EdgeFactory, Keys, client_for
from tests.support.lock_sim import POLL_HZ, LockRig, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

PERIOD_S = 1.0 / POLL_HZ


@dataclass
class Locks:
    rig: LockRig
    service: LockService
    store: Store
    events: EventLog
    metrics: EdgeMetrics

    def state(self, cart: int) -> str:
        return self.service.driver.cart(cart).state

    def all_in(self, state: str) -> bool:
        return all(v.state == state for v in self.service.carts())

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(f"carwash_edge_{name}", labels)
        return value or 0.0

    async def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e.payload for e in reversed(await self.events.recent(500, [kind]))]


def _changes(writes: list[tuple[int, bool]]) -> list[tuple[int, bool]]:
    """Coil writes without repeats of the same value."""
    return [w for i, w in enumerate(writes) if i == 0 or writes[i - 1] != w]


@pytest_asyncio.fixture
async def locks(tmp_path: Path) -> AsyncIterator[Locks]:
    rig = await LockRig.start(tmp_path)
    store = await asyncio.to_thread(Store.in_dir, tmp_path)
    metrics = EdgeMetrics()
    events = EventLog(store, metrics)
    await events.attach_store(store)
    service = LockService(rig.config, metrics, events, lambda: store)
    await service.start()
    try:
        await wait_until(lambda: all(v.state == "locked" for v in service.carts()), 3.0)
        await service.settle()
        yield Locks(rig, service, store, events, metrics)
    finally:
        await service.stop()
        await events.aclose()
        await rig.close()
        await asyncio.to_thread(store.close)


async def test_unlock_take_return_is_a_rental(locks: Locks) -> None:
    sim = locks.rig.sim
    unlocked_at = time.time()
    outcome = await locks.service.command(2, "unlock", "req-1")
    assert outcome.state == "unlocked"
    assert sim.released(2)
    assert not sim.bolt_closed(2)
    sim.take(2)
    await wait_until(lambda: locks.state(2) == "in_use", 1.0, "cart 2 in use")
    await asyncio.sleep(0.5)
    returned_at = time.time()
    sim.give_back(2)
    await wait_until(lambda: locks.state(2) == "locked", 2.0, "cart 2 locked again")
    assert sim.coil_writes == [(2, True), (2, False)]  # one release, one hold: nothing else
    assert sim.bolt_closed(2)

    (rental,) = await asyncio.to_thread(rentals.recent_rentals, locks.store)
    assert rental.cart == 2
    expected = returned_at - unlocked_at
    assert expected - 0.05 <= rental.duration_s <= expected + PERIOD_S + 0.1
    assert rental.unlocked_at <= rental.taken_at <= rental.returned_at

    await locks.service.settle()
    cart2 = [p for p in await locks.events_of("cart") if p["cart"] == "2"]
    assert [(p["previous"], p["state"]) for p in cart2] == [
        ("unknown", "locked"), ("locked", "unlocked"), ("unlocked", "in_use"),
        ("in_use", "returned"), ("returned", "locked"),
    ]  # fmt: skip
    returned = cart2[3]
    assert returned["rental"]["duration_s"] == pytest.approx(rental.duration_s, abs=0.002)
    outbox = await asyncio.to_thread(locks.store.outbox_batch, 100)
    assert [o.payload["state"] for o in outbox if o.topic == "carts" and o.payload["cart"] == "2"][
        -2:
    ] == ["returned", "locked"]
    assert locks.metric("lock_rentals_total") == 1
    assert locks.metric("lock_carts", state="locked") == 4


async def test_an_unplugged_board_is_unknown_within_two_polls_and_recovers(locks: Locks) -> None:
    rig = locks.rig
    # The simulator stops answering (the cable is still there: requests time out).
    await rig.stop_sim()
    took = await wait_until(lambda: locks.all_in("unknown"), 2 * PERIOD_S, "unknown (no answer)")
    assert took <= 2 * PERIOD_S
    started = time.monotonic()
    with pytest.raises(CommandFailed) as down:
        await locks.service.command(1, "unlock", "while-down")
    assert down.value.code == "board_down"
    assert time.monotonic() - started < PERIOD_S  # fails fast, no bus timeout waited for
    await rig.start_sim()
    await wait_until(lambda: locks.all_in("locked"), 2.0, "back after the simulator restarts")

    # The adapter is pulled: both ends of the pty pair vanish.
    await rig.unplug()
    took = await wait_until(lambda: locks.all_in("unknown"), 2 * PERIOD_S, "unknown (no port)")
    assert took <= 2 * PERIOD_S
    await rig.plug_in()
    await wait_until(lambda: locks.all_in("locked"), 3.0, "back after the port returns")
    assert rig.sim.coil_writes == []  # nothing was released on the way

    await locks.service.settle()
    alerts = [a for a in await locks.events_of("alert") if a["code"] == "lock_fault"]
    assert [a["active"] for a in alerts] == [True, False, True, False]
    assert alerts[0]["board"] == 1
    assert alerts[0]["severity"] == "critical"
    # The real number of attempts (retries = 1: two), not pymodbus's own "after 0 retries".
    assert "after 2 attempts (timeout: no answer within 0.1 s)" in alerts[0]["message"]
    assert "retries" not in alerts[0]["message"]
    assert locks.metric("lock_bus_errors_total", kind="timeout") >= 1
    assert locks.metric("lock_bus_errors_total", kind="bus_error") >= 1
    assert locks.metric("lock_commands_total", action="unlock", result="board_down") == 1


async def test_corrupted_frames_and_garbage_are_counted_and_survived(locks: Locks) -> None:
    sim = locks.rig.sim
    changes_before = len(await locks.events_of("cart"))
    sim.inject("crc")
    await wait_until(lambda: locks.metric("lock_bus_errors_total", kind="crc_error") >= 2, 2.0)
    await asyncio.sleep(PERIOD_S)
    sim.inject("garbage")
    await wait_until(lambda: locks.metric("lock_bus_errors_total", kind="garbage") >= 1, 2.0)
    await asyncio.sleep(PERIOD_S)  # the retry is answered before more noise comes
    noise_before = locks.metric("lock_bus_errors_total", kind="garbage")
    locks.rig.noise(b"\x00\xfe\x13\x37\xa5")  # noise on the line between two requests
    await wait_until(lambda: locks.metric("lock_bus_errors_total", kind="garbage") > noise_before)
    assert sim.faults.injected == {"crc": 1, "garbage": 1}
    # Each was retried at once: no cart changed state, no board went down.
    await asyncio.sleep(2 * PERIOD_S)
    await locks.service.settle()
    assert len(await locks.events_of("cart")) == changes_before
    assert locks.all_in("locked")
    assert await locks.events_of("alert") == []
    outcome = await locks.service.command(3, "unlock", "after-noise")
    assert outcome.state == "unlocked"


async def test_a_late_answer_does_not_confuse_the_next_request(locks: Locks) -> None:
    sim = locks.rig.sim
    # An answer held back past the timeout lands inside the next request (another function):
    # it is told apart, dropped and the request asked again.
    sim.inject("held")
    await wait_until(lambda: locks.metric("lock_bus_errors_total", kind="mismatch") >= 1, 2.0)
    assert locks.metric("lock_bus_errors_total", kind="late_answer") >= 1
    await asyncio.sleep(PERIOD_S)  # one fault at a time: two in a row would exhaust the retry
    # One that comes after its request gave up is drained before the next one is sent.
    sim.faults.late_s = 0.15  # after the 100 ms timeout
    sim.inject("late")
    await wait_until(lambda: locks.metric("lock_bus_errors_total", kind="late_answer") >= 2, 2.0)
    await asyncio.sleep(PERIOD_S)
    # And while a command runs: its write is not answered by a stale read.
    sim.inject("held")
    outcome = await locks.service.command(4, "unlock", "late-1")
    assert outcome.state == "unlocked"
    sim.inject("late")
    assert (await locks.service.command(4, "lock", "late-2")).state == "locked"
    assert sim.faults.injected == {"held": 2, "late": 2}
    # A write whose answer was lost is sent again (the same value): one release, one hold.
    assert _changes(sim.coil_writes) == [(4, True), (4, False)]
    assert [v.state for v in locks.service.carts()] == ["locked"] * 4
    assert await locks.events_of("alert") == []


async def test_a_repeated_request_id_unlocks_once(locks: Locks) -> None:
    sim = locks.rig.sim
    first, second = await asyncio.gather(
        locks.service.command(1, "unlock", "same"), locks.service.command(1, "unlock", "same")
    )
    again = await locks.service.command(1, "unlock", "same")
    assert first == second == again
    assert sim.coil_writes == [(1, True)]
    with pytest.raises(CommandConflict) as reused:
        await locks.service.command(2, "unlock", "same")
    assert reused.value.code == "request_id_reused"
    with pytest.raises(UnknownCart):
        await locks.service.command(99, "unlock", "nope")


async def test_a_stuck_sensor_is_a_fault_with_an_alert(locks: Locks) -> None:
    sim = locks.rig.sim
    sim.lock(3).stuck_bolt = True  # reads closed whatever the coil does
    with pytest.raises(CommandFailed) as failed:
        await locks.service.command(3, "unlock", "stuck")
    assert failed.value.code == "not_confirmed"
    assert not sim.released(3)  # the unconfirmed unlock was taken back
    assert sim.coil_writes == [(3, True), (3, False)]
    sim.lock(3).stuck_bolt = False  # now reads open while the lock holds
    await wait_until(lambda: locks.state(3) == "fault", 2.0, "fault")
    sim.lock(3).stuck_bolt = None
    await wait_until(lambda: locks.state(3) == "locked", 2.0, "locked again")
    await locks.service.settle()
    alerts = [a for a in await locks.events_of("alert") if a.get("cart") == "3"]
    assert [a["active"] for a in alerts] == [True, False]
    assert "bolt not closed" in alerts[0]["message"]


async def test_a_cart_forced_out_of_a_locked_bay_is_missing_with_an_alert(locks: Locks) -> None:
    sim = locks.rig.sim
    sim.take(1, force=True)  # the lock holds; the cart leaves anyway (a broken hook)
    await wait_until(lambda: locks.state(1) == "missing", 2.0, "cart 1 missing")
    view = locks.service.driver.cart(1)
    assert (view.cart_present, view.bolt_closed) == (False, True)
    with pytest.raises(CommandConflict, match="no cart in its bay"):
        await locks.service.command(1, "unlock", "gone")
    await locks.service.settle()
    assert locks.metric("lock_carts", state="locked") == 3
    assert locks.metric("lock_carts", state="missing") == 1
    # A mechanical key opens the bolt: no change of state, but the sensors are shown at once.
    sim.lock(1).stuck_bolt = False
    await wait_until(lambda: locks.service.driver.cart(1).bolt_closed is False, 2.0, "bolt open")
    assert locks.state(1) == "missing"
    sim.lock(1).stuck_bolt = None
    sim.give_back(1)
    await wait_until(lambda: locks.state(1) == "locked", 2.0, "cart 1 back")
    assert sim.coil_writes == []  # nothing was released or held on the way

    await locks.service.settle()
    cart1 = [p for p in await locks.events_of("cart") if p["cart"] == "1"]
    assert [(p["change"], p["state"], p["cart_present"], p["bolt_closed"]) for p in cart1] == [
        ("state", "locked", True, True), ("state", "missing", False, True),
        ("sensors", "missing", False, False), ("state", "locked", True, True),
    ]  # fmt: skip
    alerts = [a for a in await locks.events_of("alert") if a.get("cart") == "1"]
    assert [(a["code"], a["active"]) for a in alerts] == [
        ("cart_missing", True),
        ("cart_missing", False),
    ]
    assert alerts[0]["severity"] == "warning"
    assert "without an unlock" in alerts[0]["message"]
    assert "back in its bay" in alerts[1]["message"]
    outbox = await asyncio.to_thread(locks.store.outbox_batch, 100)
    sent = [o.payload for o in outbox if o.topic == "carts" and o.payload["cart"] == "1"]
    assert [p["change"] for p in sent] == ["state"] * 3  # sensor chatter stays on the edge


async def test_a_board_restart_during_a_rental_keeps_the_cart_out(locks: Locks) -> None:
    sim = locks.rig.sim
    await locks.service.command(2, "unlock", "rent")
    sim.take(2)
    await wait_until(lambda: locks.state(2) == "in_use", 1.0, "cart 2 in use")
    sim.set_online(1, False)  # the board loses power...
    await wait_until(lambda: locks.state(2) == "unknown", 2.0, "board silent")
    sim.power_cycle(1)  # ...and comes back with every coil off: the bolt closes, the cart is out
    sim.set_online(1, True)
    await wait_until(lambda: locks.state(2) == "in_use", 2.0, "cart 2 still out")
    await wait_until(lambda: sim.bolt_closed(2), 1.0, "bolt closed by the restart")
    await asyncio.sleep(3 * PERIOD_S)  # a few polls: still out, neither free nor in fault
    view = locks.service.driver.cart(2)
    assert (view.state, view.cart_present, view.bolt_closed) == ("in_use", False, True)
    await locks.service.settle()
    assert locks.metric("lock_carts", state="locked") == 3  # the others: cart 2 is not free
    assert locks.metric("lock_carts", state="in_use") == 1
    sim.give_back(2)
    await wait_until(lambda: locks.state(2) == "locked", 2.0, "cart 2 locked again")
    assert sim.coil_writes == [(2, True)]  # never released again by the edge
    await locks.service.settle()  # the rental is written after the state changes
    (rental,) = await asyncio.to_thread(rentals.recent_rentals, locks.store)
    assert rental.cart == 2
    states = [p["state"] for p in await locks.events_of("cart") if p["cart"] == "2"]
    assert states[-5:] == ["in_use", "unknown", "in_use", "returned", "locked"]
    assert [a for a in await locks.events_of("alert") if a.get("cart") == "2"] == []


# ---------------------------------------------------------------------- the edge's HTTP API
@pytest_asyncio.fixture
async def lock_rig(tmp_path: Path) -> AsyncIterator[LockRig]:
    folder = tmp_path / "bus"
    folder.mkdir()
    rig = await LockRig.start(folder)
    yield rig
    await rig.close()


async def test_cart_routes_need_their_roles(
    lock_rig: LockRig, edge_factory: EdgeFactory, keys: Keys
) -> None:
    edge = edge_factory(start=False, locks=lock_rig.config.model_dump(mode="json"))
    await edge.start_async()
    service = edge.locks
    assert service is not None
    await wait_until(lambda: all(c.state == "locked" for c in service.carts()), 3.0)
    viewer, operator = Keys.auth(keys.viewer), Keys.auth(keys.operator)
    async with client_for(edge) as client:
        assert (await client.get("/api/carts")).status_code == 401
        r = await client.get("/api/carts", headers=viewer)
        assert r.status_code == 200
        body = r.json()
        assert body["enabled"] is True
        assert body["boards_down"] == []
        assert [(c["id"], c["board"], c["lock"], c["state"]) for c in body["carts"]] == [
            (n, 1, n, "locked") for n in (1, 2, 3, 4)
        ]
        assert body["carts"][0]["cart_present"] is True

        unlock = {"request_id": "http-1"}
        r = await client.post("/api/carts/2/unlock", json=unlock, headers=viewer)
        assert r.status_code == 403
        r = await client.post("/api/carts/2/unlock", json=unlock, headers=operator)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "unlocked"
        again = await client.post("/api/carts/2/unlock", json=unlock, headers=operator)
        assert again.json() == r.json()
        assert lock_rig.sim.coil_writes == [(2, True)]

        r = await client.post("/api/carts/99/unlock", json={"request_id": "x"}, headers=operator)
        assert r.status_code == 404
        assert r.json()["error"] == "unknown_cart"
        r = await client.post("/api/carts/2/lock", json={"request_id": "http-1"}, headers=operator)
        assert r.status_code == 409
        assert r.json()["error"] == "request_id_reused"
        r = await client.post("/api/carts/2/lock", json={}, headers=operator)
        assert r.status_code == 422
        r = await client.post("/api/carts/2/lock", json={"request_id": "http-2"}, headers=operator)
        assert r.status_code == 200
        assert r.json()["state"] == "locked"

        await service.settle()
        metrics = (await client.get("/metrics")).text
        assert 'carwash_edge_lock_carts{state="locked"} 4.0' in metrics
        assert 'carwash_edge_lock_commands_total{action="unlock",result="ok"} 1.0' in metrics
        r = await client.get("/api/events/recent", params={"kinds": "cart"}, headers=viewer)
        states = [e["payload"]["state"] for e in r.json()["events"] if e["payload"]["cart"] == "2"]
        assert states[:2] == ["locked", "unlocked"]  # newest first
        health = (await client.get("/api/health")).json()
        assert health["components"]["locks"]["status"] == "ok"


async def test_an_edge_without_locks_answers_that_it_has_none(
    edge_factory: EdgeFactory, keys: Keys
) -> None:
    edge = edge_factory(start=False)
    await edge.start_async()
    assert edge.locks is None
    async with client_for(edge) as client:
        r = await client.get("/api/carts", headers=Keys.auth(keys.viewer))
        assert r.json() == {"enabled": False, "carts": [], "boards_down": []}
        r = await client.post(
            "/api/carts/1/unlock", json={"request_id": "a"}, headers=Keys.auth(keys.operator)
        )
        assert r.status_code == 503
        assert r.json()["error"] == "locks_disabled"


async def test_a_locks_config_change_restarts_only_the_lock_driver(
    lock_rig: LockRig, edge_factory: EdgeFactory, keys: Keys, tmp_path: Path
) -> None:
    from edge.live_config import ConfigManager

    edge = edge_factory(start=False, locks=lock_rig.config.model_dump(mode="json"))
    await edge.start_async()
    assert edge.store is not None
    manager = ConfigManager(edge, edge.store, path=tmp_path / "edge.toml", emit=edge.events.emit)
    await manager.start()
    edge.live = manager
    first = edge.locks
    assert first is not None
    admin = Keys.auth(keys.admin)
    try:
        async with client_for(edge) as client:
            r = await client.patch("/api/config", json={"locks": {"poll_hz": 2}}, headers=admin)
            assert r.status_code == 200, r.text
            assert r.json()["restarted"] == ["locks"]
            second = edge.locks
            assert second is not None
            assert second is not first
            assert second.driver.period_s == 0.5
            await wait_until(lambda: all(c.state == "locked" for c in second.carts()), 3.0)
            r = await client.patch("/api/config", json={"locks": {"enabled": False}}, headers=admin)
            assert r.json()["restarted"] == ["locks"]
            assert edge.locks is None
            r = await client.get("/api/carts", headers=Keys.auth(keys.viewer))
            assert r.json()["enabled"] is False
    finally:
        await manager.stop()
