"""The device page against a real in-process edge: charts from its /metrics, health, events,
and the config editor built from its schema, applying, refused values and rollback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QLineEdit
from pytestqt.qtbot import QtBot

from console.presenters.device import DevicePresenter
from console.services.discovery import Device
from console.services.errors import ConsoleError
from console.services.pool import EdgeClients
from console.ui.config_editor import TableEditor
from console.ui.device_page import DevicePage
from edge.live_config import ConfigManager
from tests.conftest import Keys
from tests.gui.conftest import (
    EdgeProcessFactory,
    KeyedEdgeProcess,
    LiveEdge,
    LiveEdgeFactory,
    wait_until,
)
from tests.gui.helpers_e import SignalWaiter, pool_for
from tests.support.lock_sim import LockRig

pytestmark = [pytest.mark.gui, pytest.mark.asyncio]


@dataclass
class Target:
    """What the page needs of an edge: a live in-process one or a ``carwash-edge run``."""

    url: str
    name: str
    site: str
    keys: Keys

    @classmethod
    async def of(cls, edge: LiveEdge | KeyedEdgeProcess) -> Target:
        async with httpx.AsyncClient(base_url=edge.url) as client:
            health = (await client.get("/api/health")).json()
        return cls(edge.url, health["name"], health["site"], edge.keys)

    def device(self) -> Device:
        return Device(
            key=self.url, url=self.url, name=self.name, site=self.site, source="manual",
            online=True,
        )  # fmt: skip


class Page:
    def __init__(self, target: Target, pool: EdgeClients, qtbot: QtBot) -> None:
        self.target = target
        self.device = target.device()
        devices = {self.device.key: self.device}
        self.presenter = DevicePresenter(devices.get, pool.client_for, interval_s=0.25)
        self.view = DevicePage(self.presenter)
        self.confirmations: list[tuple[str, str]] = []
        self.answer = True
        self.view.editor.confirm = self._confirm
        qtbot.addWidget(self.view)
        self.view.resize(1200, 900)
        self.view.show()

    def _confirm(self, title: str, text: str) -> bool:
        self.confirmations.append((title, text))
        return self.answer

    async def edge_config(self) -> dict[str, Any]:
        """``GET /api/config`` straight from the edge (not through the console)."""
        async with httpx.AsyncClient(base_url=self.target.url) as client:
            r = await client.get("/api/config", headers=Keys.auth(self.target.keys.admin))
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        return doc


PageFactory = Callable[..., Awaitable[Page]]


@pytest_asyncio.fixture
async def page_for(tmp_path: Path, qtbot: QtBot) -> AsyncIterator[PageFactory]:
    made: list[tuple[Page, EdgeClients]] = []

    async def factory(edge: LiveEdge | KeyedEdgeProcess, role: str = "admin") -> Page:
        target = await Target.of(edge)
        folder = tmp_path / f"console-{len(made)}"
        folder.mkdir()
        pool = pool_for(folder, {target.device(): getattr(target.keys, role)})
        page = Page(target, pool, qtbot)
        made.append((page, pool))
        return page

    yield factory
    for page, pool in made:
        await page.presenter.aclose()
        await pool.aclose()


async def test_charts_health_picture_and_events_from_a_real_edge(
    live_edge: LiveEdgeFactory, page_for: PageFactory
) -> None:
    bay = await live_edge(name="bay 3", site="north", width=640, height=360, fps=10)
    page = await page_for(bay)
    view = page.view
    await page.presenter.show_device(page.device.key)
    assert view.title.text() == "bay 3"
    charts = view.charts
    await wait_until(
        lambda: len(charts.points("cpu")) >= 2 and len(charts.points("fps_in")) >= 2
        and len(charts.points("frame_age")) >= 2 and len(charts.points("snapshot_latency")) >= 1
        and len(charts.points("round_trip")) >= 1,
        10, "chart points from /metrics and /api/snapshot/info",
    )  # fmt: skip
    assert all(0 <= v <= 400 for v in charts.points("cpu"))  # % of one core; 2 cores max
    assert max(charts.points("fps_in")) > 2  # the synthetic camera runs at 10 fps
    assert all(0 <= v < 10 for v in charts.points("frame_age"))
    assert all(v > 0 for v in charts.points("snapshot_latency"))
    # Health of each component, and the live picture.
    await wait_until(lambda: view.health.topLevelItemCount() >= 2, 5, "health rows")
    components = {
        view.health.topLevelItem(i).text(0): view.health.topLevelItem(i).text(1)  # type: ignore[union-attr]
        for i in range(view.health.topLevelItemCount())
    }
    assert components["camera"] == "ok"
    assert "http" in components
    await wait_until(lambda: view.last_image is not None, 5, "a picture")
    assert view.last_image is not None
    assert view.last_image.width() == 480
    assert view.picture.pixmap() is not None
    assert not view.picture.pixmap().isNull()
    # Events: an alert emitted by the edge shows up live.
    await bay.edge.events.emit(
        "alert", {"code": "hot", "severity": "warning", "active": True, "message": "81 °C"}
    )
    # Written for people: "Warning: 81 °C", not "alert: code=hot, severity=warning, ...".
    await wait_until(lambda: any(t.endswith("Warning: 81 °C") for t in view.event_texts()), 10)


async def test_config_editor_is_built_from_the_real_schema(
    edge_process: EdgeProcessFactory, page_for: PageFactory
) -> None:
    bay = await edge_process(name="bay 1")
    page = await page_for(bay)
    await page.presenter.show_device(page.device.key)
    fields = page.view.editor.fields
    target = fields["camera.freshness_target_ms"]
    # Numbers are typed (a value out of bounds is explained, never silently snapped back).
    assert isinstance(target.widget, QLineEdit)
    assert target.widget.placeholderText() == "≥ 100 and ≤ 60000"
    assert target.widget.text() == "2500"
    assert target.value() == 2500
    assert target.widget.toolTip().startswith("Oldest picture the edge may serve")
    assert isinstance(fields["camera.connect_timeout_s"].widget, QLineEdit)
    assert isinstance(fields["discovery.enabled"].widget, QCheckBox)
    transport = fields["camera.rtsp_transport"].widget
    assert isinstance(transport, QComboBox)
    assert [transport.itemText(i) for i in range(transport.count())] == ["tcp", "udp"]
    assert isinstance(fields["discovery.interfaces"].widget, QLineEdit)
    # x-apply: the camera URL restarts the camera, the freshness target is hot.
    source = fields["camera.source"]
    assert source.badge.text() == "restarts camera"
    assert not source.badge.isHidden()
    assert target.badge.isHidden()
    listen = fields["http.listen"]  # the API refuses it: shown, not editable
    assert not listen.widget.isEnabled()
    assert listen.badge.text() == "set on the device"
    assert page.view.editor.history.rowCount() >= 1


async def test_change_a_hot_value_diff_apply_then_history_and_rollback(
    edge_process: EdgeProcessFactory, page_for: PageFactory
) -> None:
    bay = await edge_process(name="bay 1")
    page = await page_for(bay)
    editor = page.view.editor
    await page.presenter.show_device(page.device.key)
    before = await page.edge_config()
    quality = editor.fields["snapshots.jpeg_quality"].widget
    assert isinstance(quality, QLineEdit)
    assert quality.text() == "85"
    quality.setText("70")
    assert editor.pending.toPlainText() == "snapshots.jpeg_quality: 85 → 70"
    # Declined: nothing is sent.
    page.answer = False
    editor.apply_button.click()
    assert page.confirmations[-1][1] == "snapshots.jpeg_quality: 85 → 70"
    assert (await page.edge_config())["version"] == before["version"]
    # Confirmed: PATCH with If-Match, applied in place.
    page.answer = True
    async with (
        SignalWaiter(page.presenter.historyLoaded) as reloaded,
        SignalWaiter(page.presenter.configApplied) as applied,
    ):
        editor.apply_button.click()
    assert applied.args[0].config["snapshots"]["jpeg_quality"] == 70
    after = await page.edge_config()
    assert after["config"]["snapshots"]["jpeg_quality"] == 70
    assert after["version"] != before["version"]
    assert "Applied: version" in editor.message.text()
    assert editor.pending.toPlainText() == ""  # the form now shows the device's config
    versions = [v.version for v in reloaded.args[0]]
    assert versions[0] == after["version"]
    assert before["version"] in versions

    # Roll back to the version before: its diff is confirmed first.
    row = versions.index(before["version"])
    editor.history.selectRow(row)
    assert editor.rollback_button.isEnabled()
    async with (
        SignalWaiter(page.presenter.historyLoaded, timeout_s=15),
        SignalWaiter(page.presenter.configApplied, timeout_s=15),
    ):
        editor.rollback_button.click()
    title, text = page.confirmations[-1]
    assert title == f"Roll back to version {before['version']}?"
    assert "snapshots.jpeg_quality: 70 → 85" in text
    rolled = await page.edge_config()
    assert rolled["config"]["snapshots"]["jpeg_quality"] == 85
    assert quality.text() == "85"


async def test_a_value_the_edge_refuses_is_shown_at_its_field(
    edge_process: EdgeProcessFactory, page_for: PageFactory
) -> None:
    bay = await edge_process(name="bay 1")
    page = await page_for(bay)
    editor = page.view.editor
    await page.presenter.show_device(page.device.key)
    before = await page.edge_config()
    source = editor.fields["camera.source"]
    assert isinstance(source.widget, QLineEdit)
    source.widget.setText("ftp://camera.local/stream")  # the client cannot know the schemes
    assert "camera.source" in editor.pending.toPlainText()
    assert "[restarts camera]" in editor.pending.toPlainText()
    async with SignalWaiter(page.presenter.configRejected) as rejected:
        editor.apply_button.click()
    by_path, message = rejected.args
    assert "invalid" in message
    assert "camera.source" in by_path
    assert "unsupported scheme" in by_path["camera.source"]
    assert not source.error.isHidden()
    assert "unsupported scheme" in source.error.text()
    assert "refused" in editor.message.text()
    assert await page.edge_config() == before  # nothing changed

    # Client-side validation: an empty name never reaches the edge.
    name = editor.fields["name"]
    assert isinstance(name.widget, QLineEdit)
    name.widget.setText("")
    assert name.error.text() == "must not be empty"
    editor.apply_button.click()
    assert "need fixing" in editor.message.text()


async def test_without_an_admin_key_the_editor_says_so(
    edge_process: EdgeProcessFactory, page_for: PageFactory
) -> None:
    bay = await edge_process(name="bay 1")
    page = await page_for(bay, role="viewer")
    async with SignalWaiter(page.presenter.configUnavailable) as unavailable:
        await page.presenter.show_device(page.device.key)
    assert "needs an admin key" in unavailable.args[0]
    assert "needs an admin key" in page.view.editor.message.text()
    assert not page.view.editor.apply_button.isEnabled()
    # The rest of the page works with a viewer key.
    await wait_until(lambda: len(page.view.charts.points("fps_in")) >= 1, 10, "charts")


async def test_an_unknown_device_is_an_error_not_a_crash(
    live_edge: LiveEdgeFactory, page_for: PageFactory
) -> None:
    bay = await live_edge(name="bay 1")
    page = await page_for(bay)
    with pytest.raises(ConsoleError, match="no device"):
        await page.presenter.show_device("nope")
    assert page.presenter.device is None


async def test_config_of_an_edge_with_lock_boards_edits_and_applies(
    rig: LockRig, live_edge: LiveEdgeFactory, page_for: PageFactory
) -> None:
    bay = await live_edge(name="bay 1", locks=rig.config.model_dump(mode="json"))
    assert bay.edge.store is not None
    manager = ConfigManager(
        bay.edge, bay.edge.store, path=bay.data_dir / "edge.toml", emit=bay.edge.events.emit
    )
    await manager.start()
    bay.edge.live = manager
    try:
        await _edit_and_apply_boards(bay, page_for)
    finally:
        await manager.stop()


async def _edit_and_apply_boards(bay: LiveEdge, page_for: PageFactory) -> None:
    page = await page_for(bay)
    editor = page.view.editor
    await page.presenter.show_device(page.device.key)
    before = await page.edge_config()
    # The boards are a table, one row per board; nothing is pending before any edit.
    boards = editor.fields["locks.boards"]
    assert isinstance(boards.widget, TableEditor)
    table = boards.widget.table
    assert table.rowCount() == 2
    titles = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    unit, locks = titles.index("Unit"), titles.index("Locks")
    assert [table.item(r, unit).text() for r in range(2)] == ["1", "2"]
    assert [table.item(r, locks).text() for r in range(2)] == ["4", "2"]
    # Tall enough for its rows (not a row and a half in a tall form).
    rows_height = sum(table.rowHeight(r) for r in range(table.rowCount()))
    assert table.viewport().height() >= rows_height, (table.viewport().height(), rows_height)
    assert editor.pending.toPlainText() == ""
    assert editor.pending_changes() == []

    # A hot value elsewhere: only that key is sent, and the edge takes it.
    sent: list[dict[str, Any]] = []
    patch = page.presenter.client.patch_config  # type: ignore[union-attr]

    async def spy(body: dict[str, Any], **kwargs: Any) -> Any:
        sent.append(body)
        return await patch(body, **kwargs)

    page.presenter.client.patch_config = spy  # type: ignore[union-attr,method-assign]
    editor.fields["snapshots.jpeg_quality"].widget.setText("70")
    assert editor.pending.toPlainText() == "snapshots.jpeg_quality: 85 → 70"
    async with SignalWaiter(page.presenter.configApplied, timeout_s=15) as applied:
        editor.apply_button.click()
    assert sent == [{"snapshots": {"jpeg_quality": 70}}]
    assert applied.args[0].config["locks"]["boards"] == before["config"]["locks"]["boards"]

    # A cell of the table: the second board gets a third lock.
    await wait_until(lambda: editor.version == applied.args[0].version, 10, "form reloaded")
    table = boards.widget.table
    table.item(1, locks).setText("3")
    assert "locks.boards" in editor.pending.toPlainText()
    async with SignalWaiter(page.presenter.configApplied, timeout_s=20) as applied:
        editor.apply_button.click()
    assert sent[-1]["locks"]["boards"][1]["locks"] == 3
    after = await page.edge_config()
    assert [b["locks"] for b in after["config"]["locks"]["boards"]] == [4, 3]
    await wait_until(lambda: editor.version == after["version"], 10, "form reloaded")
    assert editor.pending.toPlainText() == ""

    # A bad cell is explained at its row and column; nothing is sent.
    count = len(sent)
    boards.widget.table.item(0, unit).setText("x")
    assert boards.error.text() == "row 1, Unit: 'x' is not a number"
    editor.apply_button.click()
    assert len(sent) == count
    editor.revert()


async def test_typed_values_the_wheel_and_the_edges_objection_to_a_group(
    edge_process: EdgeProcessFactory, page_for: PageFactory
) -> None:
    bay = await edge_process(name="bay 1")
    page = await page_for(bay)
    editor = page.view.editor
    await page.presenter.show_device(page.device.key)
    page.view.resize(900, 700)
    # Every rejected value is explained at its field (not silently put back).
    target = editor.fields["camera.freshness_target_ms"]
    target.widget.setText("0")
    assert target.error.text() == "must be ≥ 100 and ≤ 60000"
    target.widget.setText("abc-5")
    assert target.error.text() == "'abc-5' is not a number"
    editor.revert()
    assert target.error.isHidden()

    # The wheel over a field without the focus scrolls the form and changes nothing.
    transport = editor.fields["camera.rtsp_transport"].widget
    assert isinstance(transport, QComboBox)
    before = transport.currentIndex()
    assert not transport.hasFocus()
    wheel = QWheelEvent(
        QPointF(5, 5), QPointF(transport.mapToGlobal(QPoint(5, 5))), QPoint(0, 0),
        QPoint(0, -120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase, False,
    )  # fmt: skip
    QApplication.sendEvent(transport, wheel)
    assert transport.currentIndex() == before
    assert editor.pending.toPlainText() == ""

    # The edge's objection to the motion group lands at the field it names.
    editor.fields["plates.motion.exit_fraction"].widget.setText("0.9")
    editor.fields["plates.motion.enter_fraction"].widget.setText("0.1")
    async with SignalWaiter(page.presenter.configRejected) as rejected:
        editor.apply_button.click()
    assert "plates.motion" in rejected.args[0]
    exit_field = editor.fields["plates.motion.exit_fraction"]
    assert "exit_fraction must be below enter_fraction" in exit_field.error.text()
    assert editor.fields["plates.motion.burst_s"].error.isHidden()
