"""The sync client's pure parts, and its loops against a scripted cloud (httpx.MockTransport):
413 splits, a poison row set aside, config long-poll with ETag and report, members with ETag.

The cloud's own config and members routes are tested against the real cloud in
tests/integration/test_sync.py once they exist; here the contract in fleet_common/wire/cloud.py.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.plates.members import MembersFile
from edge.store import OutboxItem, Store
from edge.sync.apply import keep_process_keys
from edge.sync.backoff import Backoff
from edge.sync.client import raise_for, retry_after_s
from edge.sync.credentials import CloudCredentials
from edge.sync.errors import CloudUnavailable, NotEnrolled, RateLimited, Refused, Unauthorized
from edge.sync.members import MembersFileWriter
from edge.sync.outbox import to_wire, unsendable
from edge.sync.service import ConfigResult, DeviceStatus, SyncService, SyncSettings
from fleet_common.wire.cloud import DeviceConfig

pytestmark = pytest.mark.unit

CREDS = CloudCredentials("http://cloud.test", "dev1", "cwd_dev1_secret")
FAST = SyncSettings(heartbeat_interval_s=30, batch_size=50, outbox_poll_s=0.02,
                    backoff_base_s=0.01, backoff_cap_s=0.05, config_wait_s=5)  # fmt: skip


# ---------------------------------------------------------------------- pure parts
def test_backoff_grows_capped_with_jitter_and_resets() -> None:
    backoff = Backoff(1.0, 8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    for n, delay in enumerate(delays):
        ceiling = min(8.0, 2.0**n)
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 1.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0.5", 0.5), (None, 5.0), ("soon", 5.0), ("-3", 0.0), ("1e9", 600.0),
     ("nan", 5.0), ("Thu, 01 Jan 1970 00:01:40 GMT", 40.0)],
)  # fmt: skip
def test_retry_after(header: str | None, expected: float) -> None:
    assert retry_after_s(header, now=60.0) == expected


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [(413, Refused, "too_large"), (422, Refused, "refused"), (500, CloudUnavailable, "http_500"),
     (404, CloudUnavailable, "http_404"), (400, CloudUnavailable, "http_400"),
     (401, Unauthorized, "unauthorized"), (429, RateLimited, "rate_limited")],
)  # fmt: skip
def test_answers_map_to_the_error_tree(status: int, error: type[Exception], reason: str) -> None:
    resp = httpx.Response(
        status, json={"error": "x", "message": "no"}, headers={"Retry-After": "3"}
    )
    with pytest.raises(error) as caught:
        raise_for(resp, "ingest")
    assert getattr(caught.value, "reason", None) == reason
    if status == 429:
        assert isinstance(caught.value, RateLimited)
        assert caught.value.retry_after_s == 3.0
    raise_for(httpx.Response(304), "config")  # not an error


def test_an_outbox_row_as_an_ingest_event() -> None:
    item = OutboxItem(7, 3, 1_780_000_000.5, "plates", {"plate": "B1"}, "k" * 32, 0, None,
                      kind="plate.read")  # fmt: skip
    assert to_wire(item) == {
        "key": "k" * 32, "seq": 7, "kind": "plate.read", "topic": "plates",
        "ts": "2026-05-28T20:26:40.500Z", "payload": {"plate": "B1"},
    }  # fmt: skip
    assert unsendable(item) is None
    assert "not one the cloud takes" in str(
        unsendable(OutboxItem(1, None, 0, "t", {}, "k", 0, None))
    )


def test_cloud_config_keeps_start_up_keys_as_they_run() -> None:
    running = {"http": {"listen": "0.0.0.0:8080"}, "data_dir": "/var/lib/carwash", "name": "a"}
    out = keep_process_keys({"name": "b", "http": {}}, running)
    assert out["name"] == "b"
    assert out["http"]["listen"] == "0.0.0.0:8080"
    assert out["data_dir"] == "/var/lib/carwash"


def test_credentials_are_private_and_checked(tmp_path: Path) -> None:
    with pytest.raises(NotEnrolled, match="carwash-edge enroll"):
        CloudCredentials.load(tmp_path)
    CREDS.save(tmp_path / "data")
    path = tmp_path / "data" / "cloud.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert CloudCredentials.load(tmp_path / "data") == CREDS
    assert "secret" not in repr(CREDS)
    path.write_text("{}")
    with pytest.raises(NotEnrolled, match="enrol again"):
        CloudCredentials.load(tmp_path / "data")


# ---------------------------------------------------------------------- loops, scripted cloud
def _beat(request: httpx.Request) -> httpx.Response | None:
    if request.url.path == "/api/v1/devices/heartbeat":
        return httpx.Response(200, json={"interval_s": 30, "commands": []})
    return None


@pytest.mark.asyncio
async def test_a_batch_too_large_is_split_and_a_poison_row_set_aside(tmp_path: Path) -> None:
    store = Store.in_dir(tmp_path)
    for i in range(30):
        store.add_event("alert", {"n": i, "poison": i == 17}, outbox_topic="events")
    received: list[int] = []
    sizes: list[int] = []

    async def cloud(request: httpx.Request) -> httpx.Response:
        beat = _beat(request)
        if beat is not None:
            return beat
        events = json.loads(gzip.decompress(request.content))["events"]
        sizes.append(len(events))
        if len(events) > 8:
            return httpx.Response(413, json={"error": "payload_too_large", "message": "big"})
        if any(e["payload"]["poison"] for e in events):
            return httpx.Response(422, json={"error": "invalid", "message": "bad row"})
        received.extend(e["payload"]["n"] for e in events)
        return httpx.Response(200, json={"accepted": len(events), "duplicates": 0})

    sync = SyncService(CREDS, store, status=DeviceStatus, settings=FAST,
                       transport=httpx.MockTransport(cloud))  # fmt: skip
    await sync.start()
    try:
        for _ in range(500):  # bounded: every row acknowledged or set aside
            if store.outbox_counts() == (0, 1):
                break
            await asyncio.sleep(0.01)
    finally:
        await sync.stop()
    assert sorted(received) == [n for n in range(30) if n != 17]
    assert sizes[0] == 30
    assert max(sizes[1:]) <= 15
    (rejected,) = store.outbox_batch(10)
    assert rejected.payload["n"] == 17
    assert rejected.last_error is not None
    assert "bad row" in rejected.last_error
    store.close()


@pytest.mark.asyncio
async def test_config_long_poll_applies_and_reports_and_members_land_in_the_file(
    tmp_path: Path,
) -> None:
    store = Store.in_dir(tmp_path)
    seen: list[tuple[str, str | None, str | None]] = []
    reports: list[dict[str, Any]] = []
    reported = asyncio.Event()
    polled_again = asyncio.Event()  # a config poll with the version received as ETag
    members_unchanged = asyncio.Event()  # a members pull answered 304
    config_doc = {"version": 4, "config": {"name": "bay-9"}, "rollout_id": "r1",
                  "template_version_id": 2, "updated_at": "2026-01-01T00:00:00Z"}  # fmt: skip
    members_doc = {"version": 5, "members": [{"plate": "B123", "id": "m1", "name": "Ann",
                                              "plan": "gold", "status": "active"}]}  # fmt: skip

    async def cloud(request: httpx.Request) -> httpx.Response:
        beat = _beat(request)
        if beat is not None:
            return beat
        etag = request.headers.get("If-None-Match")
        seen.append((request.url.path, etag, request.url.params.get("wait")))
        if request.url.path == "/api/v1/devices/config":
            if etag == '"4"':
                polled_again.set()
                await asyncio.sleep(0.05)  # the long-poll's wait, shortened
                return httpx.Response(304)
            return httpx.Response(200, json=config_doc, headers={"ETag": '"4"'})
        if request.url.path == "/api/v1/devices/config/report":
            reports.append(json.loads(request.content))
            reported.set()
            return httpx.Response(204)
        if request.url.path == "/api/v1/devices/members":
            if etag == '"5"':
                members_unchanged.set()
                return httpx.Response(304)
            return httpx.Response(200, json=members_doc, headers={"ETag": '"5"'})
        return httpx.Response(404, json={"error": "not_found", "message": "?"})

    applied: list[DeviceConfig] = []

    async def on_config(doc: DeviceConfig) -> ConfigResult:
        applied.append(doc)
        return ConfigResult("applied", "running as edge config version 12")

    members_path = tmp_path / "members.json"
    writer = MembersFileWriter(members_path)
    sync = SyncService(
        CREDS, store, status=DeviceStatus, on_config=on_config, on_members=writer,
        settings=FAST, transport=httpx.MockTransport(cloud),
    )  # fmt: skip
    await sync.start()
    try:
        async with asyncio.timeout(10):
            await reported.wait()
            await polled_again.wait()
            sync.resync_members()  # the list was written: the next pull sends its version
            await members_unchanged.wait()
    finally:
        await sync.stop()
    assert [d.version for d in applied] == [4]
    assert reports == [{"version": 4, "outcome": "applied",
                        "message": "running as edge config version 12"}]  # fmt: skip
    assert sync.state.cloud_config_version == 4
    assert seen[0][1] is None  # the first poll has no ETag
    assert ("/api/v1/devices/config", '"4"', "5") in seen
    members = MembersFile(members_path).current()
    member = members.get("B123")
    assert member is not None
    assert (member.id, member.plan) == ("m1", "gold")
    assert writer.version() == 5
    assert stat.S_IMODE(members_path.stat().st_mode) == 0o600
    store.close()
