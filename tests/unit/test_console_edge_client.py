"""EdgeClient's translation of answers and errors, on httpx's mock transport (no network).

The real edge is exercised in tests/integration/test_console_services.py; here every odd answer
an edge (or something else at its address) may give is produced exactly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from console.services.edge_client import EdgeClient, parse_ts
from console.services.errors import EdgeApiError, EdgeAuthError, EdgeUnreachable
from fleet_common.wire.edge import Health

pytestmark = pytest.mark.unit

Handler = Callable[[httpx.Request], httpx.Response]

HEALTH: dict[str, Any] = {
    "status": "ok", "id": "dev-1", "name": "bay 1", "site": "north", "version": "1.0",
    "uptime_s": 5.0, "stream_status": "online", "components": {"camera": {"status": "ok"}},
}  # fmt: skip


class Peer:
    """Answers with ``handler`` and records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.handler: Handler = lambda request: httpx.Response(500)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


@pytest_asyncio.fixture
async def peer() -> AsyncIterator[tuple[Peer, EdgeClient]]:
    recorder = Peer()
    client = EdgeClient("http://edge:8080/", "k3y", transport=httpx.MockTransport(recorder))
    yield recorder, client
    await client.aclose()


def answer(status: int, body: Any = None, **kwargs: Any) -> Handler:
    return lambda request: httpx.Response(status, json=body, **kwargs)


# ---------------------------------------------------------------------- errors
@pytest.mark.asyncio
@pytest.mark.parametrize("status", [401, 403])
async def test_auth_errors(peer: tuple[Peer, EdgeClient], status: int) -> None:
    recorder, client = peer
    recorder.handler = answer(status, {"error": "forbidden", "message": "needs admin"})
    with pytest.raises(EdgeAuthError) as caught:
        await client.config()
    assert caught.value.status == status
    assert caught.value.message == "needs admin"
    assert caught.value.url == "http://edge:8080"
    assert recorder.requests[0].headers["authorization"] == "Bearer k3y"


@pytest.mark.asyncio
async def test_api_error_with_field_errors(peer: tuple[Peer, EdgeClient]) -> None:
    recorder, client = peer
    body = {"error": "invalid_config", "message": "1 problem",
            "errors": [{"path": "camera.fps", "reason": "too high"}, "junk"]}  # fmt: skip
    recorder.handler = answer(422, body)
    with pytest.raises(EdgeApiError) as caught:
        await client.patch_config({"camera": {"fps": 999}})
    err = caught.value
    assert (err.status, err.code, err.message) == (422, "invalid_config", "1 problem")
    assert err.errors == [{"path": "camera.fps", "reason": "too high"}]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("response", "code", "message"),
    [
        (
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            "http_502",
            "<html>Bad Gateway</html>",
        ),
        (httpx.Response(500, text=""), "http_500", "Internal Server Error"),
        (httpx.Response(500, json=[1, 2]), "http_500", "Internal Server Error"),
        (httpx.Response(404, json={"detail": "Not Found"}), "http_404", "Not Found"),
        (httpx.Response(409, json={"error": 5, "message": None}), "http_409", "Conflict"),
    ],
)
async def test_error_bodies_that_are_not_ours(
    peer: tuple[Peer, EdgeClient], response: httpx.Response, code: str, message: str
) -> None:
    recorder, client = peer
    recorder.handler = lambda request: response
    with pytest.raises(EdgeApiError) as caught:
        await client.info()
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        response.status_code, code, message,
    )  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
async def test_transport_errors_are_unreachable(
    peer: tuple[Peer, EdgeClient], error: httpx.TransportError
) -> None:
    recorder, client = peer

    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    recorder.handler = fail
    with pytest.raises(EdgeUnreachable) as caught:
        await client.health()
    assert caught.value.__cause__ is error
    assert str(error) in str(caught.value)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body", [b"not json", b"[1]", json.dumps({**HEALTH, "name": None}).encode()]
)
async def test_unreadable_answers_are_bad_response(
    peer: tuple[Peer, EdgeClient], body: bytes
) -> None:
    recorder, client = peer
    recorder.handler = lambda request: httpx.Response(200, content=body)
    with pytest.raises(EdgeApiError) as caught:
        await client.health()
    assert caught.value.code == "bad_response"


# ---------------------------------------------------------------------- a newer edge
@pytest.mark.asyncio
async def test_fields_from_a_newer_edge_are_ignored(peer: tuple[Peer, EdgeClient]) -> None:
    recorder, client = peer
    newer = {**HEALTH, "gpu": "hot", "components": {"camera": {"status": "ok", "fps": 5}}}
    recorder.handler = answer(200, newer)
    health = await client.health()
    assert health.name == "bay 1"
    assert health.components["camera"].status == "ok"


@pytest.mark.asyncio
async def test_unknown_fields_do_not_hide_real_problems(peer: tuple[Peer, EdgeClient]) -> None:
    recorder, client = peer
    recorder.handler = answer(200, {**HEALTH, "stream_status": "sideways", "extra": 1})
    with pytest.raises(EdgeApiError, match="stream_status") as caught:
        await client.health()
    assert caught.value.code == "bad_response"
    recorder.handler = answer(200, {**HEALTH, "extra": {"deep": 1}})
    assert (await client.health()).id == "dev-1"
    assert Health.model_validate({**HEALTH, "extra": {"deep": 1}}).id == "dev-1"


# ---------------------------------------------------------------------- pictures
@pytest.mark.asyncio
async def test_picture_headers_are_read_and_checked(peer: tuple[Peer, EdgeClient]) -> None:
    recorder, client = peer
    headers = {"ETag": '"7"', "X-Frame-Seq": "7", "X-Frame-Captured-At": "2026-11-24T15:00:00.250Z",
               "X-Frame-Age-Ms": "31", "X-Stream-Status": "degraded"}  # fmt: skip
    recorder.handler = lambda request: httpx.Response(200, content=b"\xff\xd8jpeg", headers=headers)
    picture = await client.snapshot(width=320, max_age_ms=500, etag='"6"')
    assert picture is not None
    assert (picture.seq, picture.etag, picture.age_ms, picture.stream_status) == (
        7,
        '"7"',
        31.0,
        "degraded",
    )
    assert picture.captured_at == datetime(2026, 11, 24, 15, 0, 0, 250000, tzinfo=UTC)
    sent = recorder.requests[-1]
    assert sent.url.params == httpx.QueryParams({"width": "320", "max_age_ms": "500"})
    assert sent.headers["if-none-match"] == '"6"'

    recorder.handler = lambda request: httpx.Response(
        200, content=b"x", headers={**headers, "X-Frame-Seq": "seven"}
    )
    with pytest.raises(EdgeApiError, match="picture headers"):
        await client.snapshot()
    recorder.handler = lambda request: httpx.Response(304, headers=headers)
    assert await client.snapshot(etag='"7"') is None
    recorder.handler = answer(404, {"error": "not_found", "message": "gone"})
    assert await client.snapshot_at(3) is None
    assert recorder.requests[-1].url.path == "/api/snapshots/3"
    assert await client.plate_crop("/api/plates/r1/crop.jpg") is None
    assert recorder.requests[-1].url.path == "/api/plates/r1/crop.jpg"
    for bad in ("http://elsewhere/x.jpg", "//elsewhere/x.jpg", "/metrics", "/api/x.jpg?a=1"):
        with pytest.raises(ValueError, match="not a crop path"):
            await client.plate_crop(bad)
    with pytest.raises(EdgeApiError) as caught:
        await client.snapshot()  # a 404 for the newest picture is an error, not "none"
    assert caught.value.status == 404


# ---------------------------------------------------------------------- config
@pytest.mark.asyncio
async def test_config_calls_send_what_the_contract_says(peer: tuple[Peer, EdgeClient]) -> None:
    recorder, client = peer
    applied = {"version": 4, "config": {"name": "bay"}, "hot": ["snapshots.jpeg_quality"],
               "restarted": ["camera"]}  # fmt: skip
    recorder.handler = answer(200, applied)

    result = await client.put_config({"name": "bay"}, if_match=3)
    assert (result.version, result.hot, result.restarted) == (
        4,
        ["snapshots.jpeg_quality"],
        ["camera"],
    )
    sent = recorder.requests[-1]
    assert (sent.method, sent.url.path, sent.headers["if-match"]) == ("PUT", "/api/config", '"3"')
    assert json.loads(sent.content) == {"name": "bay"}

    await client.patch_config({"camera": {"fps": None}}, if_match=4)
    sent = recorder.requests[-1]
    assert sent.method == "PATCH"
    assert sent.headers["content-type"] == "application/merge-patch+json"
    assert sent.headers["if-match"] == '"4"'
    assert json.loads(sent.content) == {"camera": {"fps": None}}
    await client.patch_config({})
    assert "if-match" not in recorder.requests[-1].headers

    await client.rollback()
    assert (recorder.requests[-1].url.path, json.loads(recorder.requests[-1].content)) == (
        "/api/config/rollback", {},
    )  # fmt: skip
    await client.rollback(2)
    assert json.loads(recorder.requests[-1].content) == {"version": 2}

    recorder.handler = answer(200, {"version": 2, "config": {"a": 1}}, headers={"ETag": '"2"'})
    doc = await client.config_version(2)
    assert (doc.version, doc.config) == (2, {"a": 1})
    assert recorder.requests[-1].url.path == "/api/config/versions/2"
    assert (await client.config()).version == 2

    recorder.handler = answer(200, {"versions": [
        {"version": 3, "created_at": "2026-11-24T15:00:00Z", "source": "console", "reason": "fps",
         "good": None},
        {"version": 2, "created_at": "2026-11-24T14:00:00+00:00", "source": "cli", "reason": "",
         "good": True},
    ]})  # fmt: skip
    history = await client.config_history(limit=2)
    assert recorder.requests[-1].url.params["limit"] == "2"
    assert [(v.version, v.good, v.source) for v in history] == [
        (3, None, "console"),
        (2, True, "cli"),
    ]
    assert parse_ts(history[0].created_at) == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    recorder.handler = answer(200, {"versions": [
        {"version": 3, "created_at": "yesterday", "source": "console", "reason": "", "good": None},
    ]})  # fmt: skip
    with pytest.raises(EdgeApiError, match="unreadable history") as caught:
        await client.config_history()
    assert caught.value.code == "bad_response"

    recorder.handler = answer(200, {"type": "object", "properties": {}})
    assert (await client.config_schema())["type"] == "object"
    recorder.handler = answer(200, ["not", "a", "schema"])
    with pytest.raises(EdgeApiError, match="schema"):
        await client.config_schema()
    recorder.handler = answer(200, {"version": "x", "config": {}})
    with pytest.raises(EdgeApiError) as caught:
        await client.config()
    assert caught.value.code == "bad_response"


@pytest.mark.asyncio
async def test_recent_events(peer: tuple[Peer, EdgeClient]) -> None:
    recorder, client = peer
    recorder.handler = answer(200, {"events": [
        {"id": 9, "ts": "2026-11-24T15:00:00.000Z", "kind": "plate.read",
         "payload": {"plate": "AB1"}},
    ]})  # fmt: skip
    events = await client.recent_events(limit=5, kinds=["plate.read", "cart"])
    assert [(e.id, e.kind, e.payload) for e in events] == [(9, "plate.read", {"plate": "AB1"})]
    assert recorder.requests[-1].url.params == httpx.QueryParams(
        {"limit": "5", "kinds": "plate.read,cart"}
    )
    recorder.handler = answer(200, {"events": [{"id": "nine"}]})
    with pytest.raises(EdgeApiError, match="unreadable events"):
        await client.recent_events()


@pytest.mark.asyncio
async def test_metrics_text(peer: tuple[Peer, EdgeClient]) -> None:
    recorder, client = peer
    recorder.handler = lambda request: httpx.Response(
        200, text='# TYPE x gauge\ncarwash_edge_temperature_celsius 61.5\nx{a="b"} 2\n'
    )
    assert await client.metrics() == {"carwash_edge_temperature_celsius": 61.5, 'x{a="b"}': 2.0}
    assert recorder.requests[-1].url.path == "/metrics"


@pytest.mark.asyncio
async def test_cart_calls_send_what_the_contract_says(peer: tuple[Peer, EdgeClient]) -> None:
    recorder, client = peer
    cart = {
        "id": 2, "board": 1, "lock": 2, "state": "locked", "previous": "unknown",
        "changed_at": "2026-11-24T15:00:00.000Z", "detail": "", "cart_present": True,
        "bolt_closed": True, "colour": "red",  # a field from a newer edge: ignored
    }  # fmt: skip
    recorder.handler = answer(200, {"enabled": True, "carts": [cart], "boards_down": [3]})
    listed = await client.carts()
    assert listed.enabled is True
    assert [(c.id, c.state, c.cart_present) for c in listed.carts] == [(2, "locked", True)]
    assert listed.boards_down == [3]
    assert (recorder.requests[-1].method, recorder.requests[-1].url.path) == ("GET", "/api/carts")

    result = {"cart": 2, "action": "unlock", "request_id": "r-1", "state": "unlocked",
              "confirmed_at": "2026-11-24T15:00:01.000Z"}  # fmt: skip
    recorder.handler = answer(200, result)
    done = await client.unlock(2, "r-1")
    assert (done.cart, done.action, done.state) == (2, "unlock", "unlocked")
    sent = recorder.requests[-1]
    assert (sent.method, sent.url.path) == ("POST", "/api/carts/2/unlock")
    assert json.loads(sent.content) == {"request_id": "r-1"}
    recorder.handler = answer(200, {**result, "action": "lock", "state": "locked"})
    assert (await client.lock(2, "r-2")).state == "locked"
    assert recorder.requests[-1].url.path == "/api/carts/2/lock"

    recorder.handler = answer(503, {"error": "board_down", "message": "cart 2: board 1 down"})
    with pytest.raises(EdgeApiError) as down:
        await client.unlock(2, "r-3")
    assert (down.value.status, down.value.code) == (503, "board_down")
    recorder.handler = answer(403, {"error": "forbidden", "message": "needs operator"})
    with pytest.raises(EdgeAuthError) as refused:
        await client.lock(2, "r-4")
    assert refused.value.status == 403
    recorder.handler = answer(200, {"cart": 2})
    with pytest.raises(EdgeApiError) as bad:
        await client.unlock(2, "r-5")
    assert bad.value.code == "bad_response"
