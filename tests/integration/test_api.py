"""The HTTP API in-process (httpx's ASGI transport) on a running synthetic camera."""

from __future__ import annotations

import re
from datetime import datetime

import cv2
import numpy as np
import pytest

from edge.api import create_app
from edge.api.routes import OPEN_DOC_PATHS
from tests.conftest import EdgeFactory, Keys, client_for, first_frame

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def test_routes_need_the_right_role(edge_factory: EdgeFactory, keys: Keys) -> None:
    edge = edge_factory()
    await first_frame(edge)
    async with client_for(edge) as client:
        r = await client.get("/api/snapshot")
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = await client.get("/api/snapshot", headers=Keys.auth("cwe_deadbeef_forged"))
        assert r.status_code == 401
        assert "not valid" in r.json()["message"]
        r = await client.get("/api/snapshot", headers={"Authorization": f"Basic {keys.viewer}"})
        assert r.status_code == 401
        r = await client.get("/api/keys", headers=Keys.auth(keys.viewer))
        assert r.status_code == 403
        assert r.json() == {
            "error": "forbidden",
            "message": "this route needs the admin role; the key has viewer",
        }
        r = await client.get("/api/config", headers=Keys.auth(keys.operator))
        assert r.status_code == 403
        r = await client.get("/api/keys", headers=Keys.auth(keys.admin))
        assert r.status_code == 200
        assert {k["role"] for k in r.json()["keys"]} == {"viewer", "operator", "admin"}
        assert keys.admin not in r.text
        assert (
            await client.get("/api/snapshot", headers=Keys.auth(keys.viewer))
        ).status_code == 200
        # Open routes.
        assert (await client.get("/api/health")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/openapi.json")).status_code == 200
        assert (await client.get("/nope")).status_code == 404
        assert (await client.post("/api/snapshot")).status_code == 405


async def test_metrics_can_require_a_key(edge_factory: EdgeFactory, keys: Keys) -> None:
    edge = edge_factory(http={"metrics_requires_key": True})
    async with client_for(edge) as client:
        assert (await client.get("/metrics")).status_code == 401
        r = await client.get("/metrics", headers=Keys.auth(keys.viewer))
        assert r.status_code == 200
        assert "carwash_edge_http_request_duration_seconds_bucket" in r.text


async def test_config_hides_secrets(edge_factory: EdgeFactory, keys: Keys) -> None:
    edge = edge_factory(
        camera={"source": "synthetic://?fps=5", "username": "u", "password": "hunter2"}
    )
    async with client_for(edge) as client:
        r = await client.get("/api/config", headers=Keys.auth(keys.admin))
    assert r.status_code == 200
    assert r.json()["config"]["camera"]["username"] == "u"
    assert "hunter2" not in r.text


async def test_noisy_client_is_limited_alone(edge_factory: EdgeFactory, keys: Keys) -> None:
    edge = edge_factory(http={"rate_limit_per_s": 1, "rate_limit_burst": 5})
    async with (
        client_for(edge, ("10.0.0.1", 1)) as noisy,
        client_for(edge, ("10.0.0.2", 1)) as calm,
    ):
        codes = [(await noisy.get("/api/health")).status_code for _ in range(20)]
        assert codes[:5] == [200] * 5
        assert set(codes[5:]) == {429}
        r = await noisy.get("/api/health")
        assert r.json()["error"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
        assert (await calm.get("/api/health")).status_code == 200
        # A key is its own client, wherever it comes from.
        assert (
            await noisy.get("/api/snapshot/info", headers=Keys.auth(keys.viewer))
        ).status_code == 200


async def test_snapshot_headers_etag_and_width(edge_factory: EdgeFactory, keys: Keys) -> None:
    edge = edge_factory()
    await first_frame(edge)
    auth = Keys.auth(keys.viewer)
    async with client_for(edge) as client:
        r = await client.get("/api/snapshot", headers=auth)
        assert r.status_code == 200
        assert r.headers["content-type"] == "image/jpeg"
        seq = int(r.headers["x-frame-seq"])
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r.headers["x-frame-captured-at"]
        )
        datetime.fromisoformat(r.headers["x-frame-captured-at"])
        assert 0 <= int(r.headers["x-frame-age-ms"]) < 2000
        assert r.headers["x-stream-status"] == "online"
        assert r.headers["etag"].endswith(f'-{seq}"')
        image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (180, 320, 3)

        r304 = await client.get(
            f"/api/snapshots/{seq}", headers={**auth, "If-None-Match": r.headers["etag"]}
        )
        assert r304.status_code == 304
        assert r304.content == b""
        assert r304.headers["x-frame-seq"] == str(seq)

        small = await client.get(f"/api/snapshots/{seq}?width=160", headers=auth)
        assert small.status_code == 200
        assert small.headers["etag"] != r.headers["etag"]
        image = cv2.imdecode(np.frombuffer(small.content, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (90, 160, 3)
        again = await client.get(
            f"/api/snapshots/{seq}?width=160",
            headers={**auth, "If-None-Match": small.headers["etag"]},
        )
        assert again.status_code == 304

        for bad in ("width=abc", "width=3", "max_age_ms=-1", "wait_newer_than=x"):
            r = await client.get(f"/api/snapshot?{bad}", headers=auth)
            assert r.status_code == 422, bad
            assert r.json()["error"] == "invalid_request"


async def test_long_poll_and_history(edge_factory: EdgeFactory, keys: Keys) -> None:
    edge = edge_factory(snapshots={"history": 5})
    await first_frame(edge)
    auth = Keys.auth(keys.viewer)
    async with client_for(edge) as client:
        first = await client.get("/api/snapshot", headers=auth)
        seq = int(first.headers["x-frame-seq"])
        newer = await client.get(f"/api/snapshot?wait_newer_than={seq}", headers=auth)
        assert newer.status_code == 200
        assert int(newer.headers["x-frame-seq"]) > seq
        listing = (await client.get("/api/snapshots", headers=auth)).json()["snapshots"]
        seqs = [s["seq"] for s in listing]
        assert seqs == sorted(seqs, reverse=True)
        assert 1 <= len(seqs) <= 5
        kept = listing[-1]
        r = await client.get(f"/api/snapshots/{kept['seq']}", headers=auth)
        assert r.status_code == 200
        assert len(r.content) == kept["bytes"]
        r = await client.get("/api/snapshots/1", headers=auth)  # long evicted by now
        newest = int(newer.headers["x-frame-seq"])
        if newest > 6:
            assert r.status_code == 404
            assert r.json()["error"] == "not_found"


async def test_no_frame_yet_is_503_json_never_an_empty_200(
    edge_factory: EdgeFactory, keys: Keys
) -> None:
    # Port 9 on loopback: nothing listens, the reader keeps retrying.
    edge = edge_factory(
        camera={"source": "rtsp://127.0.0.1:9/none", "connect_timeout_s": 0.5},
        snapshots={"max_wait_ms": 200, "long_poll_s": 0.2},
    )
    auth = Keys.auth(keys.viewer)
    async with client_for(edge) as client:
        for query in ("", "?max_age_ms=100", "?wait_newer_than=0"):
            r = await client.get(f"/api/snapshot{query}", headers=auth)
            assert r.status_code == 503, query
            assert r.json()["error"] == "no_frame"
            assert r.json()["stream_status"] == "offline"
        health = (await client.get("/api/health")).json()
        assert health["stream_status"] == "offline"
        assert health["components"]["camera"]["status"] == "failing"
        assert (await client.get("/api/health?ready=true")).status_code == 503
        info = (await client.get("/api/snapshot/info", headers=auth)).json()
        assert info["latest"] is None
        assert info["source"]["connected"] is False


async def test_every_served_route_is_in_the_role_table(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(start=False)
    guard = create_app(edge)
    fastapi_paths = {route.path for route in guard.inner.routes}  # type: ignore[attr-defined]
    listed = {route.template for route in guard.table.routes}
    assert fastapi_paths - listed <= OPEN_DOC_PATHS
    doc = guard.inner.openapi()  # type: ignore[attr-defined]
    for route in guard.table.routes:
        operation = doc["paths"][route.template][route.method.lower()]
        assert operation["x-required-role"] == route.role
        assert bool(operation["security"]) == (route.role is not None)
