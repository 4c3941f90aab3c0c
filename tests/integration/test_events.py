"""``GET /api/events`` (SSE) and ``/api/events/recent`` against real servers on loopback.

In-process: the edge's app on uvicorn (127.0.0.1, ephemeral port), read with a streaming httpx
client (httpx's ASGI transport buffers whole responses, so it cannot follow an endless stream).
Subprocess: ``carwash-edge run`` against a real RTSP server that stops and comes back, then a
restart of the edge itself on the same data folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from edge.discovery import device_id
from edge.keys import KeyStore
from edge.runner import _run_guards
from edge.service import Edge
from tests.conftest import EdgeFactory, Keys, first_frame
from tests.support.edge_process import PLATES_OFF, EdgeProcess
from tests.support.rtsp import RtspServer
from tests.support.serve_edge import serve_edge

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

Message = dict[str, Any]


class SseStream:
    """One open ``GET /api/events``: messages and comments as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, within_s: float = 5.0) -> Message:
        """The next message: ``{"id", "event", "data"}`` or ``{"comment": text}``."""
        fields: Message = {}
        async with asyncio.timeout(within_s):
            async for line in self._lines:
                if line == "":
                    if fields:
                        return fields
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    return {"comment": value}
                if name == "data":
                    fields["data"] = json.loads(value)
                else:
                    fields[name] = value
        raise AssertionError("the event stream ended")

    async def event(self, within_s: float = 5.0) -> Message:
        """The next message that is an event (keepalive comments skipped)."""
        deadline = time.monotonic() + within_s
        while True:
            message = await self.next(max(0.01, deadline - time.monotonic()))
            if "comment" not in message:
                return message

    async def until(self, wanted: Callable[[Message], bool], within_s: float) -> Message:
        deadline = time.monotonic() + within_s
        while True:
            message = await self.event(max(0.01, deadline - time.monotonic()))
            if wanted(message):
                return message


@asynccontextmanager
async def sse(
    client: httpx.AsyncClient,
    key: str,
    *,
    params: dict[str, str] | None = None,
    last: int | None = None,
) -> AsyncIterator[SseStream]:
    headers = Keys.auth(key)
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    async with client.stream("GET", "/api/events", params=params, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseStream(response)


async def _until(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _alert(code: str, active: bool) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        payload = m["data"]["payload"]
        return m["event"] == "alert" and payload["code"] == code and payload["active"] is active

    return match


# ---------------------------------------------------------------------- in-process
@pytest_asyncio.fixture
async def edge(edge_factory: EdgeFactory) -> Edge:
    return edge_factory(http={"sse_keepalive_s": 0.3})


async def test_sse_needs_a_viewer_key_and_a_valid_resume_id(edge: Edge, keys: Keys) -> None:
    async with serve_edge(edge) as server, httpx.AsyncClient(base_url=server.url) as client:
        r = await client.get("/api/events")
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized"
        r = await client.get("/api/events/recent", headers=Keys.auth("cwe_x_forged"))
        assert r.status_code == 401
        headers = {**Keys.auth(keys.viewer), "Last-Event-ID": "twelve"}
        r = await client.get("/api/events", headers=headers)
        assert r.status_code == 422
        assert "Last-Event-ID" in r.json()["message"]
        r = await client.get("/api/events", params={"after": "-1"}, headers=Keys.auth(keys.viewer))
        assert r.status_code == 422
        # Every role from viewer up may follow the events (there is no lower one to refuse).
        for key in (keys.viewer, keys.operator, keys.admin):
            async with sse(client, key):
                pass
        doc = (await client.get("/openapi.json")).json()
        assert doc["paths"]["/api/events"]["get"]["x-required-role"] == "viewer"
        assert (
            "text/event-stream" in doc["paths"]["/api/events"]["get"]["responses"]["200"]["content"]
        )
        assert doc["paths"]["/api/events/recent"]["get"]["x-required-role"] == "viewer"


async def test_live_events_resume_after_a_disconnect_without_loss_or_repeat(
    edge: Edge, keys: Keys
) -> None:
    emit = edge.events.emit
    async with serve_edge(edge) as server, httpx.AsyncClient(base_url=server.url) as client:
        async with sse(client, keys.viewer, params={"kinds": "plate"}) as stream:
            ids = [await emit("plate", {"plate": f"AB{n}"}) for n in range(3)]
            got = [await stream.event() for _ in range(3)]
        assert [int(m["id"]) for m in got] == ids
        assert [m["event"] for m in got] == ["plate"] * 3
        assert got[0]["data"]["payload"] == {"plate": "AB0"}
        assert got[0]["data"]["id"] == ids[0]
        assert got[0]["data"]["ts"].endswith("Z")
        # The client went away: its subscription ends with it (no task left behind).
        await _until(lambda: edge.events.subscriber_count == 0)
        missed = [await emit("plate", {"plate": f"CD{n}"}) for n in range(3)]
        await emit("stream", {"status": "online"})  # not asked for
        async with sse(client, keys.viewer, params={"kinds": "plate"}, last=ids[-1]) as stream:
            resumed = [await stream.event() for _ in range(3)]
            live = await emit("plate", {"plate": "EF0"})
            after = await stream.event()
        assert [int(m["id"]) for m in resumed] == missed
        assert int(after["id"]) == live
        # ?after= does the same for clients that cannot set headers.
        async with sse(client, keys.viewer, params={"after": str(missed[1])}) as stream:
            assert [int((await stream.event())["id"]) for _ in range(3)] == [
                missed[2], missed[2] + 1, live,
            ]  # fmt: skip


async def test_keepalive_comments_on_an_idle_stream(edge: Edge, keys: Keys) -> None:
    async with serve_edge(edge) as server, httpx.AsyncClient(base_url=server.url) as client:
        await first_frame(edge)
        async with sse(client, keys.viewer, params={"kinds": "none-such"}) as stream:
            started = time.monotonic()
            assert await stream.next(within_s=2.0) == {"comment": "keepalive"}
            assert await stream.next(within_s=2.0) == {"comment": "keepalive"}
            assert time.monotonic() - started >= 0.5  # paced by http.sse_keepalive_s (0.3)


async def test_recent_events_health_id_and_stream_events_from_the_watch(
    edge: Edge, keys: Keys, tmp_path: Path
) -> None:
    async with serve_edge(edge) as server, httpx.AsyncClient(base_url=server.url) as client:
        await first_frame(edge)
        auth = Keys.auth(keys.viewer)
        # The watch records the synthetic camera coming online.
        async with sse(client, keys.viewer, params={"after": "0", "kinds": "stream"}) as stream:
            online = await stream.until(lambda m: m["data"]["payload"]["status"] == "online", 5)
        assert online["data"]["payload"]["previous"] == "offline"
        await edge.events.emit("alert", {"code": "hot", "severity": "warning", "active": True,
                                         "message": "hot"})  # fmt: skip
        r = await client.get("/api/events/recent", params={"limit": "2"}, headers=auth)
        assert r.status_code == 200
        events = r.json()["events"]
        assert [e["kind"] for e in events] == ["alert", "stream"]
        assert events[0]["id"] > events[1]["id"]
        assert set(events[0]) == {"id", "ts", "kind", "payload"}
        r = await client.get("/api/events/recent", params={"kinds": "stream"}, headers=auth)
        assert {e["kind"] for e in r.json()["events"]} == {"stream"}
        assert (await client.get("/api/events/recent", params={"limit": "0"},
                                 headers=auth)).status_code == 422  # fmt: skip
        health = (await client.get("/api/health")).json()
        assert health["id"] == device_id(tmp_path)
        assert health["components"]["store"]["status"] == "ok"
    # Stream events go to the cloud too (the outbox).
    assert edge.store is not None
    assert {row.topic for row in edge.store.outbox_batch()} == {"events"}


async def test_low_disk_shrinks_the_store_until_restored(edge: Edge) -> None:
    store = edge.store
    assert store is not None
    edge.shrink_store(0.0001)  # 100 000 → the floor of 100
    assert edge.store_caps() == store.caps  # a live config change keeps the cut caps
    for n in range(150):
        await edge.events.emit("plate", {"n": n}, outbox_topic="events")
    stats = await asyncio.to_thread(store.stats)
    assert stats.rows["events"] <= 100
    assert stats.rows["outbox"] <= 100
    assert stats.dropped["events"] >= 50
    edge.restore_store()
    assert store.caps.max_events == edge.config.store.max_events


async def test_guard_actions_become_alert_events(edge_factory: EdgeFactory, tmp_path: Path) -> None:
    edge = edge_factory(guards={
        "disk_min_free_mb": 1 << 40,  # more than any disk: the data folder is "low" at once
        "rss_limit_mb": 1 << 20, "check_interval_s": 0.5,
        "thermal_path": str(tmp_path / "no-thermal-zone"),
    })  # fmt: skip
    exits: list[str] = []
    with edge.events.subscribe(kinds={"alert"}) as sub:
        guards = asyncio.create_task(_run_guards(edge, exits.append))
        try:
            async with asyncio.timeout(5):
                event = await sub.get()
        finally:
            guards.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guards
    assert event is not None
    assert event.payload["code"] == "disk"
    assert event.payload["severity"] == "critical"
    assert event.payload["active"] is True
    assert "MiB free" in event.payload["message"]
    assert edge.store is not None
    assert edge.store.caps.max_events < edge.config.store.max_events  # pruned hard
    assert {row.topic for row in edge.store.outbox_batch()} == {"events"}
    assert exits == []


async def test_an_unusable_store_leaves_the_edge_running_on_memory(
    edge_factory: EdgeFactory, tmp_path: Path
) -> None:
    (tmp_path / "edge.db").mkdir()  # SQLite cannot open a folder
    edge = edge_factory(start=False, store=False)
    await edge.start_async()
    assert edge.store is None
    await first_frame(edge)
    health = edge.health()
    assert health.components["store"].status == "failing"
    assert "edge.db" in health.components["store"].detail
    with edge.events.subscribe(after=0, kinds={"alert"}) as sub:  # events flow, from memory
        alert_id = await edge.events.emit("alert", {"code": "disk"})
        async with asyncio.timeout(5):
            got = await sub.get()
    assert alert_id > 0
    assert got is not None
    assert got.id == alert_id
    # The stream watch records "online" at its next sample (every WATCH_INTERVAL_S): wait for
    # it rather than race it (a loaded machine samples late).
    with edge.events.subscribe(after=0, kinds={"stream"}) as streams:
        async with asyncio.timeout(10):
            first = await streams.get()
    assert first is not None
    assert first.kind == "stream"


# ---------------------------------------------------------------------- a real edge and camera
@pytest.mark.slow
async def test_camera_flap_is_recorded_counted_and_survives_an_edge_restart(
    tmp_path: Path,
) -> None:
    key, _ = KeyStore.in_dir(tmp_path).create("viewer")
    config = tmp_path / "edge.toml"
    with RtspServer("live", width=320, height=180, fps=10, gop=10) as camera:
        config.write_text(
            f'[camera]\nsource = "{camera.url}"\nreconnect_max_s = 1.0\nread_timeout_s = 1.0\n'
            "connect_timeout_s = 1.0\noffline_after_ms = 2000\n"
            "[http]\nsse_keepalive_s = 1.0\n[discovery]\nenabled = false\n" + PLATES_OFF
        )
        edge = await asyncio.to_thread(EdgeProcess(tmp_path, "--config", str(config)).start)
        try:
            async with (
                httpx.AsyncClient(base_url=edge.url, timeout=10) as client,
                sse(client, key, params={"after": "0"}) as stream,
            ):
                first = await stream.until(
                    lambda m: m["event"] == "stream" and m["data"]["payload"]["status"] == "online",
                    20,
                )
                await asyncio.to_thread(camera.stop)
                down = await stream.until(_alert("stream_offline", True), 10)
                await asyncio.to_thread(camera.start)
                recovery = await stream.until(lambda m: m["event"] == "recovery", 15)
                cleared = await stream.event()
                assert _alert("stream_offline", False)(cleared)
                assert int(first["id"]) < int(down["id"]) < int(recovery["id"])
                payload = recovery["data"]["payload"]
                assert payload["component"] == "camera"
                assert payload["sessions"] >= 2
                assert 0 < payload["offline_s"] < 15
                metrics = (await client.get("/metrics")).text
                assert 'carwash_edge_recoveries_total{component="camera"} 1.0' in metrics
                # SIGTERM with the stream still open: it ends at once, the exit is clean.
                started = time.monotonic()
                assert await asyncio.to_thread(edge.stop) == 0
                assert time.monotonic() - started < 2.0
            assert "graceful shutdown exceeded" not in edge.log
        finally:
            await asyncio.to_thread(edge.stop)
        last = int(cleared["id"])

        # The same data folder: the events are still there, and ids go on from them.
        edge = await asyncio.to_thread(EdgeProcess(tmp_path, "--config", str(config)).start)
        try:
            async with httpx.AsyncClient(base_url=edge.url, timeout=10) as client:
                recent = (await client.get(
                    "/api/events/recent", params={"kinds": "recovery"}, headers=Keys.auth(key)
                )).json()["events"]  # fmt: skip
                assert [e["id"] for e in recent] == [int(recovery["id"])]
                async with sse(client, key, last=last) as stream:
                    again = await stream.event(10)
                assert int(again["id"]) == last + 1  # nothing lost, nothing repeated
                assert again["data"]["payload"] == {
                    "status": "offline", "previous": None, "age_ms": None,
                    "detail": again["data"]["payload"]["detail"],
                }  # fmt: skip
        finally:
            await asyncio.to_thread(edge.stop)
