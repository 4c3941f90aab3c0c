"""The edge's zeroconf advertisement, seen by a browser in another process.

Every Zeroconf here (advertiser and browsers) is pinned to 127.0.0.1: no multicast leaves the
machine.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from zeroconf import NonUniqueNameException
from zeroconf.asyncio import AsyncZeroconf

from edge import discovery
from edge.discovery import (
    SERVICE_TYPE,
    Advertiser,
    advertise_interfaces,
    device_id,
    instance_name,
)
from edge.keys import KeyStore
from tests.support.edge_process import EdgeProcess

pytestmark = pytest.mark.integration

LOOPBACK = ["127.0.0.1"]
ANY_V4 = "0.0.0.0"  # noqa: S104 - a listen address to advertise for, never bound here

# A browser in its own interpreter, as a console would be. `watch SECONDS` prints a JSON line
# per added/updated/removed service; `lookup NAME TIMEOUT_MS` prints the service or null.
BROWSER = r"""
import asyncio, json, sys
from zeroconf import ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

TYPE = "_carwash._tcp.local."

def describe(info):
    return {"name": info.name, "txt": info.decoded_properties, "port": info.port,
            "addresses": info.parsed_addresses()}

async def watch(seconds):
    aiozc = AsyncZeroconf(interfaces=["127.0.0.1"])
    changes = asyncio.Queue()
    def on_change(zeroconf, service_type, name, state_change):
        changes.put_nowait((name, state_change))
    browser = AsyncServiceBrowser(aiozc.zeroconf, TYPE, handlers=[on_change])
    print(json.dumps({"event": "ready"}), flush=True)
    try:
        async with asyncio.timeout(seconds):
            while True:
                name, change = await changes.get()
                event = {"event": change.name.lower(), "name": name}
                if change is not ServiceStateChange.Removed:
                    info = AsyncServiceInfo(TYPE, name)
                    if await info.async_request(aiozc.zeroconf, 3000):
                        event.update(describe(info))
                print(json.dumps(event), flush=True)
    except TimeoutError:
        pass
    finally:
        await browser.async_cancel()
        await aiozc.async_close()

async def lookup(name, timeout_ms):
    aiozc = AsyncZeroconf(interfaces=["127.0.0.1"])
    try:
        info = await aiozc.async_get_service_info(TYPE, name, timeout_ms)
        print(json.dumps(describe(info) if info else None), flush=True)
    finally:
        await aiozc.async_close()

if sys.argv[1] == "watch":
    asyncio.run(watch(float(sys.argv[2])))
else:
    asyncio.run(lookup(sys.argv[2], int(sys.argv[3])))
"""


class Browser:
    """The browser script running in a subprocess; events read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def next_event(self, name: str, event: str, within_s: float = 8.0) -> dict[str, Any]:
        """The next ``event`` line about service ``name`` (other services are skipped)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(within_s):
            while True:
                line = await self.proc.stdout.readline()
                assert line, "browser exited early"
                found = json.loads(line)
                if found["event"] == event and found.get("name") in (name, None):
                    return found  # type: ignore[no-any-return]

    async def events(self, wanted: set[tuple[str, str]], within_s: float = 8.0) -> dict[Any, Any]:
        """Every wanted ``(name, event)``, in whatever order they come."""
        assert self.proc.stdout is not None
        seen: dict[Any, Any] = {}
        async with asyncio.timeout(within_s):
            while not wanted <= seen.keys():
                line = await self.proc.stdout.readline()
                assert line, "browser exited early"
                found = json.loads(line)
                seen[found.get("name"), found["event"]] = found
        return seen


async def run_browser_script(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    script = tmp_path / "browser.py"
    script.write_text(BROWSER, encoding="utf-8")
    return await asyncio.create_subprocess_exec(
        sys.executable, str(script), *args, stdout=asyncio.subprocess.PIPE
    )


@pytest_asyncio.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    proc = await run_browser_script(tmp_path, "watch", "30")
    watcher = Browser(proc)
    await watcher.next_event("", "ready", within_s=15)
    yield watcher
    if proc.returncode is None:
        proc.terminate()
    await proc.wait()


async def lookup(tmp_path: Path, name: str, timeout_ms: int = 1500) -> dict[str, Any] | None:
    proc = await run_browser_script(tmp_path, "lookup", name, str(timeout_ms))
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return json.loads(out)  # type: ignore[no-any-return]


def make_advertiser(**overrides: Any) -> Advertiser:
    args: dict[str, Any] = {
        "dev_id": str(uuid.uuid4()), "name": "bay 3", "site": "north-street", "version": "9.8.7",
        "port": 18080, "listen_host": "127.0.0.1", "interfaces": LOOPBACK,
        "caps": ("snapshot", "plates"), "cfg_version": 1,
    }  # fmt: skip
    args.update(overrides)
    return Advertiser(**args)


# ---------------------------------------------------------------------- device id
def test_device_id_is_made_once_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    first = device_id(data_dir)
    assert uuid.UUID(first).version == 4
    assert (data_dir / "device_id").read_text(encoding="utf-8").strip() == first
    assert device_id(data_dir) == first  # a restart reads it back
    assert not [p for p in data_dir.iterdir() if p.name != "device_id"]  # no temp files left


@pytest.mark.parametrize("content", ["not a uuid\n", "", "\udcff"])
def test_corrupt_device_id_is_replaced_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    (tmp_path / "device_id").write_text(content, encoding="utf-8", errors="surrogateescape")
    with caplog.at_level(logging.WARNING, logger="edge.discovery"):
        new = device_id(tmp_path)
    assert uuid.UUID(new)
    assert [r.levelno for r in caplog.records if r.name == "edge.discovery"] == [logging.WARNING]
    assert "device_id" in caplog.text
    assert device_id(tmp_path) == new


# ---------------------------------------------------------------------- where to advertise
@pytest.mark.parametrize(
    ("listen_host", "configured", "expected"),
    [
        ("127.0.0.1", None, ["127.0.0.1"]),
        ("192.168.1.20", None, ["192.168.1.20"]),
        ("::1", None, ["::1"]),
        ("[::1]", None, ["::1"]),
        (ANY_V4, None, None),
        ("::", None, None),
        (ANY_V4, ["10.0.0.5", "fd00::5"], ["10.0.0.5", "fd00::5"]),
        ("127.0.0.1", ["127.0.0.1"], ["127.0.0.1"]),
        (ANY_V4, [], []),
    ],
)
def test_advertise_interfaces(
    listen_host: str, configured: list[str] | None, expected: list[str] | None
) -> None:
    assert advertise_interfaces(listen_host, configured) == expected


def test_advertised_addresses_are_never_a_wildcard() -> None:
    # Only addresses() is called: these advertisers are never started (no multicast at all).
    assert make_advertiser(listen_host="127.0.0.1").addresses() == ["127.0.0.1"]
    assert make_advertiser(listen_host=ANY_V4, interfaces=["10.0.0.5", "fd00::5"]).addresses() == [
        "10.0.0.5"
    ]
    every = make_advertiser(listen_host=ANY_V4, interfaces=None).addresses()
    assert every
    assert ANY_V4 not in every
    assert all(":" not in a for a in every)  # IPv4 only: the API listens on IPv4 only


def test_instance_name_fits_dns_sd_and_is_unique_per_device() -> None:
    dev = "0123abcd-0000-4000-8000-000000000000"
    assert instance_name("bay 3", dev) == f"bay 3 (0123abcd).{SERVICE_TYPE}"
    long = instance_name("Waschstraße Süd " * 8, dev)
    label = long.removesuffix(f".{SERVICE_TYPE}")
    assert len(label.encode()) <= 63
    assert label.endswith(" (0123abcd)")
    assert instance_name("\x00\x1f", dev).startswith("edge (")


# ---------------------------------------------------------------------- on the wire (loopback)
@pytest.mark.asyncio
async def test_another_process_finds_updates_and_loses_the_edge(
    tmp_path: Path, browser: Browser
) -> None:
    adv = make_advertiser()
    started = time.monotonic()
    try:
        await adv.start()
        assert adv.info is not None
        name = adv.info.name
        assert name == instance_name("bay 3", adv.dev_id)

        added = await browser.next_event(name, "added")
        assert added["txt"] == {
            "id": adv.dev_id, "name": "bay 3", "site": "north-street", "role": "edge",
            "ver": "9.8.7", "api": "/api", "caps": "snapshot,plates", "cfg": "1",
        }  # fmt: skip
        assert added["port"] == 18080
        assert added["addresses"] == ["127.0.0.1"]
        found_s = time.monotonic() - started

        await adv.update(cfg_version=2)
        updated = await browser.next_event(name, "updated")
        assert updated["txt"]["cfg"] == "2"
        assert updated["txt"]["id"] == adv.dev_id
    finally:
        await adv.stop()
    await browser.next_event(name, "removed")
    assert await lookup(tmp_path, name) is None
    await adv.stop()  # twice is fine
    print(f"found after {found_s:.2f} s, whole test {time.monotonic() - started:.2f} s")


@pytest.mark.asyncio
async def test_a_new_name_re_registers(tmp_path: Path, browser: Browser) -> None:
    adv = make_advertiser()
    try:
        await adv.start()
        old = instance_name("bay 3", adv.dev_id)
        await browser.next_event(old, "added")
        await adv.update(name="bay 4", site="south")
        new = instance_name("bay 4", adv.dev_id)
        seen = await browser.events({(old, "removed"), (new, "added")})
        assert seen[new, "added"]["txt"]["name"] == "bay 4"
        assert seen[new, "added"]["txt"]["site"] == "south"
    finally:
        await adv.stop()


@pytest.mark.asyncio
async def test_cfg_follows_a_config_change_made_through_the_api(
    tmp_path: Path, browser: Browser
) -> None:
    """A real edge advertises its config version; a PATCH bumps ``cfg`` as browsers see it."""
    data_dir = tmp_path / "edge"
    dev_id = device_id(data_dir)
    key, _ = KeyStore.in_dir(data_dir).create("admin", "test")
    edge = EdgeProcess(
        data_dir, "--source", "synthetic://?width=160&height=90&fps=5", "--name", "bay 9",
        log_level="info",
    )  # fmt: skip
    await asyncio.to_thread(edge.start)
    try:
        name = instance_name("bay 9", dev_id)
        added = await browser.next_event(name, "added", within_s=15)
        assert added["txt"]["cfg"] == "1"
        assert added["txt"]["id"] == dev_id
        async with httpx.AsyncClient(
            base_url=edge.url, headers={"Authorization": f"Bearer {key}"}
        ) as client:
            answer = await client.patch("/api/config", json={"snapshots": {"history": 7}})
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == 2
        updated = await browser.next_event(name, "updated")
        assert updated["txt"]["cfg"] == "2"
    finally:
        assert await asyncio.to_thread(edge.stop) == 0


# ---------------------------------------------------------------------- failures: edge carries on
@pytest.mark.asyncio
async def test_cannot_open_sockets_warns_once_and_carries_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(**kwargs: Any) -> AsyncZeroconf:
        raise OSError(errno.EADDRINUSE, "Address already in use")

    monkeypatch.setattr(discovery, "AsyncZeroconf", refuse)
    adv = make_advertiser()
    with caplog.at_level(logging.DEBUG, logger="edge.discovery"):
        await adv.start()
        await adv.update(cfg_version=5)
        await adv.start()
        await adv.stop()
        await adv.stop()
    warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "edge.discovery"
    ]
    assert len(warnings) == 1
    assert "Address already in use" in warnings[0].getMessage()
    assert adv.info is None


@pytest.mark.asyncio
async def test_failed_registration_closes_zeroconf(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def conflict(self: AsyncZeroconf, *args: Any, **kwargs: Any) -> None:
        raise NonUniqueNameException

    monkeypatch.setattr(AsyncZeroconf, "async_register_service", conflict)
    adv = make_advertiser()
    with caplog.at_level(logging.WARNING, logger="edge.discovery"):
        await adv.start()
    assert [r.name for r in caplog.records if r.levelno >= logging.WARNING] == ["edge.discovery"]
    assert adv.info is None
    await adv.stop()


@pytest.mark.asyncio
async def test_stop_during_start_cancels_promptly() -> None:
    adv = make_advertiser()
    starting = asyncio.create_task(adv.start())
    await asyncio.sleep(0.1)  # probing takes about a second
    begun = time.monotonic()
    await adv.stop()
    await starting
    assert time.monotonic() - begun < 0.5
    assert adv.info is None
    await adv.start()  # after stop(), start() does nothing
    assert adv.info is None
