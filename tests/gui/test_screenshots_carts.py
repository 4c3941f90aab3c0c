"""A screenshot of the carts page: the real ``carwash-console --page carts`` in a real X window
under Xvfb, against a real in-process edge driving simulated lock boards (a socat pty pair).

Saved to tests/artifacts/carts.png (not committed) and checked for being non-blank; the
committed copy docs/screenshots/carts.png is refreshed with ``CARWASH_UPDATE_SCREENSHOTS=1``.
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

from tests.conftest import ROOT, Keys
from tests.gui.conftest import LiveEdgeFactory, wait_until
from tests.gui.test_screenshots_pages import keys_for, responses
from tests.support.lock_sim import LockRig
from tests.support.xvfb import ARTIFACTS, ConsoleProcess, Xvfb, assert_not_blank

pytestmark = [
    pytest.mark.gui,
    pytest.mark.slow,
    pytest.mark.asyncio,
]

DOCS = ROOT / "docs" / "screenshots"


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[LockRig]:
    folder = tmp_path / "bus"
    folder.mkdir()
    # Two boards: carts 1-6 on unit 1, 7-8 on unit 2 (which will go silent).
    started = await LockRig.start(folder, boards=[{"unit": 1, "locks": 6}, {"unit": 2, "locks": 2}])
    yield started
    await started.close()


@pytest_asyncio.fixture
async def screen() -> AsyncIterator[Xvfb]:
    display = await asyncio.to_thread(Xvfb().start)
    yield display
    await asyncio.to_thread(display.stop)


async def test_carts_screenshot(
    rig: LockRig, live_edge: LiveEdgeFactory, screen: Xvfb, tmp_path: Path
) -> None:
    bay = await live_edge(
        name="bay 1", site="north", width=320, height=180, fps=2,
        locks=rig.config.model_dump(mode="json"),
    )  # fmt: skip
    await bay.edge.start_locks()
    service = bay.edge.locks
    assert service is not None
    await wait_until(lambda: all(c.state == "locked" for c in service.carts()), 5, "locked")
    # Every state on one page: locked (1, 6), unlocked (2), in use (3, 5), fault (4),
    # unknown (7, 8: board 2 silent).
    async with httpx.AsyncClient(base_url=bay.url, headers=Keys.auth(bay.keys.operator)) as api:
        for cart in (2, 3, 5):
            r = await api.post(f"/api/carts/{cart}/unlock", json={"request_id": f"shot-{cart}"})
            assert r.status_code == 200, r.text
    for cart in (3, 5):
        rig.thread.call(lambda cart=cart: rig.sim.take(cart))
    rig.sim.lock(4).stuck_bolt = False  # reads open while the lock holds
    rig.thread.call(lambda: rig.sim.set_online(2, False))
    want = ["locked", "unlocked", "in_use", "fault", "in_use", "locked", "unknown", "unknown"]
    await wait_until(lambda: [c.state for c in service.carts()] == want, 5, "the states")

    home = tmp_path / "home"
    keys_for(home, {bay.url: bay.keys.operator})
    console = ConsoleProcess(screen, home, "--edge", bay.url, "--page", "carts").start()
    try:
        polls = await responses(bay, "/api/carts")
        for _ in range(300):
            if await responses(bay, "/api/carts") >= polls + 3:
                break
            await asyncio.sleep(0.1)
        assert await responses(bay, "/api/carts") >= polls + 3, (
            "the console never polled the carts:\n" + console.log[-3000:]
        )
        await asyncio.sleep(1.0)  # the last answer painted
        code = console._proc.poll() if console._proc is not None else None
        assert code is None, f"the console exited ({code}):\n{console.log}"
        shot = ARTIFACTS / "carts.png"
        await asyncio.to_thread(screen.screenshot, shot)
        assert_not_blank(shot)
        if os.environ.get("CARWASH_UPDATE_SCREENSHOTS") == "1":
            DOCS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, DOCS / "carts.png")
    finally:
        await asyncio.to_thread(console.stop)
