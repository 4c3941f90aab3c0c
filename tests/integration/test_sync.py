"""The edge's sync client against a real ``carwash-cloud serve`` process.

Enrolment through the command line; heartbeat (online, commands and their results); the outbox
of a real edge store arriving exactly once; an outage (refused, 500s, hanging) that costs
nothing; ``kill -9`` of a pushing process that loses and duplicates nothing. A fault proxy
(tests/support/fault_proxy.py) stands between the client and the cloud where a test breaks it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from edge import cli
from edge.store import Store
from edge.sync.client import Timeouts
from edge.sync.credentials import CloudCredentials
from edge.sync.enroll import enroll
from edge.sync.metrics import SyncMetrics
from edge.sync.service import CommandOutcome, DeviceStatus, SyncService, SyncSettings
from fleet_common.wire.cloud import Command
from tests.conftest import ROOT
from tests.support import payloads
from tests.support.cloud_process import ADMIN, PASSWORD, CloudProcess
from tests.support.fault_proxy import FaultProxy, Mode

pytestmark = pytest.mark.integration

FAST = SyncSettings(
    heartbeat_interval_s=0.2, batch_size=50, outbox_poll_s=0.05, backoff_base_s=0.05,
    backoff_cap_s=0.3, timeouts=Timeouts(connect_s=0.5, read_s=0.5, write_s=0.5, pool_s=0.5),
)  # fmt: skip


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudProcess]:
    proc = CloudProcess(tmp_path_factory.mktemp("cloud"))
    proc.start()
    yield proc
    assert proc.stop() == 0, "".join(proc.lines)
    assert "Traceback" not in "".join(proc.lines)


@pytest_asyncio.fixture
async def admin(cloud: CloudProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cloud.url, timeout=10) as client:
        resp = await client.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        client.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
        yield client


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 15) -> None:
    """Poll the cloud (there is nothing to await there) until ``check`` holds; bounded."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def enrolled(cloud: CloudProcess, data_dir: Path, url: str | None = None) -> CloudCredentials:
    creds = await asyncio.to_thread(enroll, cloud.url, cloud.token(), data_dir, "bay-1")
    if url is not None:  # talk to the cloud through a proxy
        creds = CloudCredentials(url, creds.device_id, creds.device_key, creds.site_id)
        await asyncio.to_thread(creds.save, data_dir)
    return creds


def write_events(store: Store, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        if i % 3 == 0:
            store.add_event("cart", payloads.cart(i, "locked"), outbox_topic="carts")
        else:
            payload = payloads.plate_read(f"B{i:05d}", read_id=i + 1)
            store.add_event("plate.read", payload, outbox_topic="plates")


def keys_of(store: Store) -> set[str]:
    return {i.idempotency_key for i in store.outbox_batch(100_000) if i.rejected_at is None}


# ---------------------------------------------------------------------- enrolment
@pytest.fixture
def _root_logging() -> Iterator[None]:
    """cli.main sets up logging to the (captured) stderr: put the root logger back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("_root_logging")
def test_enroll_command(
    cloud: CloudProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(["enroll", *args, "--data-dir", str(tmp_path)])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out.strip(), err

    code, device_id, err = run("--cloud", cloud.url + "/", "--token", cloud.token())
    assert code == 0, err
    saved = CloudCredentials.load(tmp_path)
    assert (saved.device_id, saved.cloud_url, saved.site_id) == (
        device_id,
        cloud.url,
        cloud.site_id,
    )
    assert saved.device_key.startswith("cwd_")
    assert stat.S_IMODE((tmp_path / "cloud.json").stat().st_mode) == 0o600
    assert saved.device_key not in err

    code, _, err = run("--cloud", cloud.url, "--token", cloud.token())
    assert code == 2
    assert f"already enrolled as device {device_id}" in err
    code, _, err = run("--cloud", cloud.url, "--token", "cwe_not-a-token", "--force")
    assert code == 2
    assert "refused the token" in err
    assert CloudCredentials.load(tmp_path).device_id == device_id  # untouched
    code, _, err = run("--cloud", f"http://127.0.0.1:{free_port()}", "--token", "t", "--force")
    assert code == 2
    assert "cannot reach the cloud" in err
    code, _, err = run("--cloud", "ftp://cloud", "--token", "t", "--force")
    assert (code, "is not an http:// or https:// URL" in err) == (2, True)


# ---------------------------------------------------------------------- the happy path
@pytest.mark.asyncio
async def test_heartbeat_commands_and_events_arrive_exactly_once(
    cloud: CloudProcess, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    creds = await enrolled(cloud, tmp_path)
    store = Store.in_dir(tmp_path)
    await asyncio.to_thread(write_events, store, 120)
    expected = await asyncio.to_thread(keys_of, store)
    await asyncio.to_thread(store.add_event, "test.tick", {}, outbox_topic="test")  # not sendable
    resp = await admin.post(
        f"/api/v1/devices/{creds.device_id}/commands", json={"kind": "read_plate"}
    )
    assert resp.status_code == 201, resp.text
    commands: list[Command] = []

    async def on_command(command: Command) -> CommandOutcome:
        commands.append(command)
        return CommandOutcome(True, "read B00001")

    registry = CollectorRegistry()
    status = DeviceStatus(stream_status="online", config_version=3, metrics={"fps": 5.0,
                          "bad": float("nan")})  # fmt: skip
    sync = SyncService(creds, store, status=lambda: status, on_command=on_command,
                       metrics=SyncMetrics(registry), settings=FAST)  # fmt: skip
    await sync.start()
    try:

        async def device() -> dict[str, Any]:
            found = (await admin.get("/api/v1/devices")).json()["devices"]
            (mine,) = [d for d in found if d["id"] == creds.device_id]
            return dict(mine)

        async def online() -> bool:
            d = await device()
            return bool(d["online"]) and d["stream_status"] == "online"

        async def command_done() -> bool:
            listed = (await admin.get(f"/api/v1/devices/{creds.device_id}/commands")).json()
            return bool(listed["commands"][0]["status"] == "succeeded")

        async def drained() -> bool:
            return sync.state.outbox_pending == 0 and sync.state.events_sent == len(expected)

        await until("the device online", online)
        await until("the command's result", command_done)
        await until("the outbox drained", drained)
        mine = await device()
        assert (mine["config_version"], mine["metrics"]["fps"]) == (3, 5.0)
        assert "bad" not in mine["metrics"]
        assert [c.kind for c in commands] == ["read_plate"]
    finally:
        await sync.stop()
    stored = cloud.events(creds.device_id)
    assert len(stored) == len(expected) == 120
    assert {k for k, _ in stored} == expected
    plates = (await admin.get("/api/v1/plates", params={"plate": "B", "limit": 500})).json()
    assert len([r for r in plates["reads"] if r["device_id"] == creds.device_id]) == 80
    assert store.outbox_counts() == (0, 1)  # the test.tick row: set aside, kept
    value = registry.get_sample_value
    assert value("carwash_edge_sync_events_sent_total", {"outcome": "new"}) == 120
    assert value("carwash_edge_sync_events_rejected_total", {"reason": "kind"}) == 1
    assert (value("carwash_edge_sync_heartbeat_seconds_count") or 0) >= 1
    health = sync.state.as_dict()
    assert health["outbox"]["last_error"] is None
    assert health["outbox"]["last_success"].endswith("Z")
    store.close()


# ---------------------------------------------------------------------- outage
@pytest.mark.asyncio
async def test_outage_refused_then_500s_then_hanging_costs_nothing(
    cloud: CloudProcess, tmp_path: Path
) -> None:
    async with FaultProxy(cloud.port, mode="down") as proxy:
        creds = await enrolled(cloud, tmp_path, url=proxy.url)
        store = Store.in_dir(tmp_path)
        registry = CollectorRegistry()
        sync = SyncService(creds, store, status=DeviceStatus, metrics=SyncMetrics(registry),
                           settings=FAST)  # fmt: skip
        failures = registry.get_sample_value
        await sync.start()
        try:
            written = 0
            phases: list[tuple[Mode, str]] = [
                ("down", "unreachable"), ("error", "http_500"), ("hang", "timeout"),
            ]  # fmt: skip
            for mode, reason in phases:
                # Written first: every push under the new mode carries them all.
                await asyncio.to_thread(write_events, store, 40, written)
                written += 40
                await proxy.set_mode(mode)
                sync.notify_outbox()

                async def failed(reason: str = reason) -> bool:
                    labels = {"op": "outbox", "reason": reason}
                    return (failures("carwash_edge_sync_failures_total", labels) or 0) >= 2

                await until(f"outbox failures ({reason})", failed)
                assert sync.state.outbox.last_error is not None
                # All waiting, nothing lost, nothing set aside.
                assert await asyncio.to_thread(store.outbox_counts) == (written, 0)
                assert not sync.state.online  # heartbeats fail too
                # The loop is never blocked: a short sleep takes what it should.
                started = time.monotonic()
                await asyncio.sleep(0.01)
                assert time.monotonic() - started < 1.0
            assert cloud.events(creds.device_id) == []
            await proxy.set_mode("pass")

            async def drained() -> bool:
                return sync.state.outbox_pending == 0 and sync.state.online

            await until("the outbox drained after the outage", drained)
        finally:
            started = time.monotonic()
            await sync.stop()
            assert time.monotonic() - started < 2.0
    stored = cloud.events(creds.device_id)
    assert len(stored) == written == 120
    assert len({k for k, _ in stored}) == 120
    assert proxy.requests["hang"] >= 1
    assert proxy.requests["error"] >= 1
    store.close()


# ---------------------------------------------------------------------- kill -9
def start_pusher(db: Path, data_dir: Path, batch: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.sync_pusher", str(db), str(data_dir), str(batch)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"sync pusher did not start: {err}")
    return proc


def kill_9(proc: subprocess.Popen[str]) -> None:
    proc.kill()  # SIGKILL: no cleanup of any kind
    proc.communicate(timeout=10)
    assert proc.returncode == -9


@pytest.mark.timeout(90)
@pytest.mark.asyncio
async def test_kill_9_in_the_middle_of_a_push_loses_and_duplicates_nothing(
    cloud: CloudProcess, tmp_path: Path
) -> None:
    total = 300
    store = Store.in_dir(tmp_path)
    await asyncio.to_thread(write_events, store, total)
    expected = await asyncio.to_thread(keys_of, store)
    db = tmp_path / "edge.db"
    async with FaultProxy(cloud.port, mode="drop_responses") as proxy:
        creds = await enrolled(cloud, tmp_path, url=proxy.url)

        async def cloud_has(n: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return len(await asyncio.to_thread(cloud.events, creds.device_id)) >= n

            return check

        # 1. The cloud commits batches, the pusher never hears back: killed then.
        proc = await asyncio.to_thread(start_pusher, db, tmp_path, 20)
        try:
            await until("a batch committed by the cloud", await cloud_has(20))
        finally:
            kill_9(proc)
        assert len(await asyncio.to_thread(store.outbox_pending, 1000)) == total  # none acked
        # 2. Answers get through now; killed at some point in the middle of the stream.
        await proxy.set_mode("pass")
        proc = await asyncio.to_thread(start_pusher, db, tmp_path, 20)
        try:
            await until("half the events in the cloud", await cloud_has(total // 2))
        finally:
            kill_9(proc)
        # 3. Started again: it finishes.
        proc = await asyncio.to_thread(start_pusher, db, tmp_path, 20)
        try:

            async def drained() -> bool:
                return (await asyncio.to_thread(store.outbox_counts)) == (0, 0)

            await until("the outbox drained", drained, timeout_s=30)
        finally:
            kill_9(proc)
    stored = cloud.events(creds.device_id)
    assert len(stored) == total
    assert {k for k, _ in stored} == expected
    store.close()
