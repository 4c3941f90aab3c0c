"""The event log (fan-out, bounded queues that fall back on the store, kinds, failures) and the
stream watch (which samples become stream / alert / recovery events)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from edge.api.events import sse_message
from edge.events import EventLog, Subscription, parse_kinds
from edge.metrics import EdgeMetrics
from edge.store import Event, Store, StoreCaps
from edge.stream_watch import Emission, StreamWatch

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.in_dir(tmp_path, StoreCaps(prune_every=1))
    yield store
    store.close()


@pytest_asyncio.fixture
async def log(store: Store) -> AsyncIterator[EventLog]:
    events = EventLog(None, EdgeMetrics(), queue_size=4)
    await events.attach_store(store)
    yield events
    await events.aclose()


def _sample(metrics: EdgeMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(f"carwash_edge_{name}", labels)
    return 0.0 if value is None else value


def _failure(log: EventLog) -> str | None:
    return log.store_failure


async def _take(sub: Subscription, n: int) -> list[Event]:
    async with asyncio.timeout(5):
        return [e for e in [await sub.get() for _ in range(n)] if e is not None]


# ---------------------------------------------------------------------- the log
@pytest.mark.asyncio
async def test_emit_stores_and_fans_out_in_id_order(log: EventLog, store: Store) -> None:
    with log.subscribe() as a, log.subscribe() as b:
        ids = [await log.emit("stream", {"status": s}) for s in ("offline", "online", "degraded")]
        assert ids == sorted(ids)
        assert ids[0] >= 1
        for sub in (a, b):
            got = await _take(sub, 3)
            assert [e.id for e in got] == ids
            assert [e.payload["status"] for e in got] == ["offline", "online", "degraded"]
    # Written through the store; live events are exactly what a resume reads (same ts too).
    assert store.events_after(0) == got
    assert log.subscriber_count == 0


@pytest.mark.asyncio
async def test_concurrent_emits_reach_subscribers_in_id_order(log: EventLog) -> None:
    log.queue_size = 100
    with log.subscribe() as sub:
        ids = await asyncio.gather(*(log.emit("plate", {"n": n}) for n in range(40)))
        got = await _take(sub, 40)
    assert [e.id for e in got] == sorted(ids)


@pytest.mark.asyncio
async def test_outbox_row_is_written_with_the_event(log: EventLog, store: Store) -> None:
    event_id = await log.emit("alert", {"code": "hot"}, outbox_topic="events")
    await log.emit("stream", {"status": "online"})  # no topic: not for the cloud
    (row,) = store.outbox_batch()
    assert (row.event_id, row.topic, row.payload) == (event_id, "events", {"code": "hot"})


@pytest.mark.asyncio
async def test_a_slow_subscriber_resumes_from_the_store_and_loses_nothing(log: EventLog) -> None:
    metrics = log._metrics
    assert metrics is not None
    with log.subscribe() as slow, log.subscribe() as fast:
        ids = []
        for n in range(30):
            ids.append(await log.emit("plate", {"n": n}))
            assert (await _take(fast, 1))[0].id == ids[-1]  # a reader that keeps up
            # Memory stays bounded: never more than queue_size events held for the slow one.
            assert len(slow._queue) <= log.queue_size
        assert slow.overflowed
        got = await _take(slow, 15)
        # It falls behind again while catching up; more events arrive meanwhile.
        for n in range(30, 50):
            ids.append(await log.emit("plate", {"n": n}))
        got += await _take(slow, 35)
    assert [e.id for e in got] == ids  # all of them, once each, in order
    assert [e.payload["n"] for e in got] == list(range(50))
    assert _sample(metrics, "event_subscriber_resumes_total") == 2
    assert _sample(metrics, "events_total", kind="plate") == 50


@pytest.mark.asyncio
async def test_kinds_filter_live_resumed_and_recent(log: EventLog) -> None:
    first = await log.emit("alert", {"code": "hot", "active": True})
    await log.emit("stream", {"status": "offline"})
    with log.subscribe(after=0, kinds={"alert", "recovery"}) as sub:
        await log.emit("stream", {"status": "online"})
        last = await log.emit("recovery", {"component": "camera"})
        got = await _take(sub, 2)
    assert [(e.id, e.kind) for e in got] == [(first, "alert"), (last, "recovery")]
    assert [e.kind for e in await log.recent(10)] == ["recovery", "stream", "stream", "alert"]
    assert [e.id for e in await log.recent(10, {"alert"})] == [first]
    assert [e.kind for e in await log.after(first, 10, {"stream"})] == ["stream", "stream"]
    assert parse_kinds("plate, stream,") == frozenset({"plate", "stream"})
    assert parse_kinds("") is None


@pytest.mark.asyncio
async def test_resume_after_an_id_then_live_without_gap_or_repeat(log: EventLog) -> None:
    ids = [await log.emit("plate", {"n": n}) for n in range(10)]
    log.queue_size = 100
    with log.subscribe(after=ids[3]) as sub:
        # Emitted while the subscriber reads the store: in its queue and in the store.
        ids += [await log.emit("plate", {"n": n}) for n in range(10, 13)]
        got = await _take(sub, 9)
    assert [e.id for e in got] == ids[4:]
    # An id the log never gave (the store was moved aside): live from now, not from that id.
    with log.subscribe(after=10_000) as sub:
        new = await log.emit("plate", {"n": 13})
        assert [e.id for e in await _take(sub, 1)] == [new]


@pytest.mark.asyncio
async def test_recent_reads_back_past_pruned_events(tmp_path: Path) -> None:
    store = Store.in_dir(tmp_path, StoreCaps(max_events=100, prune_every=1))
    events = EventLog()
    await events.attach_store(store)
    try:
        for n in range(250):
            await events.emit("alert" if n % 50 == 0 else "plate", {"n": n})
        recent = await events.recent(500)
        assert [e.payload["n"] for e in recent] == list(range(249, 149, -1))
        assert [e.payload["n"] for e in await events.recent(5, {"alert"})] == [200, 150]
    finally:
        await events.aclose()
        store.close()


@pytest.mark.asyncio
async def test_without_a_store_events_live_in_a_bounded_ring() -> None:
    events = EventLog(queue_size=2, memory_ring=5)
    with events.subscribe() as sub:
        ids = [await events.emit("stream", {"n": n}) for n in range(4)]
        assert ids == [1, 2, 3, 4]
        assert [e.id for e in await _take(sub, 4)] == ids  # overflowed, resumed from the ring
    for n in range(4, 8):
        await events.emit("stream", {"n": n})
    assert [e.id for e in await events.recent(10)] == [8, 7, 6, 5, 4]
    assert [e.id for e in await events.after(6)] == [7, 8]
    await events.aclose()


@pytest.mark.asyncio
async def test_a_failing_store_is_logged_once_counted_and_events_still_go_live(
    log: EventLog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = await log.emit("stream", {"status": "online"})
    db = sqlite3.connect(tmp_path / "edge.db", isolation_level=None)
    try:
        db.execute("ALTER TABLE events RENAME TO events_gone")  # the store's writes now fail
        with caplog.at_level(logging.DEBUG, "edge.events"), log.subscribe() as sub:
            assert await log.emit("alert", {"code": "disk"}) == 0
            assert await log.emit("alert", {"code": "disk"}) == 0
            got = await _take(sub, 2)
            assert [(e.id, e.kind) for e in got] == [(0, "alert"), (0, "alert")]
            assert "no such table" in (_failure(log) or "")  # the edge's health says so
            db.execute("ALTER TABLE events_gone RENAME TO events")
            assert await log.emit("stream", {"status": "offline"}) == good + 1
            assert (await _take(sub, 1))[0].id == good + 1
            assert _failure(log) is None
    finally:
        db.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cannot store events" in warnings[0].getMessage()
    assert any("storing events again" in r.getMessage() for r in caplog.records)
    assert log._metrics is not None
    assert _sample(log._metrics, "event_store_errors_total") == 2
    # Not stored, so not resumable, and an SSE client's position does not move.
    assert b"id:" not in sse_message(Event(0, 0.0, "alert", {}))
    assert sse_message(Event(7, 0.0, "alert", {})).startswith(b"id: 7\nevent: alert\ndata: {")


@pytest.mark.asyncio
async def test_close_ends_subscribers_and_waits_for_pending_emits(
    log: EventLog, store: Store
) -> None:
    sub = log.subscribe()
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)  # the waiter is parked on the wake-up
    log.emit_soon("alert", {"code": "memory", "active": True})
    log.emit_soon("alert", {"code": "memory", "active": False})
    await log.aclose()
    assert [e.payload["active"] for e in store.events_after(0)] == [True, False]
    first = await waiter
    assert first is not None
    assert first.payload["active"] is True
    second = await sub.get()  # queued before the end: still given
    assert second is not None
    assert second.payload["active"] is False
    assert await sub.get() is None  # closed: the SSE response ends
    assert await log.emit("alert", {"code": "late"}) == 0
    assert len(store.events_after(0)) == 2
    sub.close()


# ---------------------------------------------------------------------- the stream watch
def _kinds(out: list[Emission]) -> list[str]:
    return [e.kind if e.kind != "alert" else f"alert:{e.payload['code']}:{e.payload['active']}"
            for e in out]  # fmt: skip


def test_watch_start_offline_within_grace_is_no_alert_and_no_recovery() -> None:
    w = StreamWatch(started=0.0, startup_grace_s=10.0)
    out = w.update("offline", 0.0, age_ms=None, detail="connecting", sessions=0)
    assert [e.payload for e in out] == [
        {"status": "offline", "previous": None, "age_ms": None, "detail": "connecting"}
    ]
    assert w.update("offline", 5.0, age_ms=None, detail="connecting", sessions=1) == []
    out = w.update("online", 6.0, age_ms=120.04, detail="", sessions=1)
    assert _kinds(out) == ["stream"]
    assert out[0].payload == {"status": "online", "previous": "offline", "age_ms": 120.0,
                              "detail": ""}  # fmt: skip


def test_watch_camera_down_at_start_alerts_after_the_grace_and_recovers() -> None:
    w = StreamWatch(started=0.0, startup_grace_s=10.0)
    w.update("offline", 0.0, age_ms=None, detail="refused", sessions=0)
    out = w.update("offline", 10.5, age_ms=None, detail="refused", sessions=0)
    assert _kinds(out) == ["alert:stream_offline:True"]
    assert out[0].payload["severity"] == "critical"
    assert "refused" in out[0].payload["message"]
    out = w.update("online", 12.0, age_ms=10.0, detail="", sessions=3)
    assert _kinds(out) == ["stream", "recovery", "alert:stream_offline:False"]
    assert out[1].payload == {"component": "camera", "offline_s": 12.0, "sessions": 3}


def test_watch_flap_after_working_is_alerted_at_once_and_counted() -> None:
    w = StreamWatch(started=0.0, startup_grace_s=10.0)
    w.update("online", 1.0, age_ms=5.0, detail="", sessions=1)
    out = w.update("degraded", 2.0, age_ms=3000.0, detail="", sessions=1)
    assert _kinds(out) == ["stream", "alert:stream_stale:True"]
    assert out[1].payload["severity"] == "warning"
    out = w.update("offline", 2.5, age_ms=3500.0, detail="EOF", sessions=1)
    assert _kinds(out) == ["stream", "alert:stream_stale:False", "alert:stream_offline:True"]
    assert w.update("offline", 3.0, age_ms=4000.0, detail="EOF", sessions=1) == []
    out = w.update("online", 4.25, age_ms=2.0, detail="", sessions=2)
    assert _kinds(out) == ["stream", "recovery", "alert:stream_offline:False"]
    assert out[1].payload["offline_s"] == 1.75
    out = w.update("degraded", 5.0, age_ms=2600.0, detail="", sessions=2)
    out += w.update("online", 5.5, age_ms=1.0, detail="", sessions=2)
    assert _kinds(out) == ["stream", "alert:stream_stale:True", "stream",
                           "alert:stream_stale:False"]  # fmt: skip
    assert w.recoveries == 1
