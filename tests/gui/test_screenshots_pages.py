"""Screenshots of the plate feed and the device page: the real ``carwash-console`` in a real X
window under Xvfb, against real in-process edges on loopback.

Saved to tests/artifacts/ (not committed) and checked for being non-blank; the committed copies
in docs/screenshots/ are refreshed with ``CARWASH_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from console.services.credentials import CredentialStore
from tests.conftest import ROOT
from tests.gui.conftest import LiveEdge, LiveEdgeFactory, wait_until
from tests.gui.helpers_e import emit_plate_read
from tests.support.xvfb import ARTIFACTS, ConsoleProcess, Xvfb, assert_not_blank

pytestmark = [
    pytest.mark.gui,
    pytest.mark.slow,
    pytest.mark.asyncio,
]

DOCS = ROOT / "docs" / "screenshots"


def keys_for(home: Path, keys: dict[str, str]) -> None:
    """The API keys the console finds in its credential store (by URL, as typed)."""
    store = CredentialStore(home / "config" / "carwash-console" / "credentials.json")
    for url, key in keys.items():
        store.set(url, key)


async def responses(bay: LiveEdge, route: str) -> float:
    """How many answers the edge gave on ``route`` (from its own /metrics)."""
    async with httpx.AsyncClient(base_url=bay.url) as client:
        text = (await client.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("carwash_edge_http_responses_total{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest_asyncio.fixture
async def screen() -> AsyncIterator[Xvfb]:
    display = await asyncio.to_thread(Xvfb().start)
    yield display
    await asyncio.to_thread(display.stop)


def _running(console: ConsoleProcess) -> None:
    code = console._proc.poll() if console._proc is not None else None
    if code is not None:
        pytest.fail(f"the console exited ({code}):\n{console.log}")


def _keep(shot: Path, name: str) -> None:
    if os.environ.get("CARWASH_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS / name)


async def _plates(bay: LiveEdge, reads: list[tuple[str, dict[str, str] | None]]) -> None:
    for plate, member in reads:
        await emit_plate_read(bay, plate, member=member, score=0.91)


async def test_plate_feed_screenshot(
    live_edge: LiveEdgeFactory, screen: Xvfb, tmp_path: Path
) -> None:
    north = await live_edge(name="bay 1", site="north", width=640, height=360, fps=5)
    south = await live_edge(name="bay 2", site="south", width=640, height=360, fps=5)
    await _plates(
        north,
        [
            ("KA-123-B", {"name": "Ann Lee", "plan": "gold"}),
            ("MX 4411", None),
            ("ZE-77-QQ", None),
            ("HB-900-L", {"name": "Bob Ray", "plan": "basic"}),
        ],
    )
    await _plates(south, [("B-AB 1234", None), ("W-XY 987", {"name": "Cy Dorn", "plan": "gold"}),
                          ("S-QR 55", None)])  # fmt: skip
    home = tmp_path / "home"
    keys_for(home, {north.url: north.keys.viewer, south.url: south.keys.viewer})
    console = ConsoleProcess(
        screen, home, "--edge", north.url, "--edge", south.url, "--page", "plates"
    ).start()
    try:
        # The console follows both edges and fetched the reads' thumbnails (one picture per
        # edge here: the reads were emitted within one frame).
        await wait_until(
            lambda: north.edge.events.subscriber_count >= 1
            and south.edge.events.subscriber_count >= 1,
            20, "the console follows both edges",
        )  # fmt: skip
        for bay in (north, south):
            for _ in range(200):
                if await responses(bay, "/api/snapshots/{seq}") >= 1:
                    break
                await asyncio.sleep(0.1)
            assert await responses(bay, "/api/snapshots/{seq}") >= 1, console.log
        await asyncio.sleep(1.0)  # the last thumbnails decoded and painted
        _running(console)
        shot = ARTIFACTS / "plates.png"
        await asyncio.to_thread(screen.screenshot, shot)
        assert_not_blank(shot)
        _keep(shot, "plates.png")
    finally:
        await asyncio.to_thread(console.stop)


async def test_device_page_screenshot(
    live_edge: LiveEdgeFactory, screen: Xvfb, tmp_path: Path
) -> None:
    bay = await live_edge(name="bay 1", site="north", width=640, height=360, fps=10)
    await bay.edge.events.emit(
        "alert", {"code": "hot", "severity": "warning", "active": False, "message": "cool again"}
    )
    await _plates(bay, [("KA-123-B", {"name": "Ann Lee", "plan": "gold"}), ("MX 4411", None)])
    home = tmp_path / "home"
    keys_for(home, {bay.url: bay.keys.admin})
    console = ConsoleProcess(screen, home, "--edge", bay.url, "--page", "device").start()
    try:
        # The page shows the device (it loaded the config schema, which only the device page
        # asks for) and polled the edge for its charts a good few times.
        for _ in range(300):
            if await responses(bay, "/api/config/schema") >= 1:
                break
            await asyncio.sleep(0.1)
        assert await responses(bay, "/api/config/schema") >= 1, (
            "the device page never showed the device:\n" + console.log[-3000:]
        )
        # (Counted on /api/snapshot/info: this test's own look at /metrics would count too.)
        polls = await responses(bay, "/api/snapshot/info")
        for _ in range(300):
            if await responses(bay, "/api/snapshot/info") >= polls + 8:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        _running(console)
        shot = ARTIFACTS / "device.png"
        await asyncio.to_thread(screen.screenshot, shot)
        assert_not_blank(shot)
        _keep(shot, "device.png")
    finally:
        await asyncio.to_thread(console.stop)
