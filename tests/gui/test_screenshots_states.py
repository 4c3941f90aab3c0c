"""Screenshots under Xvfb of what H2 changed: the wall with an offline bay and a bay whose edge
needs a key (one state everywhere, the alert strip), and the config editor of an edge with lock
boards (the boards as a table). Copied to docs/screenshots with CARWASH_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.live_config import ConfigManager
from tests.gui.conftest import LiveEdgeFactory
from tests.gui.test_screenshots_pages import _keep, _running, keys_for, responses, screen
from tests.support.lock_sim import LockRig
from tests.support.xvfb import ARTIFACTS, ConsoleProcess, Xvfb, assert_not_blank

pytestmark = [pytest.mark.gui, pytest.mark.slow, pytest.mark.asyncio]
__all__ = ["screen"]  # the fixture, used by name


async def test_wall_with_an_offline_and_a_key_needed_bay_screenshot(
    live_edge: LiveEdgeFactory, screen: Xvfb, tmp_path: Path
) -> None:
    bays = [
        await live_edge(name=f"bay {n}", site="north", width=640, height=360, fps=5)
        for n in (1, 2, 3, 4)
    ]
    home = tmp_path / "home"
    # bay 3 has no key; bay 4 stops answering.
    keys_for(home, {b.url: b.keys.viewer for b in bays if b.name != "bay 3"})
    await bays[3].stop_serving()
    edges = [arg for b in bays for arg in ("--edge", b.url)]
    console = ConsoleProcess(screen, home, *edges, "--layout", "2x2", "--page", "wall").start()
    try:
        console.wait_for(r"all|first picture on screen", 60)
        for _ in range(150):  # pictures on the live tiles, and past the offline threshold
            if all([await responses(b, "/api/snapshot") >= 5 for b in bays[:2]]):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(4.0)
        _running(console)
        shot = ARTIFACTS / "wall-states.png"
        await asyncio.to_thread(screen.screenshot, shot)
        assert_not_blank(shot)
        _keep(shot, "wall-states.png")
    finally:
        await asyncio.to_thread(console.stop)


async def test_config_editor_with_lock_boards_screenshot(
    rig: LockRig, live_edge: LiveEdgeFactory, screen: Xvfb, tmp_path: Path
) -> None:
    locks = rig.config.model_dump(mode="json")
    # Explicit cart numbers (as an installer writes them): carts 1-4 and 5-6, as the rig wires.
    for board, first in zip(locks["boards"], (1, 5), strict=True):
        board["first_cart"] = first
    bay = await live_edge(name="bay 1", site="north", fps=2, locks=locks)
    assert bay.edge.store is not None
    manager = ConfigManager(
        bay.edge, bay.edge.store, path=bay.data_dir / "edge.toml", emit=bay.edge.events.emit
    )
    await manager.start()
    bay.edge.live = manager
    home = tmp_path / "home"
    keys_for(home, {bay.url: bay.keys.admin})
    console = ConsoleProcess(screen, home, "--edge", bay.url, "--page", "config").start()
    try:
        for _ in range(300):
            if await responses(bay, "/api/config/history") >= 1:
                break
            await asyncio.sleep(0.1)
        assert await responses(bay, "/api/config/history") >= 1, console.log[-3000:]
        await asyncio.sleep(1.5)
        _running(console)
        shot = ARTIFACTS / "config-lock-boards.png"
        await asyncio.to_thread(screen.screenshot, shot)
        assert_not_blank(shot)
        _keep(shot, "config-lock-boards.png")
    finally:
        await asyncio.to_thread(console.stop)
        await manager.stop()
