"""One state per device across the sidebar, the status bar's count, the wall tile and the alerts,
through a kill -9, a SIGSTOP and a revoked key (real edges on loopback)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialogButtonBox, QMenu

from console.ui.sidebar import KeyDialog
from edge.keys import KeyStore
from tests.gui.conftest import EdgeProcessFactory, LiveEdgeFactory, wait_until

pytestmark = [pytest.mark.gui, pytest.mark.asyncio]


def shown(console: Any, key: str) -> dict[str, Any]:
    """What every part of the console says about device ``key`` now."""
    index = console.wall.assignments.index(key)
    tile = console.wall_view.tiles[index]
    codes = {r.alert.code for r in console.alerts.rows if r.alert.device_key == key}
    return {
        "state": console.status.state(key).name,
        "sidebar": console.sidebar.state_of(key),
        "count": console.window.status_label.text(),
        "overlay": console.wall.look(index).overlay,
        "footer": tile.status_shown,
        "alerts": codes,
        "banner": console.wall_view.alert_banner.text(),
    }


def only_key(console: Any) -> str:
    keys = [k for k in console.devices.devices if not k.startswith("http")]
    assert len(keys) == 1, console.devices.devices
    return keys[0]


async def test_kill_9_and_sigstop_show_one_state_everywhere(
    edge_process: EdgeProcessFactory, console_factory: Any
) -> None:
    proc = await edge_process(name="bay 1")
    console = await console_factory(edges=[(proc.url, proc.keys.viewer)], layout=(1, 1))
    await wait_until(lambda: len(console.devices.devices) == 1 and only_key(console), 15, "id")
    key = only_key(console)
    await wait_until(lambda: shown(console, key)["sidebar"] == "online", 15, "online")
    await wait_until(lambda: console.wall.look(0).live, 15, "live picture")
    now = shown(console, key)
    assert now["count"] == "1 edge, 1 online"
    assert "offline" not in now["alerts"]

    # SIGSTOP: the kernel still accepts connections, nothing answers; the requests time out.
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        await wait_until(lambda: shown(console, key)["state"] == "offline", 30, "stopped: offline")
        await wait_until(lambda: console.wall_view.tiles[0].status_shown == "offline", 2, "footer")
        now = shown(console, key)
        assert now["sidebar"] == "offline", now
        assert now["count"] == "1 edge, 0 online, 1 offline", now
        assert now["overlay"].startswith("OFFLINE since"), now
        assert "offline" in now["alerts"], now
        assert "bay 1" in now["banner"], now
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    await wait_until(lambda: shown(console, key)["state"] == "online", 30, "back online")
    await wait_until(lambda: "offline" not in shown(console, key)["alerts"], 5, "alert cleared")
    assert shown(console, key)["count"] == "1 edge, 1 online"

    # kill -9: no goodbye; the next checks are refused.
    os.kill(proc.pid, signal.SIGKILL)
    took = await wait_until(lambda: shown(console, key)["state"] == "offline", 15, "dead: offline")
    assert took < 10.0
    await wait_until(lambda: console.wall_view.tiles[0].status_shown == "offline", 2, "footer")
    now = shown(console, key)
    assert now["sidebar"] == "offline", now
    assert now["count"] == "1 edge, 0 online, 1 offline", now
    assert "connection refused" in now["overlay"], now
    assert "offline" in now["alerts"], now
    assert len([r for r in console.alerts.rows if r.alert.code == "offline"]) == 1


def site_key(bays: list[Any], label: str) -> tuple[str, str]:
    """One viewer key valid on every bay of the site (as a site's installer sets it up):
    made on the first edge, its entry copied into the others' key files. ``(key, id)``."""
    key, entry = KeyStore.in_dir(bays[0].data_dir).create("viewer", label)
    for bay in bays[1:]:
        path = KeyStore.in_dir(bay.data_dir).path
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["keys"].append(dataclasses.asdict(entry))
        path.write_text(json.dumps(raw), encoding="utf-8")
    return key, entry.id


async def test_a_revoked_key_is_key_needed_everywhere_and_one_prompt_fixes_the_site(
    live_edge: LiveEdgeFactory, console_factory: Any
) -> None:
    bays = [await live_edge(name=f"bay {n}") for n in (1, 2)]
    old_key, old_id = site_key(bays, "site key")
    console = await console_factory(edges=[(b.url, old_key) for b in bays], layout=(1, 2))
    await wait_until(
        lambda: len([k for k in console.devices.devices if not k.startswith("http")]) == 2,
        10, "both known by id",
    )  # fmt: skip
    keys = list(console.devices.devices)
    await wait_until(
        lambda: all(console.status.state(k).name == "online" for k in keys), 15, "online"
    )
    assert console.key_dialog is None
    for bay in bays:
        KeyStore.in_dir(bay.data_dir).revoke(old_id)
    await wait_until(
        lambda: all(shown(console, k)["state"] == "key_needed" for k in keys), 15, "key needed"
    )
    await wait_until(
        lambda: all(t.status_shown == "key needed" for t in console.wall_view.tiles), 2, "footers"
    )
    for k in keys:
        now = shown(console, k)
        assert now["sidebar"] == "key_needed", now
        assert now["overlay"].startswith("API KEY NEEDED"), now
        assert "OFFLINE" not in now["overlay"], now
        assert "key_needed" in now["alerts"], now
    assert console.window.status_label.text() == "2 edges, 0 online, 2 need a key"
    # The console asked by itself, once, for both bays of the site.
    dialog = console.key_dialog
    assert isinstance(dialog, KeyDialog)
    await wait_until(lambda: set(dialog.devices) == set(keys), 5, "both bays in the prompt")
    assert dialog.isVisible()
    new_key, _new_id = site_key(bays, "new site key")
    dialog.key_edit.setText(new_key)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    await wait_until(
        lambda: all(shown(console, k)["state"] == "online" for k in keys), 15, "online again"
    )
    await wait_until(lambda: not console.alerts.rows, 5, "key alerts cleared")
    assert console.window.status_label.text() == "2 edges, 2 online"
    assert all(console.sidebar.state_of(k) == "online" for k in keys)


async def test_tile_enter_key_action_and_keyboard(
    live_edge: LiveEdgeFactory, console_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bay = await live_edge(name="bay 7")
    console = await console_factory(edges=[(bay.url, None)], layout=(1, 1))
    await wait_until(lambda: console.wall.state(0) is not None
                     and console.wall.state(0).name == "key_needed", 15, "key needed")  # fmt: skip
    await wait_until(lambda: console.key_dialog is not None, 5, "asked by itself")
    console.key_dialog.reject()
    await wait_until(lambda: console.key_dialog is None, 5, "prompt closed")
    tile = console.wall_view.tiles[0]
    # The tile takes the focus and answers keys: K asks for the key, Enter enlarges.
    assert tile.focusPolicy() == Qt.FocusPolicy.StrongFocus  # Tab and clicks reach it
    console.window.activateWindow()
    tile.setFocus()
    QTest.keyClick(tile, Qt.Key.Key_K)
    await wait_until(lambda: console.key_dialog is not None, 5, "K opens Enter key")
    dialog = console.key_dialog
    assert dialog.windowTitle() == "Enter API key"
    dialog.key_edit.setText(bay.keys.viewer)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    await wait_until(lambda: console.wall.look(0).live, 15, "live with the key")
    assert console.sidebar.state_of(console.wall.assignments[0]) == "online"
    QTest.keyClick(tile, Qt.Key.Key_Return)
    assert console.wall_view.enlarged == 0
    QTest.keyClick(tile, Qt.Key.Key_Escape)
    assert console.wall_view.enlarged is None
    # The menu opens at the pointer and offers "Enter key…" first.
    seen: list[QPoint] = []
    monkeypatch.setattr(QMenu, "popup", lambda _menu, at, _action=None: seen.append(at))
    tile._menu(QPoint(10, 12))
    assert seen == [tile.mapToGlobal(QPoint(10, 12))]
    assert tile.menu is not None
    assert tile.menu.actions()[0].text() == "Enter key…"
    tile.menu.deleteLater()
