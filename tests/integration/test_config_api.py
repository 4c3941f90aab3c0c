"""The live config API: validated, versioned, written atomically, applied without a restart.

In-process tests (ASGI transport, synthetic camera, a real store) cover the API's rules; the
done-when cases run against ``carwash-edge run`` in a subprocess and real RTSP servers.
"""

from __future__ import annotations

import asyncio
import json
import os
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from edge.config import load_config
from edge.keys import KeyStore
from edge.live_config import MASK, ConfigManager, plain
from edge.service import Edge
from tests.conftest import EdgeFactory, Keys, client_for, first_frame
from tests.support.edge_process import PLATES_OFF, EdgeProcess
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.integration

DEAD_CAMERA = "rtsp://127.0.0.1:9/nothing"  # the discard port: connection refused at once


class Live:
    """An in-process edge with its config manager, and an admin client."""

    def __init__(self, edge: Edge, manager: ConfigManager, client: httpx.AsyncClient, keys: Keys):
        self.edge, self.manager, self.client, self.keys = edge, manager, client, keys
        self.admin = keys.auth(keys.admin)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.admin, **kw)

    async def patch(self, body: Any, **headers: str) -> httpx.Response:
        return await self.client.patch("/api/config", json=body, headers={**self.admin, **headers})

    async def put(self, body: Any, **headers: str) -> httpx.Response:
        return await self.client.put("/api/config", json=body, headers={**self.admin, **headers})

    async def config_events(self) -> list[dict[str, Any]]:
        return [e.payload for e in await self.edge.events.recent(50, kinds={"config", "alert"})]


@pytest_asyncio.fixture
async def live(edge_factory: EdgeFactory, keys: Keys, tmp_path: Path) -> AsyncIterator[Live]:
    edge = edge_factory(camera={"rollback_grace_s": 1.0})
    assert edge.store is not None
    await first_frame(edge)
    manager = ConfigManager(edge, edge.store, path=tmp_path / "edge.toml", emit=edge.events.emit)
    await manager.start()
    edge.live = manager
    async with client_for(edge) as client:
        yield Live(edge, manager, client, keys)
    await manager.stop()


def _file_config(path: Path) -> dict[str, Any]:
    return plain(load_config(path))


@pytest.mark.asyncio
async def test_get_config_is_admin_only_versioned_and_masked(live: Live) -> None:
    viewer = await live.client.get("/api/config", headers=live.keys.auth(live.keys.viewer))
    assert viewer.status_code == 403
    got = await live.get("/api/config")
    assert got.status_code == 200
    assert got.headers["etag"] == '"1"'
    assert got.json()["version"] == 1
    assert got.json()["config"]["camera"]["source"] == live.edge.config.camera.source
    schema = (await live.get("/api/config/schema")).json()
    assert schema["$defs"]["CameraConfig"]["properties"]["source"]["x-apply"] == "restart:camera"


@pytest.mark.asyncio
async def test_hot_patch_applies_in_place_and_is_written(live: Live, tmp_path: Path) -> None:
    edge, source, sessions = live.edge, live.edge.source, live.edge.source.stats.sessions
    patch = {"snapshots": {"history": 3, "jpeg_quality": 50},
             "camera": {"freshness_target_ms": 1200}, "http": {"rate_limit_burst": 50}}  # fmt: skip
    answer = await live.patch(patch)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["version"] == 2
    assert answer.headers["etag"] == '"2"'
    assert sorted(body["hot"]) == ["camera.freshness_target_ms", "http.rate_limit_burst",
                                   "snapshots.history", "snapshots.jpeg_quality"]  # fmt: skip
    assert body["restarted"] == []
    # Applied: the cache, the encoder, the limiter and whoever holds a section see it.
    assert (edge.cache.history, edge.cache.quality, edge.encoder.quality) == (3, 50, 50)
    assert edge.config.camera.freshness_target_ms == 1200
    assert edge.source is source  # nothing restarted
    assert edge.source.stats.sessions == sessions
    latest = edge.cache.latest
    assert latest is not None
    await edge.cache.wait_newer(latest.seq, 5.0)
    assert len(edge.cache.snapshots()) <= 3
    # Written: the file loads back to exactly the running config.
    assert _file_config(tmp_path / "edge.toml") == plain(edge.config)
    assert "version 2" in (tmp_path / "edge.toml").read_text(encoding="utf-8")
    history = (await live.get("/api/config/history")).json()["versions"]
    assert [(v["version"], v["source"]) for v in history] == [(2, "api"), (1, "startup")]
    assert history[1]["good"] is True  # the stream was online with it
    assert history[0]["reason"].startswith("PATCH by key ")
    events = await live.config_events()
    assert events[0] == {"version": 2, "action": "applied", "source": "api", "restarted": [],
                         "reason": history[0]["reason"]}  # fmt: skip
    # Who may read /metrics is hot too.
    assert (await live.client.get("/metrics")).status_code == 200
    assert (await live.patch({"http": {"metrics_requires_key": True}})).json()["version"] == 3
    assert (await live.client.get("/metrics")).status_code == 401
    # The same config again changes nothing and makes no version.
    again = await live.patch(patch)
    assert again.json()["version"] == 3
    assert again.json()["hot"] == []


@pytest.mark.asyncio
async def test_bad_config_is_422_with_paths_and_changes_nothing(live: Live, tmp_path: Path) -> None:
    assert (await live.patch({"snapshots": {"history": 5}})).status_code == 200
    path = tmp_path / "edge.toml"
    before, running = path.read_bytes(), plain(live.edge.config)
    current = (await live.get("/api/config")).json()["config"]
    bad = {**current, "camera": {**current["camera"], "source": "ftp://cam", "fps": 3},
           "snapshots": {**current["snapshots"], "history": 0}}  # fmt: skip
    answer = await live.put(bad)
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "invalid_config"
    paths = {e["path"]: e["reason"] for e in body["errors"]}
    assert set(paths) == {"camera.source", "camera.fps", "snapshots.history"}
    assert "unsupported scheme" in paths["camera.source"]
    # Restart-only keys are refused, naming the key; so is a body that is not an object.
    listen = await live.patch({"http": {"listen": "0.0.0.0:9999"}})
    assert listen.status_code == 422
    assert listen.json()["errors"][0]["path"] == "http.listen"
    assert "restart" in listen.json()["errors"][0]["reason"]
    bad_params = await live.patch({"camera": {"source": "synthetic://?fps=abc"}})
    assert bad_params.status_code == 422
    assert bad_params.json()["errors"][0]["path"] == "camera.source"
    not_json = await live.client.put(
        "/api/config", content=b"{nope", headers={**live.admin, "content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert not_json.json()["errors"][0]["path"] == "(root)"
    # Nothing changed: version, running config, file bytes, history.
    assert path.read_bytes() == before
    assert plain(live.edge.config) == running
    assert (await live.get("/api/config")).json()["version"] == 2
    assert len((await live.get("/api/config/history")).json()["versions"]) == 2


@pytest.mark.asyncio
async def test_if_match_guards_against_a_stale_version(live: Live) -> None:
    assert (await live.patch({"site": "A"}, **{"If-Match": '"1"'})).status_code == 200
    stale = await live.patch({"site": "B"}, **{"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["error"] == "version_conflict"
    assert live.edge.config.site == "A"
    assert (await live.patch({"site": "B"}, **{"If-Match": '"2"'})).status_code == 200


@pytest.mark.asyncio
async def test_secrets_are_masked_and_kept(live: Live, tmp_path: Path) -> None:
    secret_url = "synthetic://user:s3cret@bay/?width=160&height=90&fps=20"  # noqa: S105
    assert (await live.patch({"camera": {"source": secret_url, "password": "pw2"}})).is_success
    doc = (await live.get("/api/config")).json()
    assert (
        doc["config"]["camera"]["source"] == "synthetic://user:***@bay/?width=160&height=90&fps=20"
    )
    assert doc["config"]["camera"]["password"] == MASK
    assert "s3cret" not in (await live.get(f"/api/config/versions/{doc['version']}")).text
    # Sent back as shown: nothing changes, the secrets stay.
    same = await live.put(doc["config"], **{"If-Match": f'"{doc["version"]}"'})
    assert same.json()["version"] == doc["version"]
    assert live.edge.config.camera.source == secret_url
    assert "s3cret" in (tmp_path / "edge.toml").read_text(encoding="utf-8")


@pytest.mark.asyncio
async def test_rollback_to_a_version_and_to_the_last_good_one(live: Live) -> None:
    assert (await live.patch({"snapshots": {"history": 4}})).json()["version"] == 2
    assert (await live.patch({"snapshots": {"history": 7}})).json()["version"] == 3
    back = await live.client.post("/api/config/rollback", json={"version": 1}, headers=live.admin)
    assert back.status_code == 200, back.text
    assert back.json()["version"] == 4
    assert back.json()["hot"] == ["snapshots.history"]
    assert live.edge.cache.history == 30
    # Omitted: the newest good version before the running one (3: online when 4 was applied).
    last_good = await live.client.post("/api/config/rollback", headers=live.admin)
    assert last_good.json()["version"] == 5
    assert live.edge.cache.history == 7
    missing = await live.client.post("/api/config/rollback", json={"version": 99},
                                     headers=live.admin)  # fmt: skip
    assert missing.status_code == 404
    assert (await live.get("/api/config/versions/99")).status_code == 404
    assert (await live.get("/api/config/versions/2")).json()["config"]["snapshots"]["history"] == 4
    actions = [e["action"] for e in await live.config_events()]
    assert actions[:2] == ["rolled_back", "rolled_back"]


@pytest.mark.asyncio
async def test_dead_camera_is_rolled_back_in_process(live: Live, tmp_path: Path) -> None:
    good_source = live.edge.config.camera.source
    sub = live.edge.events.subscribe(kinds={"alert", "config"})
    configs, alert = [], None
    with sub:
        answer = await live.patch({"camera": {"source": DEAD_CAMERA}})
        assert answer.json()["restarted"] == ["camera"]
        async with asyncio.timeout(10):
            while alert is None:  # until the rollback's alert (the stream's own may come too)
                event = await sub.get()
                assert event is not None
                if event.kind == "config":
                    configs.append(event.payload)
                elif event.payload["code"] == "config_rollback":
                    alert = event.payload
    assert [c["action"] for c in configs] == ["applied", "auto_rolled_back"]
    rolled = configs[1]
    assert (rolled["version"], rolled["source"], rolled["restarted"]) == (
        3, "auto-rollback", ["camera"]
    )  # fmt: skip
    assert "back to version 1" in rolled["reason"]
    assert alert["severity"] == "warning"
    assert live.edge.config.camera.source == good_source
    assert _file_config(tmp_path / "edge.toml")["camera"]["source"] == good_source
    history = (await live.get("/api/config/history")).json()["versions"]
    assert [(v["version"], v["source"]) for v in history] == [
        (3, "auto-rollback"), (2, "api"), (1, "startup")
    ]  # fmt: skip
    assert history[1]["good"] is False
    assert history[2]["good"] is True


# ---------------------------------------------------------------------- against a real edge
@pytest.fixture(scope="module")
def cameras() -> Iterator[tuple[RtspServer, RtspServer]]:
    """Two small live RTSP cameras (cheap to encode on two shared cores)."""
    with (
        RtspServer("live", width=320, height=180, fps=10, gop=10) as one,
        RtspServer("live", width=320, height=180, fps=10, gop=10) as two,
    ):
        yield one, two


def _start_edge(tmp_path: Path, source: str, **camera: object) -> tuple[EdgeProcess, str, Path]:
    key, _ = KeyStore.in_dir(tmp_path).create("admin", "test")
    path = tmp_path / "bay.toml"
    lines = ['name = "bay-1"', "", "[camera]", f'source = "{source}"']
    lines += [f"{k} = {v!r}" for k, v in camera.items()]
    path.write_text("\n".join(lines) + "\n" + PLATES_OFF, encoding="utf-8")
    proc = EdgeProcess(tmp_path, "--config", str(path), log_level="info").start()
    return proc, key, path


def _client_addr(response: httpx.Response) -> Any:
    """The client side (address, port) of the TCP connection that carried ``response``."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


def _info(client: httpx.Client) -> dict[str, Any]:
    answer = client.get("/api/snapshot/info")
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def _wait_newer(client: httpx.Client, seq: int) -> int:
    """Long-poll for a picture newer than ``seq``; its seq."""
    answer = client.get("/api/snapshot", params={"wait_newer_than": seq})
    assert answer.status_code == 200, answer.text
    return int(answer.headers["x-frame-seq"])


def test_hot_put_keeps_process_connection_and_stream(
    cameras: tuple[RtspServer, RtspServer], tmp_path: Path
) -> None:
    edge, key, path = _start_edge(tmp_path, cameras[0].url)
    try:
        edge.wait_online()
        with edge.client(key) as client:
            doc = client.get("/api/config")
            addr, before = _client_addr(doc), _info(client)
            uptime = client.get("/api/health").json()["uptime_s"]
            config = doc.json()["config"]
            config["camera"]["freshness_target_ms"] = 1500  # how old a served picture may get
            config["snapshots"]["history"] = 4
            answer = client.put(
                "/api/config", json=config, headers={"If-Match": doc.headers["etag"]}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["restarted"] == []
            assert "camera.freshness_target_ms" in answer.json()["hot"]
            seq = _wait_newer(client, before["latest"]["seq"])
            _wait_newer(client, seq)
            after = _info(client)
            # Same connection, same process, same camera session; the new values in force.
            assert _client_addr(client.get("/api/config")) == addr
            assert client.get("/api/health").json()["uptime_s"] > uptime
            assert after["source"]["sessions"] == before["source"]["sessions"]
            assert after["source"]["connected"]
            assert after["latest"]["seq"] > before["latest"]["seq"]
            assert len(client.get("/api/snapshots").json()["snapshots"]) <= 4
            assert load_config(path).camera.freshness_target_ms == 1500
            # A bad one: 422 with the path; file, version and running config unchanged.
            written = path.read_bytes()
            config["camera"]["freshness_target_ms"] = 5  # below the minimum
            bad = client.put("/api/config", json=config)
            assert bad.status_code == 422
            assert [e["path"] for e in bad.json()["errors"]] == ["camera.freshness_target_ms"]
            assert path.read_bytes() == written
            now = client.get("/api/config")
            assert now.headers["etag"] == answer.headers["etag"]
            assert now.json()["config"]["camera"]["freshness_target_ms"] == 1500
            assert _client_addr(now) == addr
    finally:
        assert edge.stop() == 0


def test_rtsp_url_change_restarts_only_the_source(
    cameras: tuple[RtspServer, RtspServer], tmp_path: Path
) -> None:
    first, second = cameras
    edge, key, path = _start_edge(tmp_path, first.url)
    try:
        edge.wait_online()
        with edge.client(key) as client:
            before = _info(client)
            addr = _client_addr(client.get("/api/config"))
            answer = client.patch("/api/config", json={"camera": {"source": second.url}})
            assert answer.status_code == 200, answer.text
            assert answer.json()["restarted"] == ["camera"]
            assert answer.json()["hot"] == []
            seq = before["latest"]["seq"]
            while True:  # long-polls, each answered by a new picture
                seq = _wait_newer(client, seq)
                info = _info(client)
                if info["source"]["url"] == second.url and info["stream_status"] == "online":
                    break
            assert info["source"]["sessions"] == before["source"]["sessions"] + 1
            assert info["latest"]["seq"] > before["latest"]["seq"]  # numbering continues
            assert _client_addr(client.get("/api/config")) == addr  # HTTP never went away
            assert load_config(path).camera.source == second.url
    finally:
        assert edge.stop() == 0


def test_dead_camera_is_rolled_back_automatically(
    cameras: tuple[RtspServer, RtspServer], tmp_path: Path
) -> None:
    good = cameras[0].url
    edge, key, path = _start_edge(tmp_path, good, rollback_grace_s=2.0)
    try:
        edge.wait_online()
        with (
            edge.client(key) as client,
            client.stream(
                "GET", "/api/events", params={"kinds": "config,alert"}, timeout=20
            ) as events,
        ):
            answer = client.patch("/api/config", json={"camera": {"source": DEAD_CAMERA}})
            assert answer.status_code == 200, answer.text
            assert answer.json()["restarted"] == ["camera"]
            received, alert = [], None
            for line in events.iter_lines():  # until the rollback's alert (others may come)
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["kind"] == "config":
                        received.append(event["payload"])
                    elif event["payload"]["code"] == "config_rollback":
                        alert = event["payload"]
                        break
            assert [e["action"] for e in received] == ["applied", "auto_rolled_back"]
            rolled = received[1]
            assert rolled["version"] == 3
            assert rolled["source"] == "auto-rollback"
            assert "back to version 1" in rolled["reason"]
            assert alert is not None
            assert alert["active"]
            assert "back to version 1" in alert["message"]
            assert client.get("/api/config").json()["config"]["camera"]["source"] == good
            assert load_config(path).camera.source == good
            history = client.get("/api/config/history").json()["versions"]
            assert [(v["version"], v["source"]) for v in history] == [
                (3, "auto-rollback"), (2, "api"), (1, "startup")
            ]  # fmt: skip
            assert history[1]["good"] is False
        edge.wait_online()
        assert "back to version 1" in edge.log
    finally:
        assert edge.stop() == 0


def test_the_written_file_is_read_at_the_next_start(tmp_path: Path) -> None:
    """Without --config, the API writes DATA_DIR/edge.toml, and the next start reads it."""
    key, _ = KeyStore.in_dir(tmp_path).create("admin", "test")
    source = "synthetic://?width=160&height=90&fps=5"
    with (
        EdgeProcess(tmp_path, "--source", source, log_level="info") as edge,
        edge.client(key) as client,
    ):
        answer = client.patch("/api/config", json={"site": "Nord", "snapshots": {"history": 9}})
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 2
        # The runner's components restart alone too.
        parts = {"guards": {"check_interval_s": 2}, "discovery": {"enabled": False}}
        answer = client.patch("/api/config", json=parts)
        assert answer.json()["restarted"] == ["discovery", "guards"]
        assert client.get("/api/health").status_code == 200
    written = tmp_path / "edge.toml"
    data = tomllib.loads(written.read_text(encoding="utf-8"))
    assert data["site"] == "Nord"
    assert data["snapshots"]["history"] == 9
    # Flags (--source, --listen, --data-dir) last one run: they are not written into the file.
    assert "source" not in data["camera"]
    assert "listen" not in data["http"]
    assert "data_dir" not in data
    assert oct(os.stat(written).st_mode & 0o777) == "0o600"
    with (
        EdgeProcess(tmp_path, "--source", source, log_level="info") as edge,
        edge.client(key) as client,
    ):
        doc = client.get("/api/config").json()
        assert doc["config"]["site"] == "Nord"
        assert doc["config"]["snapshots"]["history"] == 9
        assert doc["config"]["guards"]["check_interval_s"] == 2
        assert doc["version"] == 3  # the same config: no new version
