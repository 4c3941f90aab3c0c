"""The events a running edge really records fit their typed payload models
(fleet_common.wire.events): stream, plate.read, member.recognized, config, cart (state and
sensors, a rental inside a return) and alert (a lock board down and back)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from edge.live_config import ConfigManager
from edge.plates.types import Box, Candidate, Picture, PlateRead, Recognition
from fleet_common.wire.events import (
    EVENT_PAYLOADS,
    TOPIC_CARTS,
    TOPIC_EVENTS,
    TOPIC_PLATES,
    CartPayload,
    parse_payload,
)
from tests.conftest import EdgeFactory, first_frame
from tests.support.lock_sim import LockRig, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

PLATE = "AB123CD"


class FixedReader:
    """A recogniser that reads the member's plate in every picture."""

    name = "local"

    async def recognize(
        self, picture: Picture, *, camera_id: str = "", deadline_s: float | None = None
    ) -> Recognition:
        read = PlateRead(
            plate=PLATE, score=0.93, dscore=0.9, box=Box(2, 2, 40, 12), recognizer="local",
            text="AB-123-CD", candidates=(Candidate(PLATE, 0.93), Candidate("A8123CD", 0.4)),
        )  # fmt: skip
        return Recognition((read,), "local", latency_ms=12.3)

    def status(self) -> dict[str, Any]:
        return {"state": "ok"}

    async def aclose(self) -> None:
        return None


async def test_the_events_of_a_running_edge_fit_their_models(
    edge_factory: EdgeFactory, tmp_path: Path
) -> None:
    members = tmp_path / "members.json"
    members.write_text(json.dumps({"members": [
        {"plate": PLATE, "id": "m-42", "name": "Ada", "plan": "gold", "status": "active"},
    ]}), encoding="utf-8")  # fmt: skip
    (tmp_path / "rig").mkdir()
    rig = await LockRig.start(tmp_path / "rig")
    try:
        edge = edge_factory(
            start=False, locks=rig.config.model_dump(mode="json"),
            plates={"motion": {"enabled": False}, "members_file": str(members)},
        )  # fmt: skip
        await edge.start_async()
        await first_frame(edge)
        assert edge.store is not None
        assert edge.plates is not None
        assert edge.locks is not None
        manager = ConfigManager(
            edge, edge.store, path=tmp_path / "edge.toml", emit=edge.events.emit
        )
        await manager.start()
        try:
            applied = await manager.patch(
                {"plates": {"min_score": 0.42}}, source="api", reason="test"
            )
            assert applied.hot == ["plates.min_score"]
            edge.plates.local = FixedReader()
            outcome = await edge.plates.recognize_now(timeout_s=10)
            assert outcome.payload is not None
            assert outcome.payload["member"]["id"] == "m-42"

            locks = edge.locks
            await wait_until(lambda: all(c.state == "locked" for c in locks.carts()), 3.0)
            await locks.command(2, "unlock", "req-1")
            rig.sim.take(2)
            await wait_until(lambda: locks.driver.cart(2).state == "in_use", 2.0, "in use")
            rig.sim.give_back(2)
            await wait_until(lambda: locks.driver.cart(2).state == "locked", 2.0, "locked")
            rig.sim.take(1, force=True)  # gone from a locked bay: missing, an alert by cart
            await wait_until(lambda: locks.driver.cart(1).state == "missing", 2.0, "missing")
            rig.sim.lock(1).stuck_bolt = False  # a key opens the bolt: a sensors-only change
            await wait_until(lambda: locks.driver.cart(1).bolt_closed is False, 2.0, "open")
            rig.sim.lock(1).stuck_bolt = None
            rig.sim.give_back(1)
            await wait_until(lambda: locks.driver.cart(1).state == "locked", 2.0, "back")
            await rig.stop_sim()  # the board stops answering: a lock_fault alert
            await wait_until(lambda: all(c.state == "unknown" for c in locks.carts()), 3.0)
            await rig.start_sim()
            await wait_until(lambda: all(c.state == "locked" for c in locks.carts()), 3.0)
            await locks.settle()
        finally:
            await manager.stop()
        events = list(reversed(await edge.events.recent(1000)))
    finally:
        await rig.close()

    seen: dict[str, int] = {}
    for event in events:
        model = parse_payload(event.kind, event.payload)  # raises if it does not fit
        assert model is not None, f"no model for {event.kind}"
        # What the edge stored is exactly what the model dumps: nothing lost, nothing added.
        assert model.model_dump(mode="json") == event.payload, event.kind
        seen[event.kind] = seen.get(event.kind, 0) + 1
    assert set(seen) == set(EVENT_PAYLOADS) - {"rental", "recovery"}, seen
    carts = [CartPayload.model_validate(e.payload) for e in events if e.kind == "cart"]
    assert {c.change for c in carts} == {"state", "sensors"}
    assert any(c.rental is not None for c in carts)
    alerts = [e.payload for e in events if e.kind == "alert"]
    assert {(a["code"], "board" in a, "cart" in a) for a in alerts} == {
        ("lock_fault", True, False), ("cart_missing", False, True),
    }  # fmt: skip
    # Each kind the cloud gets goes under its topic; sensor changes stay on the edge.
    store = edge.store
    assert store is not None
    outbox = await asyncio.to_thread(store.outbox_batch, 1000)
    topics = {(o.kind, o.topic) for o in outbox}
    assert ("plate.read", TOPIC_PLATES) in topics
    assert ("member.recognized", TOPIC_EVENTS) in topics
    assert ("cart", TOPIC_CARTS) in topics
    assert ("alert", TOPIC_EVENTS) in topics
    assert ("config", TOPIC_EVENTS) in topics
    assert all(o.payload.get("change") != "sensors" for o in outbox if o.kind == "cart")
