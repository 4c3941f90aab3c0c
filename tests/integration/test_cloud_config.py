"""Config templates, assignments, delivery (long-poll), rollouts and members, in-process, on
SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.support.cloud import CloudEnv

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

BASE: dict[str, Any] = {"snapshots": {"history": 10}}


@pytest_asyncio.fixture
async def env(cloud_env: CloudEnv) -> AsyncIterator[CloudEnv]:
    """The cloud with its background loops (long-poll watch, rollout engine) running."""
    await cloud_env.cloud.start()
    try:
        yield cloud_env
    finally:
        await cloud_env.cloud.stop()


async def template(
    env: CloudEnv, admin: dict[str, str], config: dict[str, Any], name: str = "t"
) -> int:
    resp = await env.client.post(
        "/api/v1/config/templates", json={"name": name, "config": config}, headers=admin
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["versions"][0]["id"])


async def new_version(
    env: CloudEnv, admin: dict[str, str], template_id: str, config: dict[str, Any]
) -> int:
    resp = await env.client.post(
        f"/api/v1/config/templates/{template_id}/versions", json={"config": config}, headers=admin
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


async def assign(env: CloudEnv, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = await env.client.put("/api/v1/config/assignments", json=body, headers=admin)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def fetch(env: CloudEnv, dev: dict[str, str], **params: Any) -> Any:
    return await env.client.get("/api/v1/devices/config", params=params, headers=dev)


async def beat(
    env: CloudEnv, dev: dict[str, str], version: int | None, stream: str = "online"
) -> None:
    body = {"status": "ok", "stream_status": stream, "cloud_config_version": version}
    resp = await env.client.post("/api/v1/devices/heartbeat", json=body, headers=dev)
    assert resp.status_code == 200, resp.text


async def step(env: CloudEnv) -> None:
    """Write buffered heartbeats, then one rollout engine step (what the loops do each second)."""
    await asyncio.to_thread(env.cloud.flush)
    await asyncio.to_thread(env.cloud.advance_rollouts)


async def progress(env: CloudEnv, admin: dict[str, str], rollout_id: str) -> dict[str, Any]:
    resp = await env.client.get(f"/api/v1/rollouts/{rollout_id}", headers=admin)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


# ---------------------------------------------------------------------- templates, assignments
async def test_a_bad_template_is_refused_with_paths(cloud_env: CloudEnv) -> None:
    env = cloud_env
    admin = await env.login("admin@acme.test")
    bad = {"snapshots": {"history": "often", "nonsense": 1}, "bogus": {}}
    resp = await env.client.post(
        "/api/v1/config/templates", json={"name": "t", "config": bad}, headers=admin
    )
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "invalid_config"
    paths = {e["path"] for e in body["errors"]}
    assert {"snapshots.history", "snapshots.nonsense", "bogus"} <= paths
    listed = await env.client.get("/api/v1/config/templates", headers=admin)
    assert listed.json() == {"templates": []}
    # bad overrides are refused too; a viewer may not touch config
    resp = await env.client.put(
        "/api/v1/config/assignments",
        json={"scope": "organisation", "overrides": {"http": {"rate_limit_burst": -5}}},
        headers=admin,
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["path"] == "http.rate_limit_burst"
    viewer = await env.login("viewer@acme.test")
    resp = await env.client.get("/api/v1/config/templates", headers=viewer)
    assert resp.status_code == 403


async def test_assignments_merge_org_region_site_device(cloud_env: CloudEnv) -> None:
    env = cloud_env
    admin = await env.login("admin@acme.test")
    dev_id, dev = await env.enroll("a1")
    other_id, other = await env.enroll("a3")
    assert (await fetch(env, dev)).status_code == 404  # nothing assigned: keep the local config
    v1 = await template(env, admin, {"snapshots": {"history": 10, "jpeg_quality": 70}})
    region = (await env.client.get("/api/v1/sites", headers=admin)).json()["sites"]
    north = next(s["region_id"] for s in region if s["id"] == env.ids["a1"])
    await assign(
        env,
        admin,
        scope="organisation",
        template_version_id=v1,
        overrides={
            "snapshots": {"jpeg_quality": 71, "history": 11},
            "http": {"rate_limit_burst": 8001},
        },
    )
    await assign(
        env,
        admin,
        scope="region",
        scope_id=north,
        overrides={"snapshots": {"jpeg_quality": 72}, "http": {"rate_limit_burst": 8002}},
    )
    await assign(
        env,
        admin,
        scope="site",
        scope_id=env.ids["a1"],
        overrides={"http": {"rate_limit_burst": 8003}},
    )
    await assign(
        env, admin, scope="device", scope_id=dev_id, overrides={"snapshots": {"history": 14}}
    )
    resp = await fetch(env, dev)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert got["config"]["snapshots"] == {"history": 14, "jpeg_quality": 72}
    assert got["config"]["http"] == {"rate_limit_burst": 8003}
    assert resp.headers["etag"] == f'"{got["version"]}"'
    south = (await fetch(env, other)).json()["config"]
    assert south["snapshots"] == {"history": 11, "jpeg_quality": 71}
    assert south["http"] == {"rate_limit_burst": 8001}
    eff = await env.client.get(f"/api/v1/devices/{dev_id}/effective-config", headers=admin)
    assert eff.status_code == 200
    assert [layer["source"] for layer in eff.json()["layers"]] == [
        "template",
        "organisation",
        "region",
        "site",
        "device",
    ]
    assert eff.json()["config"] == got["config"]
    # another organisation's admin sees nothing of it
    stranger = await env.login("admin@other.test")
    resp = await env.client.get(f"/api/v1/devices/{dev_id}/effective-config", headers=stranger)
    assert resp.status_code == 404
    assert other_id != dev_id


# ---------------------------------------------------------------------- delivery
async def test_long_poll_wakes_on_a_change_and_answers_304_after_the_wait(env: CloudEnv) -> None:
    admin = await env.login("admin@acme.test")
    dev_id, dev = await env.enroll("a1")
    v1 = await template(env, admin, BASE)
    await assign(env, admin, scope="organisation", template_version_id=v1)
    first = await fetch(env, dev)
    tag = first.headers["etag"]
    started = time.monotonic()
    resp = await env.client.get(
        "/api/v1/devices/config", params={"wait": 0.3}, headers={**dev, "If-None-Match": tag}
    )
    assert resp.status_code == 304
    assert resp.headers["etag"] == tag
    assert time.monotonic() - started >= 0.3

    async def change() -> float:
        await asyncio.sleep(0.2)  # the long-poll must be waiting first: that is the test
        await assign(
            env, admin, scope="device", scope_id=dev_id, overrides={"snapshots": {"history": 3}}
        )
        return time.monotonic()

    poll = asyncio.create_task(
        env.client.get(
            "/api/v1/devices/config", params={"wait": 30}, headers={**dev, "If-None-Match": tag}
        )
    )
    changed_at = await change()
    resp = await poll
    assert resp.status_code == 200
    assert time.monotonic() - changed_at < 1.0
    assert resp.json()["config"]["snapshots"]["history"] == 3
    assert resp.headers["etag"] != tag
    resp = await env.client.post(
        "/api/v1/devices/config/report", json={"version": 99, "outcome": "applied"}, headers=dev
    )
    assert resp.status_code == 422


# ---------------------------------------------------------------------- rollouts
async def _fleet(env: CloudEnv, n: int) -> list[tuple[str, dict[str, str]]]:
    return [
        await env.enroll(site, f"bay-{i}")
        for i, site in zip(range(n), ["a1", "a2", "a3"] * n, strict=False)
    ]


async def test_rollout_canary_then_waves_gated_on_heartbeats(cloud_env: CloudEnv) -> None:
    env = cloud_env
    admin = await env.login("admin@acme.test")
    fleet = await _fleet(env, 10)
    resp = await env.client.post(
        "/api/v1/config/templates", json={"name": "t", "config": BASE}, headers=admin
    )
    tpl = resp.json()
    v1 = tpl["versions"][0]["id"]
    await assign(env, admin, scope="organisation", template_version_id=v1)
    v2 = await new_version(env, admin, tpl["id"], {"snapshots": {"history": 20}})
    resp = await env.client.post(
        "/api/v1/rollouts",
        json={
            "template_version_id": v2,
            "target": {"organisation": True},
            "waves": [0.1, 0.5, 1.0],
            "device_timeout_s": 300,
        },
        headers=admin,
    )
    assert resp.status_code == 201, resp.text
    rollout = resp.json()
    assert [w["devices"] for w in rollout["waves"]] == [1, 4, 5]
    assert rollout["waves"][0]["in_progress"] == 1
    for wave in range(3):
        got = {d: (await fetch(env, h)).json() for d, h in fleet}
        reached = [d for d, c in got.items() if c["config"]["snapshots"]["history"] == 20]
        info = await progress(env, admin, rollout["id"])
        expected = {d["device_id"] for d in info["devices"] if d["wave"] <= wave}
        assert set(reached) == expected
        await step(env)  # nobody reported yet: the wave waits
        assert (await progress(env, admin, rollout["id"]))["waves"][wave]["state"] == "running"
        for d, h in fleet:
            if d in expected:
                await beat(env, h, got[d]["version"])
        env.clock.now += 1
        await step(env)
    info = await progress(env, admin, rollout["id"])
    assert info["state"] == "succeeded", info
    assert [w["succeeded"] for w in info["waves"]] == [1, 4, 5]
    # the version is now the organisation's base: the devices keep it
    listed = (await env.client.get("/api/v1/config/assignments", headers=admin)).json()
    assert listed["assignments"][0]["template_version_id"] == v2
    assert (await fetch(env, fleet[0][1])).json()["config"]["snapshots"]["history"] == 20


async def test_failed_canary_is_rolled_back_and_the_rest_never_get_it(cloud_env: CloudEnv) -> None:
    env = cloud_env
    admin = await env.login("admin@acme.test")
    fleet = await _fleet(env, 5)
    v1 = await template(env, admin, BASE)
    await assign(env, admin, scope="organisation", template_version_id=v1)
    before = {d: (await fetch(env, h)).json() for d, h in fleet}
    tpl_id = (await env.client.get("/api/v1/config/templates", headers=admin)).json()["templates"][
        0
    ]["id"]
    bad = await new_version(env, admin, tpl_id, {"camera": {"source": "rtsp://10.0.0.1/broken"}})
    resp = await env.client.post(
        "/api/v1/rollouts",
        json={"template_version_id": bad, "target": {"organisation": True}, "waves": [0.2, 1.0]},
        headers=admin,
    )
    rollout = resp.json()
    (canary,) = [d["device_id"] for d in rollout["devices"] if d["wave"] == 0]
    handle = dict(fleet)[canary]
    got = (await fetch(env, handle)).json()
    assert got["rollout_id"] == rollout["id"]
    await beat(env, handle, got["version"], stream="offline")  # applied; the stream died
    await env.client.post(
        "/api/v1/devices/config/report",
        headers=handle,
        json={
            "version": got["version"],
            "outcome": "rolled_back",
            "message": "stream offline 60 s",
        },
    )
    env.clock.now += 1
    await step(env)
    info = await progress(env, admin, rollout["id"])
    assert info["state"] == "rolled_back"
    assert "1 of 1 devices failed" in info["reason"]
    assert "stream offline 60 s" in info["reason"]
    assert info["waves"][0]["state"] == "failed"
    assert info["waves"][1]["state"] == "skipped"
    states = {d["device_id"]: d["state"] for d in info["devices"]}
    assert states.pop(canary) == "rolled_back"
    assert set(states.values()) == {"skipped"}
    back = (await fetch(env, handle)).json()
    assert back["config"] == before[canary]["config"]
    assert back["version"] > got["version"]
    for d, h in fleet:
        if d != canary:
            now = (await fetch(env, h)).json()
            assert now["version"] == before[d]["version"]  # never received it
    # a later step changes nothing; the ended rollout cannot be resumed
    await step(env)
    resp = await env.client.post(f"/api/v1/rollouts/{rollout['id']}/resume", headers=admin)
    assert resp.status_code == 409


async def test_an_offline_canary_times_out_and_is_rolled_back(cloud_env: CloudEnv) -> None:
    env = cloud_env
    admin = await env.login("admin@acme.test")
    fleet = await _fleet(env, 3)
    for _, h in fleet:
        await beat(env, h, None)
    v1 = await template(env, admin, BASE)
    target = {"sites": [env.ids["a1"], env.ids["a2"], env.ids["a3"]]}
    refused = await env.client.post(
        "/api/v1/rollouts", json={"template_version_id": v1, "target": target}, headers=admin
    )
    assert refused.status_code == 422  # nothing to roll back to
    assert "no config assigned" in refused.json()["message"]
    await assign(env, admin, scope="organisation", overrides={"snapshots": {"history": 5}})
    before = (await fetch(env, fleet[0][1])).json()
    resp = await env.client.post(
        "/api/v1/rollouts",
        json={
            "template_version_id": v1,
            "target": {"sites": [env.ids["a1"], env.ids["a2"], env.ids["a3"]]},
            "waves": [0.34, 1.0],
            "device_timeout_s": 60,
        },
        headers=admin,
    )
    rollout = resp.json()
    env.clock.now += 30
    await step(env)
    assert (await progress(env, admin, rollout["id"]))["state"] == "running"
    resp = await env.client.post(f"/api/v1/rollouts/{rollout['id']}/pause", headers=admin)
    assert resp.json()["state"] == "paused"
    env.clock.now += 100  # paused time does not count
    await step(env)
    assert (await progress(env, admin, rollout["id"]))["state"] == "paused"
    await env.client.post(f"/api/v1/rollouts/{rollout['id']}/resume", headers=admin)
    for _, h in fleet:  # every device heartbeats, but none runs the version
        await beat(env, h, None)
    env.clock.now += 31
    await step(env)
    info = await progress(env, admin, rollout["id"])
    assert info["state"] == "rolled_back", info
    assert "timeout after 60 s: version not applied" in info["reason"]
    for _, h in fleet:  # the canary is back on what it had; the others never changed
        now = (await fetch(env, h)).json()
        assert now["config"] == before["config"]
        assert now["rollout_id"] is None
    listed = (await env.client.get("/api/v1/rollouts", headers=admin)).json()["rollouts"]
    assert [(r["id"], r["state"], r["devices"]) for r in listed] == [
        (rollout["id"], "rolled_back", [])
    ]


# ---------------------------------------------------------------------- members
async def test_members_upload_then_device_fetch_with_etag(cloud_env: CloudEnv) -> None:
    env = cloud_env
    admin = await env.login("admin@acme.test")
    _, dev = await env.enroll("a1")
    _, stranger = await env.enroll("b1")
    empty = await env.client.get("/api/v1/devices/members", headers=dev)
    assert empty.json() == {"version": 0, "members": []}
    csv_text = "plate;id;name;plan\nab-123;m1;Ann;gold\nXY 9;m2;Bob;\n"
    resp = await env.client.put(
        "/api/v1/members", content=csv_text, headers={**admin, "Content-Type": "text/csv"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["count"] == 2
    got = await env.client.get("/api/v1/devices/members", headers=dev)
    assert got.json()["members"] == [
        {"plate": "AB123", "id": "m1", "name": "Ann", "plan": "gold", "status": "active"},
        {"plate": "XY9", "id": "m2", "name": "Bob", "plan": "", "status": "active"},
    ]
    tag = got.headers["etag"]
    again = await env.client.get("/api/v1/devices/members", headers={**dev, "If-None-Match": tag})
    assert again.status_code == 304
    resp = await env.client.put(
        "/api/v1/members/XY9",
        headers=admin,
        json={"plate": "XY9", "id": "m2", "status": "suspended"},
    )
    assert resp.status_code == 200, resp.text
    changed = await env.client.get("/api/v1/devices/members", headers={**dev, "If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json()["members"][1]["status"] == "suspended"
    assert (await env.client.get("/api/v1/devices/members", headers=stranger)).json()[
        "members"
    ] == []
    resp = await env.client.put(
        "/api/v1/members",
        headers=admin,
        json={"members": [{"plate": "A1", "id": "x"}, {"plate": "a-1", "id": "y"}]},
    )
    assert resp.status_code == 422
    assert "listed twice" in resp.json()["message"]
