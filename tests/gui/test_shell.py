"""The console's shell: presenter base, main window, sidebar, themes, crash handler, the CLI."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from console.crash import CrashHandler
from console.presenters.base import Presenter, tracked_slot
from console.ui.main_window import MainWindow
from console.ui.sidebar import Sidebar
from tests.conftest import Keys
from tests.gui.conftest import LiveEdgeFactory, wait_signal, wait_until

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]


class _Boom(Presenter):
    @tracked_slot(str)
    async def fail(self, why: str) -> None:
        await asyncio.sleep(0)
        raise ValueError(why)

    @tracked_slot()
    async def forever(self) -> None:
        await asyncio.Event().wait()


# ---------------------------------------------------------------------- infrastructure
@pytest.mark.asyncio
async def test_runs_on_the_qasync_loop_with_a_real_edge(live_edge: LiveEdgeFactory) -> None:
    assert isinstance(asyncio.get_running_loop(), qasync.QEventLoop)
    bay = await live_edge(name="bay 7")
    async with httpx.AsyncClient(base_url=bay.url) as client:
        r = await client.get("/api/snapshot", headers=Keys.auth(bay.keys.viewer))
        assert r.status_code == 200
        assert r.content.startswith(b"\xff\xd8")
        assert (await client.get("/api/health")).json()["name"] == "bay 7"
    await bay.stop_serving()
    async with httpx.AsyncClient(base_url=bay.url) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/api/health")


@pytest.mark.asyncio
async def test_failed_task_and_slot_become_error_signals() -> None:
    presenter = _Boom()

    async def broken() -> None:
        raise RuntimeError("edge said no")

    presenter.spawn(broken(), name="load")
    assert await wait_signal(presenter.error) == ("edge said no",)
    presenter.fail("bad key")
    assert await wait_signal(presenter.error) == ("bad key",)

    task = presenter.forever()
    assert task is not None
    await asyncio.sleep(0)
    assert task in presenter.tasks
    await presenter.aclose()
    assert task.cancelled()
    assert not presenter.tasks
    with pytest.raises(RuntimeError, match="closed"):
        presenter.spawn(broken())


# ---------------------------------------------------------------------- main window
def test_pages_shortcuts_and_full_screen(qtbot: QtBot) -> None:
    window = MainWindow(Sidebar())
    qtbot.addWidget(window)
    pages: dict[str, QLabel] = {}
    for key in ("wall", "plates", "device", "alerts"):
        pages[key] = QLabel(key)
        window.add_page(key, key.title(), pages[key])
    window.show()
    window.activateWindow()
    QApplication.processEvents()
    assert window.isActiveWindow()
    assert window.current_page == "wall"
    shortcuts = {p.key: p.action.shortcut().toString() for p in window.pages.values()}
    assert shortcuts == {
        "wall": "Ctrl+1", "plates": "Ctrl+2", "device": "Ctrl+3", "alerts": "Ctrl+4"
    }  # fmt: skip
    with qtbot.waitSignal(window.pageShown) as shown:
        qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert shown.args == ["device"]
    assert window.stack.currentWidget() is pages["device"]
    assert window.windowTitle().startswith("Device")
    window.set_page_title("alerts", "Alerts (2)")
    assert window.pages["alerts"].action.text() == "Alerts (2)"
    with pytest.raises(ValueError, match="exists"):
        window.add_page("wall", "again", pages["wall"])
    with qtbot.waitSignal(window.themeToggled):
        qtbot.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window, Qt.Key.Key_F11)
    assert window.fullscreen_action.isChecked()
    assert window.isFullScreen()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    assert not window.isFullScreen()
    with qtbot.waitSignal(window.closing):
        qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert not window.isVisible()


@pytest.mark.asyncio
async def test_console_builds_and_switches_theme(console_factory: Any, qapp: QApplication) -> None:
    console = await console_factory(page="alerts")
    window = console.window
    assert set(window.pages) == {"wall", "plates", "device", "alerts", "carts"}
    assert window.current_page == "alerts"
    before = console.theme
    console._toggle_theme()
    assert console.theme != before
    assert console.settings.theme == console.theme
    while console.theme != "dark":
        console._toggle_theme()
    dark = qapp.palette().color(QPalette.ColorRole.Window)
    console._toggle_theme()  # dark → system
    console._toggle_theme()  # system → light
    assert console.theme == "light"
    assert qapp.palette().color(QPalette.ColorRole.Window).lightness() > dark.lightness()


@pytest.mark.asyncio
async def test_window_size_and_position_are_remembered(console_factory: Any) -> None:
    first = await console_factory()
    assert (first.window.width(), first.window.height()) == (1280, 800)  # the first start
    # Somewhere inside the screen (restoreGeometry pulls a window back onto the screen).
    screen = first.window.screen().availableGeometry()
    x, y = screen.x() + 30, screen.y() + 40
    width, height = screen.width() - 90, screen.height() - 110
    first.window.setGeometry(x, y, width, height)
    await wait_until(lambda: first.window.width() == width, 5, "resized")
    first.window.close()  # as the user closes it: the geometry is kept
    await first.aclose()

    again = await console_factory()  # the next start, same settings
    assert (again.window.width(), again.window.height()) == (width, height)
    assert (again.window.geometry().x(), again.window.geometry().y()) == (x, y)


@pytest.mark.asyncio
async def test_adding_an_edge_by_url_shows_it_in_the_sidebar(
    console_factory: Any, live_edge: LiveEdgeFactory, tmp_path: Path
) -> None:
    bay = await live_edge(name="bay 9", site="north-street")
    console = await console_factory()
    sidebar = console.sidebar
    assert sidebar.tree.topLevelItemCount() == 0
    # The user opens the dialog, types the URL and the key once, presses OK.
    sidebar.ask_for_edge()
    dialog = sidebar.findChild(type(sidebar.make_dialog()))
    assert dialog is not None
    dialog.url_edit.setText("ftp://nope")
    dialog.buttons.accepted.emit()
    assert dialog.isVisible()  # a bad URL is refused with a message
    assert "http://" in dialog.message.text()
    dialog.url_edit.setText(bay.url)
    dialog.key_edit.setText(bay.keys.viewer)
    dialog.buttons.accepted.emit()

    def shown() -> bool:
        device = next(iter(sidebar.devices.values()), None)
        return device is not None and device.name == "bay 9" and device.online

    await wait_until(shown, 5.0, "the new edge in the sidebar, online")
    site = sidebar.tree.topLevelItem(0)
    assert site.text(0) == "north-street"
    assert site.child(0).text(0) == "bay 9"
    # The key was stored once, for that URL, readable by the user only.
    store = tmp_path / "console-config" / "credentials.json"
    assert console.credentials.get(bay.url) == bay.keys.viewer
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert bay.url in console.settings.manual_urls
    # ... and the wall shows its picture with that key.
    await wait_until(lambda: console.wall.tile(0).image is not None, 5.0, "a picture on tile 0")


def test_crash_handler_writes_a_log_and_tells_where(tmp_path: Path) -> None:
    shown: list[tuple[str, Path | None]] = []
    handler = CrashHandler(tmp_path / "logs", show=lambda s, p: shown.append((s, p)))

    def broken() -> None:
        raise KeyError("cart 7")

    try:
        broken()
    except KeyError as err:
        handler.excepthook(KeyError, err, err.__traceback__)
    loop = asyncio.new_event_loop()
    try:
        handler.loop_exception(loop, {"message": "no exception"})  # logged, no dialog
    finally:
        loop.close()
    assert len(shown) == 1
    summary, path = shown[0]
    assert summary == "'cart 7'"
    assert path is not None
    assert path.parent == tmp_path / "logs"
    text = path.read_text(encoding="utf-8")
    assert "KeyError: 'cart 7'" in text
    assert "in broken" in text


# ---------------------------------------------------------------------- command line
def _console(*args: str, tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, check=False,
    )  # fmt: skip


def test_smoke_test_builds_the_window_and_exits_0(tmp_path: Path) -> None:
    result = _console("--smoke-test", "--no-discovery", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "smoke test passed: 5 pages" in result.stderr
    # Nothing but our own log lines (Qt's messages are routed into the log, noise at DEBUG).
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:", line) for line in result.stderr.splitlines())
    log_file = tmp_path / "state" / "carwash-console" / "log" / "console.log"
    assert "smoke test passed" in log_file.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args", [["--layout", "9x9"], ["--page", "nope"], ["--kiosk"], ["--cloud", "http://x"]]
)
def test_bad_command_lines_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = _console(*args, "--smoke-test", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "usage: carwash-console" in result.stderr


@pytest.mark.asyncio
async def test_a_key_typed_later_for_a_device_is_used_at_once(
    console_factory: Any, live_edge: LiveEdgeFactory
) -> None:
    bay = await live_edge(name="bay 11")
    console = await console_factory(edges=[(bay.url, None)], layout=(1, 1))
    wall = console.wall
    await wait_until(lambda: "API key" in wall.look(0).overlay, 5.0, "the missing-key overlay")
    assert wall.tile(0).image is None
    device = next(iter(console.devices.devices.values()))
    console.sidebar.apiKeyEntered.emit(device.key, bay.keys.viewer)
    await wait_until(lambda: wall.look(0).live, 5.0, "a live picture with the new key")
    assert console.credentials.get(device.key) == bay.keys.viewer
