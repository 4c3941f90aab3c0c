"""H1 §2: secrets round-trip and stay out of stored versions, bad input gets a documented 4xx
(never a 500, never the input echoed), limits on bodies, headers and streams, last-good
rollback, a private data folder, an offline API reference."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import subprocess
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.api.asgi import MAX_INT
from edge.api.pictures import PictureRoutes
from edge.config import load_config
from edge.live_config import MASK, SECRETS, plain
from tests.conftest import EdgeFactory, Keys, client_for, first_frame
from tests.integration.test_config_api import DEAD_CAMERA, Live
from tests.integration.test_config_api import live as live  # the fixture
from tests.support.serve_edge import serve_edge

pytestmark = pytest.mark.integration

_SAMPLE_URLS = {
    "synthetic": "synthetic://user:s3cret-url@bay/?width=160&height=90&fps=20",
    "http": "http://user:s3cret-url@127.0.0.1:9/v1/?token=s3cret-query",
}


def _secret_value(path: str, current: Any) -> tuple[Any, list[str]]:
    """A value to set for a secret leaf, and the clear strings that must never be shown."""
    if SECRETS[path] == "secret":
        return f"s3cret-{path}", [f"s3cret-{path}"]
    scheme = "synthetic" if str(current).startswith("synthetic") else "http"
    return _SAMPLE_URLS[scheme], ["s3cret-url", "s3cret-query"]


def _nest(path: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for key in reversed(path.split(".")):
        out = {key: out}
    assert isinstance(out, dict)
    return out


def _get(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data[key]
    return data


def _stored_versions(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return "\n".join(r[0] for r in conn.execute("SELECT config_json FROM config_versions"))


@pytest.mark.asyncio
@pytest.mark.parametrize("path", sorted(SECRETS))
async def test_every_secret_survives_later_writes_and_stays_out_of_versions(
    live: Live, tmp_path: Path, path: str
) -> None:
    value, clear = _secret_value(path, _get(plain(live.edge.config), path))
    assert (await live.patch(_nest(path, value))).status_code == 200
    # Any later write (the bug: it wrote the masked value over the secret).
    assert (await live.patch({"site": "after"})).status_code == 200
    doc = (await live.get("/api/config")).json()
    shown = _get(doc["config"], path)
    assert MASK in shown
    assert (await live.put(doc["config"])).status_code == 200  # sent back as shown: kept
    assert _get(plain(live.edge.config), path) == value
    assert _get(plain(load_config(tmp_path / "edge.toml")), path) == value  # the next start
    stored = _stored_versions(tmp_path / "edge.db")
    assert not [c for c in clear if c in stored], "a secret is stored in clear"
    assert "**********" not in (tmp_path / "edge.toml").read_text(encoding="utf-8")
    for version in (1, doc["version"]):
        text = (await live.get(f"/api/config/versions/{version}")).text
        assert not [c for c in clear if c in text]


@pytest.mark.asyncio
async def test_rollback_restores_the_versions_own_secret(live: Live) -> None:
    assert (await live.patch({"plates": {"cloud": {"token": "tok-a"}}})).status_code == 200
    version_a = live.manager.version
    assert (await live.patch({"plates": {"cloud": {"token": "tok-b"}}})).status_code == 200
    back = await live.client.post(
        "/api/config/rollback", json={"version": version_a}, headers=live.admin
    )
    assert back.status_code == 200, back.text
    token = live.edge.config.plates.cloud.token
    assert token is not None
    assert token.get_secret_value() == "tok-a"


@pytest.mark.asyncio
async def test_null_in_a_merge_patch_resets_the_key_to_its_default(live: Live) -> None:
    assert (await live.patch({"snapshots": {"history": 4}})).status_code == 200
    assert live.edge.config.snapshots.history == 4
    reset = await live.patch({"snapshots": {"history": None}})
    assert reset.status_code == 200
    assert reset.json()["config"]["snapshots"]["history"] == 30  # the default
    spec = (await live.get("/openapi.json")).json()["paths"]["/api/config"]["patch"]
    assert "null" in spec["description"]
    assert "default" in spec["description"]


@pytest.mark.asyncio
async def test_config_bodies_must_be_json(live: Live) -> None:
    text = await live.client.patch(
        "/api/config", content=b'{"site": "x"}',
        headers={**live.admin, "Content-Type": "text/plain"},
    )  # fmt: skip
    assert text.status_code == 415
    assert text.json()["error"] == "unsupported_media_type"
    assert live.edge.config.site != "x"
    merge = await live.client.patch(
        "/api/config", content=b'{"site": "y"}',
        headers={**live.admin, "Content-Type": "application/merge-patch+json"},
    )  # fmt: skip
    assert merge.status_code == 200
    assert live.edge.config.site == "y"
    broken = await live.client.patch(
        "/api/config", content=b"{nope", headers={**live.admin, "Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert set(broken.json()) >= {"error", "message"}


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["put", "patch"])
async def test_deeply_nested_config_json_is_a_4xx(live: Live, method: str) -> None:
    for depth in (40, 100_000):
        body = '{"camera": ' * 2 + "[" * depth + "]" * depth + "}" * 2
        answer = await live.client.request(
            method.upper(), "/api/config", content=body.encode(),
            headers={**live.admin, "Content-Type": "application/json"},
        )  # fmt: skip
        assert answer.status_code == 422, answer.text[:300]
        assert answer.json()["error"] == "invalid_config"


@pytest.mark.asyncio
async def test_huge_ids_are_404_or_422_in_the_error_shape(live: Live) -> None:
    viewer = live.keys.auth(live.keys.viewer)
    cases = [
        (viewer, "get", "/api/plates/950681644718906933248", None),
        (viewer, "get", f"/api/plates/{MAX_INT + 1}", None),
        (viewer, "get", f"/api/plates/{MAX_INT + 1}/crop.jpg", None),
        (viewer, "get", "/api/plates?before_id=99999999999999999999", None),
        (viewer, "get", "/api/events?after=99999999999999999999", None),
        (live.admin, "get", f"/api/config/versions/{MAX_INT + 1}", None),
        (live.admin, "get", "/api/config/versions/99999999999999999999999", None),
        (live.admin, "post", "/api/config/rollback", {"version": 2**64}),
    ]
    for headers, method, url, body in cases:
        answer = await live.client.request(method.upper(), url, headers=headers, json=body)
        assert answer.status_code in (404, 422), (url, answer.status_code, answer.text)
        assert set(answer.json()) >= {"error", "message"}, answer.text
        assert "detail" not in answer.json()
    assert (await live.get(f"/api/config/versions/{MAX_INT}")).status_code == 404


@pytest.mark.asyncio
async def test_errors_never_echo_the_input_and_bodies_are_capped(live: Live) -> None:
    operator = live.keys.auth(live.keys.operator)
    marker = "Z" * 400_000
    bad = await live.client.post(
        "/api/plates/recognize", json={"max_age_ms": marker}, headers=operator
    )
    assert bad.status_code == 422
    assert len(bad.content) < 2000
    assert "ZZZZ" not in bad.text
    assert set(bad.json()) == {"error", "message", "errors"}
    assert bad.json()["errors"][0]["path"] == "body.max_age_ms"
    huge = await live.client.post(
        "/api/plates/recognize", content=b"[" + b"1," * 2_000_000 + b"1]",
        headers={**operator, "Content-Type": "application/json"},
    )  # fmt: skip
    assert huge.status_code == 413
    assert huge.json()["error"] == "payload_too_large"
    form = await live.client.post(
        "/api/carts/1/unlock", content=b"request_id=1",
        headers={**operator, "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert form.status_code == 415
    assert set(form.json()) == {"error", "message"}


@pytest.mark.asyncio
async def test_non_ascii_digits_are_refused(live: Live) -> None:
    viewer = live.keys.auth(live.keys.viewer)
    for url in (
        "/api/snapshot?width=\u0661\u0662\u0663",
        "/api/plates?limit=\u0661\u0662",
        "/api/snapshots?limit=\u0665",
    ):
        answer = await live.client.get(url, headers=viewer)
        assert answer.status_code == 422, (url, answer.text)
        assert "error" in answer.json()


@pytest.mark.asyncio
async def test_query_string_credentials_are_masked_in_health_info_and_log(
    edge_factory: EdgeFactory, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source = "rtsp://127.0.0.1:9/cam/realmonitor?channel=1&user=admin&password=hunter2"
    edge = edge_factory(camera={"source": source})
    async with client_for(edge) as client:
        health = await client.get("/api/health")
        info = await client.get("/api/snapshot/info", headers=keys.auth(keys.viewer))
    assert "user=admin&password=***" in info.text
    for text in (health.text, info.text, caplog.text):
        assert "hunter2" not in text


@pytest.mark.asyncio
async def test_openapi_documents_every_error_and_docs_are_offline(live: Live) -> None:
    spec = (await live.get("/openapi.json")).json()
    paths = spec["paths"]
    for template in ("/api/snapshot", "/api/stream.mjpeg", "/api/events", "/metrics"):
        operation = paths[template]["get"]
        assert {"401", "403", "429"} <= set(operation["responses"]), template
    assert "404" in paths["/api/plates/{read_id}/crop.jpg"]["get"]["responses"]
    assert "HTTPValidationError" not in json.dumps(spec)
    assert {"413", "415"} <= set(paths["/api/config"]["patch"]["responses"])
    page = await live.client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/api/plates/{read_id}/crop.jpg" in page.text
    assert "<script" not in page.text
    hosts = set(re.findall(r"(?:https?:)?//([A-Za-z0-9.-]+\.[A-Za-z]{2,})", page.text))
    assert hosts == set(), hosts
    for url in ("/docs", "/openapi.json", "/redoc"):
        text = (await live.client.get(url)).text
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), url
        assert "cdn" not in text.lower(), url


@pytest.mark.asyncio
async def test_two_bad_camera_changes_roll_back_to_the_last_good(live: Live) -> None:
    good_source = live.edge.config.camera.source
    with live.edge.events.subscribe(kinds={"config"}) as sub:
        assert (await live.patch({"camera": {"source": DEAD_CAMERA}})).status_code == 200
        second = await live.patch({"camera": {"source": DEAD_CAMERA.replace(":9/", ":7/")}})
        assert second.status_code == 200
        async with asyncio.timeout(15):
            while True:
                event = await sub.get()
                assert event is not None
                if event.payload["action"] == "auto_rolled_back":
                    break
    assert "back to version 1" in event.payload["reason"]
    assert live.edge.config.camera.source == good_source


@pytest.mark.asyncio
async def test_one_key_cannot_hold_unbounded_streams_and_slow_headers_are_cut(
    edge_factory: EdgeFactory, keys: Keys
) -> None:
    edge = edge_factory(http={"max_streams_per_client": 2, "header_timeout_s": 0.5})
    await first_frame(edge)
    async with serve_edge(edge) as served, httpx.AsyncClient(base_url=served.url) as client:
        viewer = keys.auth(keys.viewer)
        async with (
            client.stream("GET", "/api/events", headers=viewer) as one,
            client.stream("GET", "/api/stream.mjpeg?fps=1", headers=viewer) as two,
        ):
            assert (one.status_code, two.status_code) == (200, 200)
            third = await client.get("/api/events", headers=viewer)
            assert third.status_code == 429
            assert third.json()["error"] == "too_many_streams"
            other = keys.auth(keys.operator)  # another key has its own allowance
            async with client.stream("GET", "/api/events", headers=other) as mine:
                assert mine.status_code == 200
        # Streams closed: the allowance is back.
        async with client.stream("GET", "/api/events", headers=viewer) as again:
            assert again.status_code == 200
        # A client that never finishes its headers is disconnected.
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: edge\r\nX-Slow: ")
        await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()


@pytest.mark.asyncio
async def test_mjpeg_viewers_end_cleanly_when_the_server_stops(edge_factory: EdgeFactory) -> None:
    edge = edge_factory()
    await first_frame(edge)
    pictures = PictureRoutes(edge)
    sent: list[MutableMapping[str, Any]] = []
    part = asyncio.Event()
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message.get("body"):
            part.set()

    scope = {"type": "http", "query_string": b"fps=5", "headers": []}
    task = asyncio.ensure_future(pictures.mjpeg(scope, receive, send))
    async with asyncio.timeout(10):
        await part.wait()
        pictures.end_streams()
        await task  # returns: no CancelledError for uvicorn to log
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


def test_run_exits_2_when_the_data_dir_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    data_dir = blocker / "data"
    done = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--data-dir", str(data_dir),
         "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"data dir {data_dir} is not writable" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_systemd_unit_allows_the_connection_cap_in_open_files() -> None:
    from edge.config import HttpConfig
    from tests.conftest import ROOT

    unit = (ROOT / "packaging/systemd/carwash-edge.service").read_text(encoding="utf-8")
    found = re.search(r"^LimitNOFILE=(\d+)$", unit, re.M)
    assert found is not None
    assert int(found.group(1)) >= 4 * HttpConfig().max_connections
