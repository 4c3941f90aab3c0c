"""Discovery in the window: an edge started after the console appears in the sidebar, and is
shown offline once it stops. zeroconf on both sides is pinned to 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from PySide6.QtCore import Qt

from tests.gui.conftest import EdgeProcessFactory, wait_until

pytestmark = [pytest.mark.gui, pytest.mark.integration]


@pytest.mark.asyncio
async def test_edge_started_after_the_console_appears_then_goes_offline(
    console_factory: Any, edge_process: EdgeProcessFactory
) -> None:
    console = await console_factory(discovery=True, interfaces=["127.0.0.1"])
    sidebar = console.sidebar
    assert not sidebar.devices

    proc = await edge_process(name="bay zeroconf", site="south")
    listening = asyncio.get_running_loop().time()

    def found() -> Any:
        return next((d for d in sidebar.devices.values() if d.name == "bay zeroconf"), None)

    took = await wait_until(lambda: found() is not None and found().online, 3.0, "the new edge")
    device = found()
    print(f"edge in the sidebar {took:.2f} s after it started listening")
    assert device.source == "zeroconf"
    assert device.site == "south"
    assert device.url == proc.url
    item = sidebar.item_for(device.key)
    assert item is not None
    assert item.text(0) == "bay zeroconf"
    assert item.parent() is not None
    assert item.parent().text(0) == "south"
    # The dot shows the one state: the edge answers, and no key is stored for it yet.
    await wait_until(lambda: sidebar.state_of(device.key) == "key_needed", 3.0, "asked")
    assert item.data(0, Qt.ItemDataRole.AccessibleDescriptionRole) == "key_needed"
    assert asyncio.get_running_loop().time() - listening < 3.5

    await asyncio.to_thread(proc.stop)
    gone = await wait_until(lambda: sidebar.state_of(device.key) == "offline", 8.0, "offline")
    print(f"shown offline {gone:.2f} s after it stopped")
    assert "offline" in item.toolTip(0)
    # (Other edges on this machine may be found too: only this one's part is certain.)
    assert "offline" in console.window.status_label.text()
