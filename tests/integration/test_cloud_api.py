"""The cloud's HTTP API in-process (httpx ASGI), on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from typing import Any

import pytest

from cloud_sync.ingest.limits import EventRate
from fleet_common.wire.edge import PlateTrigger
from tests.support import payloads
from tests.support.cloud import T0, CloudEnv, at

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def plate_event(
    plate: str,
    ts: float,
    *,
    member: str | None = None,
    trigger: PlateTrigger = "motion",
    key: str | None = None,
) -> dict[str, Any]:
    payload = payloads.plate_read(plate, trigger=trigger, member_id=member)
    return {
        "key": key or uuid.uuid4().hex,
        "seq": 1,
        "kind": "plate.read",
        "topic": "plates",
        "ts": at(ts),
        "payload": payload,
    }


def rental_event(duration_s: float, ts: float) -> dict[str, Any]:
    payload = payloads.cart(3, "returned", duration_s=duration_s)
    return {
        "key": uuid.uuid4().hex,
        "kind": "cart",
        "topic": "carts",
        "ts": at(ts),
        "payload": payload,
    }


def member_event(ts: float) -> dict[str, Any]:
    return {
        "key": uuid.uuid4().hex,
        "kind": "member.recognized",
        "topic": "events",
        "ts": at(ts),
        "payload": payloads.member_recognized("m1"),
    }


async def rollup_rows(
    env: CloudEnv,
    auth: dict[str, str],
    group_by: str = "site",
    start: float = T0 - 86400,
    end: float = T0 + 86400,
) -> dict[str, Any]:
    resp = await env.client.get(
        "/api/v1/rollups",
        params={"from": at(start), "to": at(end), "group_by": group_by},
        headers=auth,
    )
    assert resp.status_code == 200, resp.text
    return {row["key"]: row for row in resp.json()["rows"]}


# ---------------------------------------------------------------------- the vertical slice
async def test_enroll_heartbeat_ingest_then_supervisor_reads(cloud_env: CloudEnv) -> None:
    env = cloud_env
    device_id, dev = await env.enroll("a1")
    beat = {
        "status": "ok",
        "stream_status": "online",
        "config_version": 4,
        "edge_version": "0.1.0",
        "metrics": {"fps": 5.0},
    }
    resp = await env.client.post("/api/v1/devices/heartbeat", json=beat, headers=dev)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"interval_s": 30, "commands": []}
    assert await asyncio.to_thread(env.cloud.flush) == 1

    batch = {
        "events": [
            plate_event("AB123", T0, member="m7"),
            plate_event("AB999", T0 + 5),
            rental_event(100.0, T0 + 10),
            rental_event(300.0, T0 + 20),
            member_event(T0 + 30),
        ]
    }
    resp = await env.client.post("/api/v1/ingest", json=batch, headers=dev)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 5, "duplicates": 0}

    admin = await env.login("admin@acme.test")
    devices = (await env.client.get("/api/v1/devices", headers=admin)).json()["devices"]
    assert [(d["id"], d["online"], d["config_version"], d["stream_status"]) for d in devices] == [
        (device_id, True, 4, "online")
    ]
    rows = await rollup_rows(env, admin)
    a1 = rows[env.ids["a1"]]
    assert (a1["vehicles"], a1["plate_reads"], a1["member_recognitions"], a1["rentals"]) == (
        2,
        2,
        1,
        2,
    )
    assert a1["rental_mean_s"] == 200.0
    assert 180 < a1["rental_p95_s"] <= 300  # the slot (180, 300] holds the exact 300
    assert (a1["uptime"], a1["observed_s"]) == (1.0, 30.0)
    plates = (await env.client.get("/api/v1/plates", params={"plate": "ab1"}, headers=admin)).json()
    assert [r["plate"] for r in plates["reads"]] == ["AB123"]
    assert plates["reads"][0]["member_id"] == "m7"

    env.clock.now += 91  # three intervals and a second without a heartbeat
    devices = (await env.client.get("/api/v1/devices", headers=admin)).json()["devices"]
    assert devices[0]["online"] is False


async def test_replayed_and_reordered_batches_change_nothing(cloud_env: CloudEnv) -> None:
    env = cloud_env
    _, dev = await env.enroll("a1")
    events = [plate_event(f"P{i}", T0 + i * 600) for i in range(6)] + [rental_event(50, T0)]
    first = await env.client.post("/api/v1/ingest", json={"events": events[:4]}, headers=dev)
    assert first.json() == {"accepted": 4, "duplicates": 0}
    admin = await env.login("admin@acme.test")
    hours_before = await rollup_rows(env, admin, "hour")
    # The same batch again: nothing new, the rollups unchanged.
    again = await env.client.post("/api/v1/ingest", json={"events": events[:4]}, headers=dev)
    assert again.json() == {"accepted": 0, "duplicates": 4}
    assert await rollup_rows(env, admin, "hour") == hours_before
    # Everything, newest first and with a duplicate inside the batch: only the new ones count.
    mixed = [*reversed(events), events[5]]
    resp = await env.client.post("/api/v1/ingest", json={"events": mixed}, headers=dev)
    assert resp.json() == {"accepted": 3, "duplicates": 5}
    day = await rollup_rows(env, admin, "day")
    assert sum(r["plate_reads"] for r in day.values()) == 6
    assert sum(r["rentals"] for r in day.values()) == 1
    hours = await rollup_rows(env, admin, "hour")
    assert sum(r["plate_reads"] for r in hours.values()) == 6
    plates = (await env.client.get("/api/v1/plates", headers=admin)).json()["reads"]
    assert sorted(r["plate"] for r in plates) == [f"P{i}" for i in range(6)]


async def test_payloads_that_do_not_fit_are_stored_but_not_counted(
    cloud_env: CloudEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env = cloud_env
    _, dev = await env.enroll("a1")
    bad_read = plate_event("AB777", T0)
    bad_read["payload"] = {"plate": "AB777", "score": 0.9, "trigger": "motion"}  # no id, text...
    bad_rental = rental_event(100.0, T0 + 5)
    bad_rental["payload"]["rental"]["duration_s"] = "soon"
    batch = {"events": [bad_read, bad_rental, plate_event("AB123", T0 + 10)]}
    resp = await env.client.post("/api/v1/ingest", json=batch, headers=dev)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 3, "duplicates": 0}  # nothing refused: all stored
    admin = await env.login("admin@acme.test")
    a1 = (await rollup_rows(env, admin))[env.ids["a1"]]
    assert (a1["plate_reads"], a1["rentals"]) == (1, 0)
    found = await env.client.get("/api/v1/plates", params={"plate": "AB777"}, headers=admin)
    assert found.status_code == 200, found.text
    assert found.json()["reads"] == []
    unfit = [r.getMessage() for r in caplog.records if "do not fit" in r.getMessage()]
    assert len(unfit) == 1
    assert "plate.read" in unfit[0]
    assert "cart" in unfit[0]


async def test_ingest_gzip_caps_and_rate_limit(cloud_env: CloudEnv) -> None:
    env = cloud_env
    _, dev = await env.enroll("a1")
    body = gzip.compress(json.dumps({"events": [plate_event("GZ1", T0)]}).encode())
    headers = {**dev, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    resp = await env.client.post("/api/v1/ingest", content=body, headers=headers)
    assert resp.json() == {"accepted": 1, "duplicates": 0}
    # A small body that inflates past the cap: refused before it is all inflated.
    bomb = gzip.compress(b" " * (env.cloud.settings.max_decompressed_bytes + 10))
    resp = await env.client.post("/api/v1/ingest", content=bomb, headers=headers)
    assert (resp.status_code, resp.json()["error"]) == (413, "payload_too_large")
    resp = await env.client.post("/api/v1/ingest", content=b"not gzip", headers=headers)
    assert (resp.status_code, resp.json()["error"]) == (400, "bad_request")
    resp = await env.client.post(
        "/api/v1/ingest", content=b"{}", headers={**dev, "Content-Encoding": "br"}
    )
    assert (resp.status_code, resp.json()["error"]) == (415, "unsupported_encoding")
    too_many = {"events": [plate_event("X", T0) for _ in range(501)]}
    resp = await env.client.post("/api/v1/ingest", json=too_many, headers=dev)
    assert (resp.status_code, resp.json()["error"]) == (413, "payload_too_large")
    assert "500 events" in resp.json()["message"]
    # Two full batches empty a bucket of 1,000 events; the next event waits.
    env.cloud.rate = EventRate(per_s=0.01, burst=1000)
    for _ in range(2):
        batch = {"events": [plate_event("R", T0) for _ in range(500)]}
        assert (await env.client.post("/api/v1/ingest", json=batch, headers=dev)).status_code == 200
    resp = await env.client.post(
        "/api/v1/ingest", json={"events": [plate_event("R", T0)] * 1}, headers=dev
    )
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert resp.json()["error"] == "rate_limited"


# ---------------------------------------------------------------------- enrolment and keys
async def test_enrolment_token_is_single_use_and_expires(cloud_env: CloudEnv) -> None:
    env = cloud_env
    token = await env.token("a1")
    first = await env.client.post("/api/v1/devices/enroll", json={"token": token})
    assert first.status_code == 200
    again = await env.client.post("/api/v1/devices/enroll", json={"token": token})
    assert (again.status_code, again.json()["error"]) == (401, "token_invalid")
    short = await env.token("a1", ttl_s=60)
    env.clock.now += 61
    late = await env.client.post("/api/v1/devices/enroll", json={"token": short})
    assert (late.status_code, late.json()["error"]) == (401, "token_invalid")
    assert token not in late.text


async def test_revoked_and_rotated_keys(cloud_env: CloudEnv) -> None:
    env = cloud_env
    device_id, dev = await env.enroll("a1")
    admin = await env.login("admin@acme.test")
    beat = "/api/v1/devices/heartbeat"
    assert (await env.client.post(beat, json={}, headers=dev)).status_code == 200
    # The device rotates its own key: the old one stops at once.
    resp = await env.client.post("/api/v1/devices/rotate-key", headers=dev)
    new = {"Authorization": f"Bearer {resp.json()['device_key']}"}
    assert (await env.client.post(beat, json={}, headers=dev)).status_code == 401
    assert (await env.client.post(beat, json={}, headers=new)).status_code == 200
    # An admin revokes it.
    viewer = await env.login("viewer@acme.test")
    resp = await env.client.post(f"/api/v1/devices/{device_id}/revoke", headers=viewer)
    assert (resp.status_code, resp.json()["error"]) == (403, "forbidden")
    resp = await env.client.post(f"/api/v1/devices/{device_id}/revoke", headers=admin)
    assert resp.status_code == 204
    resp = await env.client.post(beat, json={}, headers=new)
    assert (resp.status_code, resp.json()["error"]) == (401, "device_revoked")
    # ... and re-admits it with a new key.
    resp = await env.client.post(f"/api/v1/devices/{device_id}/rotate-key", headers=admin)
    again = {"Authorization": f"Bearer {resp.json()['device_key']}"}
    assert (await env.client.post(beat, json={}, headers=again)).status_code == 200
    # Garbage and user tokens are no device keys.
    bad = {"Authorization": "Bearer cwd_" + "0" * 32 + "_nope"}
    assert (await env.client.post(beat, json={}, headers=bad)).json()["error"] == "unauthorized"
    assert (await env.client.post(beat, json={}, headers=admin)).status_code == 401


async def test_commands_round_trip(cloud_env: CloudEnv) -> None:
    env = cloud_env
    device_id, dev = await env.enroll("a1")
    operator = await env.login("operator@acme.test")
    viewer = await env.login("viewer@acme.test")
    url = f"/api/v1/devices/{device_id}/commands"
    denied = await env.client.post(url, json={"kind": "restart_stream"}, headers=viewer)
    assert denied.status_code == 403
    queued = await env.client.post(url, json={"kind": "read_plate"}, headers=operator)
    assert queued.status_code == 201, queued.text
    command_id = queued.json()["id"]
    beat = await env.client.post("/api/v1/devices/heartbeat", json={}, headers=dev)
    assert beat.json()["commands"] == [{"id": command_id, "kind": "read_plate", "args": {}}]
    # Delivered once: the next heartbeat carries nothing, even after a reload from the database.
    await asyncio.to_thread(env.cloud.reload_pending)
    beat = await env.client.post("/api/v1/devices/heartbeat", json={}, headers=dev)
    assert beat.json()["commands"] == []
    result = {"command_results": [{"id": command_id, "ok": True, "detail": "read AB1"}]}
    await env.client.post("/api/v1/devices/heartbeat", json=result, headers=dev)
    listed = (await env.client.get(url, headers=viewer)).json()["commands"]
    assert [(c["id"], c["status"], c["detail"]) for c in listed] == [
        (command_id, "succeeded", "read AB1")
    ]


# ---------------------------------------------------------------------- people
async def test_login_refresh_rotation_and_reuse(cloud_env: CloudEnv) -> None:
    env = cloud_env
    resp = await env.client.post(
        "/api/v1/auth/login", json={"email": "Admin@Acme.test", "password": "password-1"}
    )
    assert resp.status_code == 200
    pair = resp.json()
    assert (pair["role"], pair["scope"], pair["expires_in"]) == ("admin", "organisation", 900)
    first = await env.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert first.status_code == 200
    newer = first.json()["refresh_token"]
    # The used token again: refused, and its whole family (the newer token too) ends.
    reused = await env.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert (reused.status_code, reused.json()["error"]) == (401, "refresh_invalid")
    after = await env.client.post("/api/v1/auth/refresh", json={"refresh_token": newer})
    assert after.status_code == 401
    sites = await env.client.get(
        "/api/v1/sites", headers={"Authorization": f"Bearer {first.json()['access_token']}"}
    )
    assert sites.status_code == 200
    env.clock.now += 3600  # access tokens are checked against real time; this one is young
    bogus = await env.client.get("/api/v1/sites", headers={"Authorization": "Bearer x.y.z"})
    assert (bogus.status_code, bogus.json()["error"]) == (401, "unauthorized")


async def test_login_rate_limited_per_email_and_address(cloud_env: CloudEnv) -> None:
    env = cloud_env
    login = "/api/v1/auth/login"
    for _ in range(3):
        resp = await env.client.post(
            login, json={"email": "viewer@acme.test", "password": "wrong-pass"}
        )
        assert (resp.status_code, resp.json()["error"]) == (401, "unauthorized")
    # The e-mail is locked now, even with the right password...
    resp = await env.client.post(
        login, json={"email": "viewer@acme.test", "password": "password-1"}
    )
    assert resp.status_code == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 900
    # ... while others still log in, until this address has failed too often.
    await env.login("admin@acme.test")
    for i in range(3):
        await env.client.post(
            login, json={"email": f"nobody{i}@acme.test", "password": "wrong-pass"}
        )
    resp = await env.client.post(login, json={"email": "admin@acme.test", "password": "password-1"})
    assert resp.status_code == 429
    assert "wrong-pass" not in resp.text


async def test_organisations_and_sites_are_isolated(cloud_env: CloudEnv) -> None:
    env = cloud_env
    a1_dev, a1_key = await env.enroll("a1")
    a3_dev, a3_key = await env.enroll("a3", "bay-3")
    b1_dev, b1_key = await env.enroll("b1", "bay-b")
    for key, plate in ((a1_key, "AAA1"), (a3_key, "AAA3"), (b1_key, "AAAB")):
        ok = await env.client.post(
            "/api/v1/ingest", json={"events": [plate_event(plate, T0)]}, headers=key
        )
        assert ok.status_code == 200

    async def view(email: str) -> tuple[set[str], set[str], set[str], set[str]]:
        auth = await env.login(email)
        sites = {
            s["id"] for s in (await env.client.get("/api/v1/sites", headers=auth)).json()["sites"]
        }
        devices = {
            d["id"]
            for d in (await env.client.get("/api/v1/devices", headers=auth)).json()["devices"]
        }
        plates = {
            r["plate"]
            for r in (await env.client.get("/api/v1/plates", headers=auth)).json()["reads"]
        }
        return sites, devices, plates, set(await rollup_rows(env, auth))

    ids = env.ids
    sites, devices, plates, rollups = await view("admin@acme.test")
    assert sites == {ids["a1"], ids["a2"], ids["a3"]}
    assert (devices, plates, rollups) == (
        {a1_dev, a3_dev},
        {"AAA1", "AAA3"},
        {ids["a1"], ids["a3"]},
    )
    assert await view("site@acme.test") == ({ids["a1"]}, {a1_dev}, {"AAA1"}, {ids["a1"]})
    sites, devices, plates, rollups = await view("north@acme.test")
    assert (sites, devices, plates) == ({ids["a1"], ids["a2"]}, {a1_dev}, {"AAA1"})
    assert await view("admin@other.test") == ({ids["b1"]}, {b1_dev}, {"AAAB"}, {ids["b1"]})
    # Another organisation's device is not there at all, for reading or for commands.
    other = await env.login("admin@other.test")
    for url in (f"/api/v1/devices/{a1_dev}/commands", f"/api/v1/devices/{a1_dev}/revoke"):
        resp = await env.client.post(url, json={"kind": "read_plate"}, headers=other)
        assert (resp.status_code, resp.json()["error"]) == (404, "not_found")
    site_viewer = await env.login("site@acme.test")
    resp = await env.client.get(f"/api/v1/devices/{a3_dev}/commands", headers=site_viewer)
    assert resp.status_code == 404


async def test_plate_search_filters_and_pages(cloud_env: CloudEnv) -> None:
    env = cloud_env
    _, a1 = await env.enroll("a1")
    _, a2 = await env.enroll("a2", "bay-2")
    a1_events = [
        plate_event(f"KA{i:02d}", T0 + i, member="m1" if i % 3 == 0 else None) for i in range(10)
    ]
    a1_events.append(plate_event("ZZ01", T0 + 50))
    await env.client.post("/api/v1/ingest", json={"events": a1_events}, headers=a1)
    await env.client.post(
        "/api/v1/ingest", json={"events": [plate_event("KA99", T0 + 100)]}, headers=a2
    )
    admin = await env.login("admin@acme.test")

    async def plates(**params: Any) -> list[str]:
        resp = await env.client.get("/api/v1/plates", params=params, headers=admin)
        assert resp.status_code == 200, resp.text
        return [r["plate"] for r in resp.json()["reads"]]

    assert await plates(plate="ka9") == ["KA99"]
    assert len(await plates(plate="KA")) == 11
    assert await plates(plate="KA", site=env.ids["a2"]) == ["KA99"]
    assert await plates(member="m1") == ["KA09", "KA06", "KA03", "KA00"]
    assert await plates(plate="KA", **{"from": at(T0 + 5), "to": at(T0 + 8)}) == [
        "KA07",
        "KA06",
        "KA05",
    ]
    assert await plates(plate="KA", **{"from": str(T0 + 5), "to": str(T0 + 8)}) == [
        "KA07",
        "KA06",
        "KA05",
    ]
    seen: list[str] = []
    cursor = None
    for _ in range(10):  # bounded
        params: dict[str, Any] = {
            "plate": "KA",
            "limit": 4,
            **({"cursor": cursor} if cursor else {}),
        }
        page = (await env.client.get("/api/v1/plates", params=params, headers=admin)).json()
        seen += [r["plate"] for r in page["reads"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["KA99", *[f"KA{i:02d}" for i in range(9, -1, -1)]]
    bad = await env.client.get("/api/v1/plates", params={"cursor": "!!"}, headers=admin)
    assert (bad.status_code, bad.json()["error"]) == (422, "bad_cursor")
    bad = await env.client.get("/api/v1/plates", params={"from": "yesterday"}, headers=admin)
    assert (bad.status_code, bad.json()["error"]) == (422, "bad_time")


async def test_rollups_by_region_hour_and_day(cloud_env: CloudEnv) -> None:
    env = cloud_env
    _, a1 = await env.enroll("a1")
    _, a3 = await env.enroll("a3", "bay-3")
    hour = 3600
    base = T0 - T0 % 86400  # midnight UTC
    await env.client.post(
        "/api/v1/ingest",
        headers=a1,
        json={
            "events": [
                plate_event("A", base + 10),
                plate_event("B", base + hour + 10, trigger="interval"),
                rental_event(60, base + 20),
                rental_event(120, base + hour + 20),
            ]
        },
    )
    await env.client.post(
        "/api/v1/ingest",
        headers=a3,
        json={
            "events": [
                plate_event("C", base + 86400 + 5),
                member_event(base + 30),
            ]
        },
    )
    admin = await env.login("admin@acme.test")
    span = {"start": base, "end": base + 2 * 86400}
    regions = await rollup_rows(env, admin, "region", **span)
    assert {
        r["label"]: (r["plate_reads"], r["vehicles"], r["rentals"]) for r in regions.values()
    } == {"North": (2, 1, 2), "South": (1, 1, 0)}
    hours = await rollup_rows(env, admin, "hour", **span)
    assert list(hours) == [at(base), at(base + hour), at(base + 86400)]
    assert hours[at(base)]["rental_mean_s"] == 60.0
    assert hours[at(base)]["member_recognitions"] == 1
    days = await rollup_rows(env, admin, "day", **span)
    assert list(days) == [at(base), at(base + 86400)]
    assert days[at(base)]["rental_mean_s"] == 90.0
    assert days[at(base)]["plate_reads"] == sum(
        h["plate_reads"] for k, h in hours.items() if k < at(base + 86400)
    )
    bad = await env.client.get("/api/v1/rollups", params={"group_by": "week"}, headers=admin)
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid_request")
    assert "week" not in bad.text  # the input is never echoed


# ---------------------------------------------------------------------- errors and contract
async def test_every_error_has_the_documented_shape(cloud_env: CloudEnv) -> None:
    env = cloud_env
    client = env.client
    admin = await env.login("admin@acme.test")
    cases = [
        (await client.get("/api/v1/nowhere"), 404, "not_found"),
        (await client.delete("/api/v1/sites", headers=admin), 405, "method_not_allowed"),
        (await client.get("/api/v1/sites"), 401, "unauthorized"),
        (
            await client.post(
                "/api/v1/auth/login",
                content=b"{not json",
                headers={"Content-Type": "application/json"},
            ),
            422,
            "invalid_request",
        ),
        (
            await client.post(
                "/api/v1/auth/login",
                json={"email": "a@b.c", "password": "x", "secret": "s3cr3t-input"},
            ),
            422,
            "invalid_request",
        ),
        (await client.post("/api/v1/auth/login", content=b"x" * 70_000), 413, "payload_too_large"),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, resp.text
        body = resp.json()
        assert body["error"] == code
        assert isinstance(body["message"], str)
        assert "s3cr3t-input" not in resp.text


async def test_openapi_health_metrics_and_docs(cloud_env: CloudEnv) -> None:
    env = cloud_env
    doc = (await env.client.get("/openapi.json")).json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op.get("x-required-role") in (
                "public",
                "device",
                "viewer",
                "operator",
                "admin",
            ), (path, method)
    assert doc["paths"]["/api/v1/ingest"]["post"]["security"] == [{"device": []}]
    health = (await env.client.get("/api/v1/health")).json()
    assert health["schema_revision"] == "0002"
    docs = await env.client.get("/docs")
    assert docs.status_code == 200
    assert "/api/v1/ingest" in docs.text
    assert "<script" not in docs.text
    _, dev = await env.enroll("a1")
    await env.client.post(
        "/api/v1/devices/heartbeat", json={"stream_status": "online"}, headers=dev
    )
    await asyncio.to_thread(env.cloud.flush)
    await asyncio.to_thread(env.cloud.count_devices)
    text = (await env.client.get("/metrics")).text
    assert 'carwash_cloud_devices{state="online"} 1.0' in text
    assert 'route="/api/v1/devices/heartbeat",status="200"' in text
    assert "carwash_cloud_db_pool_connections" in text
