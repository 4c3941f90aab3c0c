"""console.services against real edges: in-process edges behind a real uvicorn server on
127.0.0.1:0, and ``carwash-edge run`` subprocesses advertising with zeroconf on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from console.services.discovery import Device, DeviceDirectory
from console.services.edge_client import EdgeClient, EdgeEvent
from console.services.errors import EdgeApiError, EdgeAuthError, EdgeUnreachable
from edge.service import Edge
from fleet_common.version import VERSION
from tests.conftest import EdgeFactory, Keys, first_frame
from tests.support.edge_process import EdgeProcess
from tests.support.serve_edge import EdgeServer, serve_edge, start_edge_server

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def served(edge_factory: EdgeFactory) -> AsyncIterator[EdgeServer]:
    # 4 fps: few enough frames that an ETag is still current one request later.
    edge = edge_factory(camera={"source": "synthetic://?width=320&height=180&fps=4"})
    await first_frame(edge)
    async with serve_edge(edge) as server:
        yield server


@pytest_asyncio.fixture
async def viewer(served: EdgeServer, keys: Keys) -> AsyncIterator[EdgeClient]:
    client = EdgeClient(served.url, keys.viewer, timeout_s=5.0)
    yield client
    await client.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------- status and pictures
@pytest.mark.asyncio
async def test_health_info_and_metrics(viewer: EdgeClient) -> None:
    health = await viewer.health()
    assert health.name == "test-bay"
    assert health.site == "test-site"
    info = await viewer.info()
    assert info.latest is not None
    assert info.source.scheme == "synthetic"
    metrics = await viewer.metrics()
    assert 0 <= metrics["carwash_edge_frame_age_seconds"] < 10
    assert metrics["carwash_edge_cache_snapshots"] >= 1
    assert "carwash_edge_temperature_celsius" in metrics


@pytest.mark.asyncio
async def test_snapshot_then_304_until_a_newer_frame(
    served: EdgeServer, viewer: EdgeClient
) -> None:
    picture = await viewer.snapshot()
    assert picture is not None
    assert picture.jpeg.startswith(b"\xff\xd8")
    assert picture.etag
    assert picture.seq >= 1
    assert picture.stream_status == "online"
    assert picture.captured_at.tzinfo is not None
    assert 0 <= picture.age_ms < 5000
    assert picture.received_mono <= time.monotonic()
    # Same ETag: not modified unless a newer frame came in between (then retried).
    for _ in range(20):
        latest = await viewer.snapshot()
        assert latest is not None
        if await viewer.snapshot(etag=latest.etag) is None:
            break
    else:
        pytest.fail("never got 304 for the current ETag")
    # Once a newer frame exists, the old ETag gets it.
    assert await served.edge.cache.wait_newer(picture.seq, 5.0) is not None
    newer = await viewer.snapshot(etag=picture.etag)
    assert newer is not None
    assert newer.seq > picture.seq


@pytest.mark.asyncio
async def test_snapshot_width_scales_and_has_its_own_etag(viewer: EdgeClient) -> None:
    full = await viewer.snapshot()
    small = await viewer.snapshot(width=160)
    assert full is not None
    assert small is not None
    assert len(small.jpeg) < len(full.jpeg)
    assert small.etag != full.etag
    assert b"\xff\xc0\x00\x11\x08\x00\x5a\x00\xa0" in small.jpeg  # SOF0: 160 x 90
    assert small.etag.endswith('-w160"')
    for _ in range(20):  # the current scaled ETag gets 304 unless a frame just came
        latest = await viewer.snapshot(width=160)
        assert latest is not None
        if await viewer.snapshot(width=160, etag=latest.etag) is None:
            break
    else:
        pytest.fail("never got 304 for the scaled picture's ETag")
    with pytest.raises(EdgeApiError) as caught:
        await viewer.snapshot(width=1)
    assert caught.value.status == 422
    assert caught.value.code == "invalid_request"
    assert "width" in caught.value.message


@pytest.mark.asyncio
async def test_snapshot_at_reads_the_history(viewer: EdgeClient) -> None:
    picture = await viewer.snapshot()
    assert picture is not None
    kept = await viewer.snapshot_at(picture.seq, width=160)
    assert kept is not None
    assert kept.seq == picture.seq
    assert kept.etag.endswith('-w160"')
    assert await viewer.snapshot_at(10**9) is None  # never kept: 404 → None


# ---------------------------------------------------------------------- errors
@pytest.mark.asyncio
async def test_auth_errors(served: EdgeServer, keys: Keys) -> None:
    async with contextlib.AsyncExitStack() as stack:
        anonymous = EdgeClient(served.url)
        wrong = EdgeClient(served.url, "not-a-key")
        viewer = EdgeClient(served.url, keys.viewer)
        for client in (anonymous, wrong, viewer):
            stack.push_async_callback(client.aclose)
        assert (await anonymous.health()).name == "test-bay"  # open route
        for client in (anonymous, wrong):
            with pytest.raises(EdgeAuthError) as caught:
                await client.snapshot()
            assert caught.value.status == 401
        with pytest.raises(EdgeAuthError) as caught:
            await viewer.config()  # admin only
        assert caught.value.status == 403
        assert "admin" in caught.value.message


@pytest.mark.asyncio
async def test_unreachable_edge_refused_and_timeout() -> None:
    refused = EdgeClient(f"http://127.0.0.1:{free_port()}", timeout_s=2.0)
    try:
        with pytest.raises(EdgeUnreachable):
            await refused.health()
    finally:
        await refused.aclose()

    # A peer that accepts and never answers: the timeout ends the call.
    gone = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):  # never answers; ends when the client hangs up
                pass
        finally:
            writer.close()
            gone.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hanging = EdgeClient(f"http://127.0.0.1:{port}", timeout_s=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(EdgeUnreachable):
            await hanging.snapshot()
        assert time.monotonic() - started < 2.0
    finally:
        await hanging.aclose()
        server.close()
        await asyncio.wait_for(gone.wait(), 5)
        await server.wait_closed()


@pytest.mark.asyncio
async def test_closed_client_raises_unreachable(served: EdgeServer) -> None:
    client = EdgeClient(served.url)
    await client.aclose()
    await client.aclose()  # twice is fine
    with pytest.raises(EdgeUnreachable, match="closed"):
        await client.health()


@pytest.mark.asyncio
async def test_asgi_transport_works_for_plain_calls(edge_factory: EdgeFactory, keys: Keys) -> None:
    from edge.api import create_app

    edge = edge_factory()
    await first_frame(edge)
    transport = httpx.ASGITransport(app=create_app(edge), client=("127.0.0.1", 50000))
    client = EdgeClient("http://edge", keys.viewer, transport=transport)
    try:
        assert (await client.health()).name == "test-bay"
        assert await client.snapshot() is not None
    finally:
        await client.aclose()


# ---------------------------------------------------------------------- events (SSE)
# The client's reconnect logic is driven by a scripted HTTP/1.1 peer: each connection plays one
# script, so drops, silences, errors and overlaps happen exactly where the test wants them.
# test_follow_events_from_a_real_edge runs the same path against the edge's own route.
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"


def sse(event_id: int, kind: str = "stream") -> bytes:
    data = json.dumps(
        {"id": event_id, "ts": "2026-11-24T15:00:00.000Z", "kind": kind, "payload": {"n": event_id}}
    )
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n".encode()


def json_response(status: int, content: Any) -> bytes:
    body = json.dumps(content).encode()
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def error_response(status: int, code: str) -> bytes:
    return json_response(status, {"error": code, "message": f"scripted {code}"})


class ScriptedPeer:
    """Connection n sends ``scripts[n]`` (bytes), then closes, or holds the connection open
    until the client hangs up when the script ends with ``HOLD``."""

    HOLD = b""

    def __init__(self, scripts: list[list[bytes]]) -> None:
        self.scripts = scripts
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.hung_up = asyncio.Event()  # the last connection was closed by the client
        self._requested = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> ScriptedPeer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            pairs = [line.split(": ", 1) for line in head[1:] if ": " in line]
            headers = {name.lower(): value for name, value in pairs}
            self.requests.append((head[0], headers))
            self._requested.set()
            index = len(self.requests) - 1
            script = self.scripts[index] if index < len(self.scripts) else [SSE_HEAD, self.HOLD]
            for part in script:
                if part is self.HOLD:
                    self.hung_up.clear()
                    while await reader.read(4096):
                        pass
                    self.hung_up.set()
                    break
                writer.write(part)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)

    async def wait_requests(self, count: int, within_s: float = 5.0) -> None:
        async with asyncio.timeout(within_s):
            while len(self.requests) < count:
                self._requested.clear()
                await self._requested.wait()

    def last_event_ids(self) -> list[str | None]:
        return [headers.get("last-event-id") for _, headers in self.requests]


async def take(events: AsyncIterator[EdgeEvent], count: int, within_s: float = 10.0) -> list[int]:
    got: list[int] = []
    async with asyncio.timeout(within_s):
        async for event in events:
            got.append(event.id)
            if len(got) == count:
                break
    return got


@pytest.mark.asyncio
async def test_follow_events_resumes_without_loss_or_duplicates() -> None:
    partial = b'id: 3\nevent: stream\ndata: {"id": 3, "ts": "2026-11-24T15:00:00Z"'
    scripts = [
        [SSE_HEAD, sse(1), b": keepalive\n\n", sse(2), partial],  # dropped mid-message
        [error_response(503, "starting")],  # then an error: back off and retry
        [SSE_HEAD, sse(2), sse(3), sse(4, "plate"), b": keepalive\n\n", ScriptedPeer.HOLD],
    ]
    async with ScriptedPeer(scripts) as peer:
        client = EdgeClient(peer.url)
        try:
            events = client.follow_events(last_event_id=0, kinds=("stream", "plate"))
            first = await anext(events)
            assert first.kind == "stream"
            assert first.payload == {"n": 1}
            assert first.ts.isoformat() == "2026-11-24T15:00:00+00:00"
            assert [first.id, *await take(events, 3)] == [1, 2, 3, 4]  # 2 again is skipped
            await events.aclose()
            await asyncio.wait_for(peer.hung_up.wait(), 5)  # the stream was closed
        finally:
            await client.aclose()
        assert peer.last_event_ids() == ["0", "2", "2"]
        for line, headers in peer.requests:
            assert line == "GET /api/events?kinds=stream%2Cplate HTTP/1.1"
            assert headers["accept"] == "text/event-stream"


@pytest.mark.asyncio
async def test_from_now_on_is_anchored_at_the_newest_event() -> None:
    newest = {"id": 41, "ts": "2026-11-24T15:00:00Z", "kind": "stream", "payload": {}}
    scripts = [
        [json_response(200, {"events": [newest]})],
        [SSE_HEAD, sse(41), sse(42), ScriptedPeer.HOLD],  # 41 happened before we followed
    ]
    async with ScriptedPeer(scripts) as peer:
        client = EdgeClient(peer.url)
        try:
            assert await take(client.follow_events(), 1) == [42]
        finally:
            await client.aclose()
        assert peer.requests[0][0] == "GET /api/events/recent?limit=1 HTTP/1.1"
        assert peer.requests[1][1]["last-event-id"] == "41"


@pytest.mark.asyncio
async def test_from_now_on_with_an_edge_without_recent_events_is_live_only() -> None:
    scripts = [[error_response(404, "not_found")], [SSE_HEAD, sse(7), ScriptedPeer.HOLD]]
    async with ScriptedPeer(scripts) as peer:
        client = EdgeClient(peer.url)
        try:
            assert await take(client.follow_events(), 1) == [7]
        finally:
            await client.aclose()
        assert peer.last_event_ids() == [None, None]


@pytest.mark.asyncio
async def test_a_silent_stream_is_dropped_after_the_read_timeout() -> None:
    scripts = [[SSE_HEAD, sse(5), ScriptedPeer.HOLD], [SSE_HEAD, sse(6), ScriptedPeer.HOLD]]
    async with ScriptedPeer(scripts) as peer:
        client = EdgeClient(peer.url, sse_read_timeout_s=0.5)
        try:
            assert await take(client.follow_events(last_event_id=4), 2) == [5, 6]
        finally:
            await client.aclose()
        assert peer.last_event_ids() == ["4", "5"]


@pytest.mark.asyncio
async def test_follow_events_raises_on_auth_errors() -> None:
    async with ScriptedPeer([[error_response(401, "unauthorized")]]) as peer:
        client = EdgeClient(peer.url, "wrong")
        try:
            with pytest.raises(EdgeAuthError) as caught:
                await take(client.follow_events(), 1)
            assert caught.value.status == 401
        finally:
            await client.aclose()
        assert peer.requests[0][1]["authorization"] == "Bearer wrong"


@pytest.mark.asyncio
async def test_aclose_and_cancel_end_a_follow_cleanly() -> None:
    async with ScriptedPeer([[SSE_HEAD, sse(1), ScriptedPeer.HOLD]] * 2) as peer:
        # aclose() while the stream is open: the consumer's loop just ends.
        client = EdgeClient(peer.url)
        seen: list[int] = []
        got_one = asyncio.Event()

        async def consume() -> None:
            async for event in client.follow_events(last_event_id=0):
                seen.append(event.id)
                got_one.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(got_one.wait(), 5)
        await client.aclose()
        await asyncio.wait_for(task, 2)  # ended, no exception
        assert seen == [1]

        # Cancelling the consumer closes the connection.
        other = EdgeClient(peer.url)
        try:
            following = asyncio.create_task(take(other.follow_events(last_event_id=0), 5))
            await peer.wait_requests(2)
            following.cancel()
            with pytest.raises(asyncio.CancelledError):
                await following
            await asyncio.wait_for(peer.hung_up.wait(), 5)
        finally:
            await other.aclose()


@pytest.mark.asyncio
async def test_aclose_during_backoff_ends_the_follow(caplog: pytest.LogCaptureFixture) -> None:
    client = EdgeClient(f"http://127.0.0.1:{free_port()}", timeout_s=1.0)
    with caplog.at_level(logging.DEBUG, logger="console.edge_client"):
        task = asyncio.create_task(take(client.follow_events(), 1))
        await asyncio.sleep(1.6)  # refused at least twice (backoff 0.25-0.5 s, then 0.5-1 s)
        started = time.monotonic()
        await client.aclose()
        assert await asyncio.wait_for(task, 2) == []
        assert time.monotonic() - started < 0.5
    failures = [r for r in caplog.records if "event stream failed" in r.getMessage()]
    assert len(failures) >= 2
    # Logged loudly once, then quietly.
    assert [r.levelno for r in failures].count(logging.WARNING) == 1


async def emit_alert(edge: Edge, n: int) -> int:
    payload = {"code": "test", "severity": "info", "active": True, "message": f"n={n}"}
    event_id = await edge.events.emit("alert", payload)
    assert event_id > 0
    return event_id


@pytest.mark.asyncio
async def test_follow_events_from_a_real_edge_across_a_restart(
    edge_factory: EdgeFactory, keys: Keys
) -> None:
    edge = edge_factory(camera={"source": "synthetic://?width=160&height=90&fps=4"})
    server = await start_edge_server(edge)
    client = EdgeClient(server.url, keys.viewer)
    try:
        first = await emit_alert(edge, 1)
        events = client.follow_events(last_event_id=first - 1, kinds=("alert",))
        got = [await anext(events)]  # stored before we followed: from the store
        second = await emit_alert(edge, 2)  # live
        got.append(await anext(events))
        # The edge's server goes away; events keep happening; it comes back on the same port.
        await server.stop()
        missed = [await emit_alert(edge, 3), await emit_alert(edge, 4)]
        server = await start_edge_server(edge, f"127.0.0.1:{server.port}")
        got += [await asyncio.wait_for(anext(events), 10) for _ in missed]
        last = await emit_alert(edge, 5)
        got.append(await asyncio.wait_for(anext(events), 10))
        await events.aclose()
        assert [e.id for e in got] == [first, second, *missed, last]
        assert [e.payload["message"] for e in got] == [f"n={n}" for n in range(1, 6)]
        assert {e.kind for e in got} == {"alert"}

        recent = await client.recent_events(limit=2, kinds=["alert"])
        assert [e.id for e in recent] == [last, missed[1]]  # newest first
        assert recent[0].ts.tzinfo is not None
    finally:
        await client.aclose()
        await server.stop()


# ---------------------------------------------------------------------- discovery
class Watch:
    """Records a directory's callbacks; :meth:`until` waits for a condition to hold."""

    def __init__(self) -> None:
        self.changed: list[Device] = []
        self.removed: list[str] = []
        self._event = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def on_change(self, device: Device) -> None:
        assert asyncio.get_running_loop() is self.loop  # called on the loop, not a thread
        self.changed.append(device)
        self._event.set()

    def on_removed(self, key: str) -> None:
        assert asyncio.get_running_loop() is self.loop
        self.removed.append(key)
        self._event.set()

    async def until(self, condition: Callable[[], bool], within_s: float) -> None:
        async with asyncio.timeout(within_s):
            while not condition():
                self._event.clear()
                await self._event.wait()


def directory_for(watch: Watch, **kwargs: Any) -> DeviceDirectory:
    return DeviceDirectory(on_change=watch.on_change, on_removed=watch.on_removed, **kwargs)


def online(directory: DeviceDirectory, key: str) -> bool:
    device = directory.devices.get(key)
    return device is not None and device.online


@pytest.mark.asyncio
async def test_directory_finds_merges_and_loses_an_edge_process(tmp_path: Path) -> None:
    # Other tests may run edges on loopback at the same time: assertions are about this one.
    watch = Watch()
    directory = directory_for(watch, interfaces=["127.0.0.1"], probe_interval_s=0.3)
    proc = EdgeProcess(
        tmp_path / "edge", "--source", "synthetic://?width=160&height=90&fps=2",
        "--name", "bay 7", log_level="info",
    )  # fmt: skip
    await directory.start()
    try:
        await asyncio.to_thread(proc.start)  # returns once the edge listens
        listening = time.monotonic()
        dev_id = (tmp_path / "edge" / "device_id").read_text(encoding="utf-8").strip()
        await watch.until(lambda: online(directory, dev_id), 3.0)
        print(f"found {time.monotonic() - listening:.2f} s after the edge listened")
        device = directory.devices[dev_id]
        assert device.url == proc.url
        assert device.name == "bay 7"
        assert device.source == "zeroconf"
        assert device.version == VERSION
        assert "snapshot" in device.caps
        assert device.cfg is not None

        # The same edge added by hand under another spelling of its address: still one device,
        # found by the id in its health answer; the typed URL is used while it answers.
        typed = proc.url.replace("127.0.0.1", "localhost")
        directory.add_manual(typed + "/")
        await watch.until(lambda: directory.devices[dev_id].source == "manual", 5.0)
        mine = [k for k, d in directory.devices.items() if d.url in (typed, proc.url)]
        assert mine == [dev_id]
        assert typed not in directory.devices
        assert directory.devices[dev_id].url == typed
        assert directory.devices[dev_id].name == "bay 7"

        await asyncio.to_thread(proc.stop)
        await watch.until(lambda: not online(directory, dev_id), 5.0)
        assert dev_id in directory.devices  # kept, shown offline
        assert dev_id not in watch.removed
    finally:
        await asyncio.to_thread(proc.stop)
        await directory.stop()
    await directory.stop()  # twice is fine


@pytest.mark.asyncio
async def test_manual_url_is_probed_rekeyed_and_removed(edge_factory: EdgeFactory) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    watch = Watch()
    # No browsing at all: no zeroconf socket is opened.
    directory = directory_for(watch, interfaces=None, browse=False, manual_urls=[url + "/"],
                              probe_interval_s=0.2)  # fmt: skip
    await directory.start()
    server: EdgeServer | None = None
    try:
        # Nothing listens yet: keyed by its URL, offline.
        await watch.until(lambda: url in directory.devices, 3.0)
        device = directory.devices[url]
        assert (device.online, device.source, device.name) == (False, "manual", f"127.0.0.1:{port}")

        edge = edge_factory(camera={"source": "synthetic://?width=160&height=90&fps=2"})
        server = await start_edge_server(edge, f"127.0.0.1:{port}")
        await watch.until(lambda: online(directory, edge.device_id), 3.0)
        assert url not in directory.devices  # moved to its id
        assert watch.removed == [url]
        device = directory.devices[edge.device_id]
        assert (device.url, device.name, device.site) == (url, "test-bay", "test-site")
        assert device.version == VERSION

        await server.stop()
        await watch.until(lambda: not online(directory, edge.device_id), 3.0)
        assert list(directory.devices) == [edge.device_id]  # the id is kept while offline

        server = await start_edge_server(edge, f"127.0.0.1:{port}")
        await watch.until(lambda: online(directory, edge.device_id), 3.0)

        directory.remove_manual(url)
        assert directory.devices == {}
        assert watch.removed == [url, edge.device_id]
    finally:
        await directory.stop()
        if server is not None:
            await server.stop()


@pytest.mark.asyncio
async def test_browsing_directory_starts_and_stops_without_threads() -> None:
    directory = DeviceDirectory(interfaces=["127.0.0.1"], probe_interval_s=0.2)
    before = set(threading.enumerate())
    await directory.start()
    await directory.start()  # twice is fine
    assert set(threading.enumerate()) == before  # zeroconf runs on this loop
    await directory.stop()


@pytest.mark.asyncio
async def test_follow_from_now_on_skips_the_past_of_a_real_edge(
    edge_factory: EdgeFactory, keys: Keys
) -> None:
    edge = edge_factory(camera={"source": "synthetic://?width=160&height=90&fps=4"})
    async with serve_edge(edge) as server:
        client = EdgeClient(server.url, keys.viewer)
        try:
            await emit_alert(edge, 1)  # before following: not wanted
            events = client.follow_events(kinds=("alert",))
            following = asyncio.create_task(anext(events))
            for _ in range(250):  # until the stream is open (a subscriber on the edge)
                if edge.events.subscriber_count:
                    break
                await asyncio.sleep(0.02)
            wanted = await emit_alert(edge, 2)
            event = await asyncio.wait_for(following, 10)
            assert (event.id, event.payload["message"]) == (wanted, "n=2")
            await events.aclose()
        finally:
            await client.aclose()
