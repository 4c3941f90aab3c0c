"""The heartbeat's hot path: the raw-ASGI route (cloud_sync/api/hot.py) — a valid heartbeat
never reaches FastAPI, everything else reaches it with the body intact, so its answers stay the
route's — and key-cache misses looked up together (cloud_sync/devices/lookups.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from cloud_sync.api.hot import HEARTBEAT_PATH, HotHeartbeat
from cloud_sync.devices.keys import DeviceAuth, KeyCache
from cloud_sync.devices.lookups import Found, KeyLookups
from cloud_sync.errors import DatabaseError, Unauthorized
from tests.support.cloud import CloudEnv

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


class Downstream:
    """Stands for FastAPI: records what reached it, answers 299."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.seen.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_a_valid_heartbeat_is_answered_without_fastapi(cloud_env: CloudEnv) -> None:
    env = cloud_env
    device_id, dev = await env.enroll("a1")
    downstream = Downstream()
    hot = HotHeartbeat(downstream, env.cloud, route=object())
    transport = httpx.ASGITransport(app=hot)
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud") as client:
        resp = await client.post(
            HEARTBEAT_PATH, json={"stream_status": "online", "cloud_config_version": 4}, headers=dev
        )
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"interval_s": 30, "commands": []}
        assert resp.headers["content-type"] == "application/json"
        assert downstream.seen == []
        assert len(env.cloud.beats) == 1  # buffered like the route's
        rows, _ = env.cloud.beats.take()
        assert (rows[0]["b_id"], rows[0]["b_stream"], rows[0]["b_cloud_cfg"]) == (
            device_id, "online", 4
        )  # fmt: skip

        admin = await env.login("admin@acme.test")
        unknown = {"Authorization": "Bearer cwd_" + "0" * 32 + "_nope"}
        cases: list[tuple[dict[str, str], Any]] = [
            (dev, b'{"stream_status": "sideways"}'),  # does not validate
            (dev, b'{"bogus": 1}'),  # unknown field
            (dev, b"not json"),
            (unknown, b"{}"),
            (admin, b"{}"),  # a user's token
            ({}, b"{}"),  # no credential
            ({**dev, "Content-Type": "text/plain"}, b"{}"),  # FastAPI does not read it as JSON
        ]
        for headers, body in cases:
            sent = {"Content-Type": "application/json", **headers}
            resp = await client.post(HEARTBEAT_PATH, content=body, headers=sent)
            assert resp.status_code == 299, (headers, body)
            assert downstream.seen.pop() == (HEARTBEAT_PATH, body)
        # Other routes pass through untouched.
        resp = await client.post("/api/v1/ingest", content=b'{"events": []}', headers=dev)
        assert downstream.seen.pop() == ("/api/v1/ingest", b'{"events": []}')


async def test_the_app_answers_heartbeats_as_before(cloud_env: CloudEnv) -> None:
    """Through the whole app: the fast path's answer, and FastAPI's for the rest."""
    env = cloud_env
    _, dev = await env.enroll("a1")
    resp = await env.client.post(HEARTBEAT_PATH, json={"status": "ok"}, headers=dev)
    assert (resp.status_code, resp.json()) == (200, {"interval_s": 30, "commands": []})
    resp = await env.client.post(HEARTBEAT_PATH, json={"status": "meh"}, headers=dev)
    assert resp.status_code == 422
    body = resp.json()
    assert body["error"] == "invalid_request"
    assert [e["path"] for e in body["errors"]] == ["body.status"]
    resp = await env.client.post(HEARTBEAT_PATH, json={}, headers={"Authorization": "Bearer x"})
    assert (resp.status_code, resp.json()["error"]) == (401, "unauthorized")
    text = (await env.client.get("/metrics")).text
    assert f'route="{HEARTBEAT_PATH}",status="200"' in text
    assert f'route="{HEARTBEAT_PATH}",status="422"' in text
    assert json.loads(resp.text)["message"]


async def test_key_cache_misses_are_looked_up_together() -> None:
    calls: list[list[str]] = []

    def lookup(keys: list[str]) -> dict[str, Found]:
        calls.append(sorted(keys))
        return {k: (DeviceAuth(k, "org", "site"), "") if k != "bad" else (None, "unknown")
                for k in keys}  # fmt: skip

    lookups = KeyLookups(lookup)
    wanted = [f"k{i}" for i in range(20)] + ["bad", "k0"]
    found = await asyncio.gather(*(lookups.get(k) for k in wanted))
    assert [f[0].device_id if f[0] else f[1] for f in found] == [*wanted[:20], "unknown", "k0"]
    # The first miss starts a lookup; the rest, arriving meanwhile, share the next one.
    assert len(calls) <= 2
    assert sum(len(c) for c in calls) == 21  # "k0" asked twice, looked up once


async def test_a_failed_lookup_reaches_every_waiter_and_the_next_one_runs() -> None:
    fail = [True]

    def lookup(keys: list[str]) -> dict[str, Found]:
        if fail[0]:
            raise DatabaseError("database error: down")
        return dict.fromkeys(keys, (None, "unknown"))

    lookups = KeyLookups(lookup)
    waiting = [lookups.get(f"k{i}") for i in range(5)]
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, DatabaseError) for r in results)
    fail[0] = False
    assert await lookups.get("k1") == (None, "unknown")


async def test_the_cloud_authenticates_concurrent_misses(cloud_env: CloudEnv) -> None:
    env = cloud_env
    enrolled = [await env.enroll("a1", name=f"bay-{i}") for i in range(3)]
    env.cloud.key_cache = KeyCache(env.cloud.settings.key_cache_ttl_s)  # every key a miss
    keys = [h["Authorization"].removeprefix("Bearer ") for _, h in enrolled]
    found = await asyncio.gather(*(env.cloud.device(k) for k in keys))
    assert [d.device_id for d in found] == [device_id for device_id, _ in enrolled]
    with pytest.raises(Unauthorized):
        await env.cloud.device("cwd_" + "0" * 32 + "_nope")
