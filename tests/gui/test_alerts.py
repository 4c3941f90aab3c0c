"""The alerts panel against a real in-process edge: it goes away (offline alert), is
acknowledged, comes back (cleared), and the edge's own alert events."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from console.presenters.alerts import AlertsPresenter
from console.services.alerts import AlertThresholds
from console.ui.alerts import AlertsView
from tests.gui.conftest import LiveEdgeFactory, wait_until
from tests.gui.helpers_e import device_of, pool_for
from tests.support.serve_edge import EdgeServer, start_edge_server

pytestmark = [pytest.mark.gui, pytest.mark.asyncio]


async def test_offline_acknowledge_and_back_online(
    live_edge: LiveEdgeFactory, qtbot: QtBot, tmp_path: Path
) -> None:
    bay = await live_edge(name="bay 4")
    device = device_of(bay)
    pool = pool_for(tmp_path, {device: bay.keys.viewer})
    presenter = AlertsPresenter(
        pool.client_for, thresholds=AlertThresholds(offline_after_s=0.5), interval_s=0.2
    )
    view = AlertsView(presenter)
    qtbot.addWidget(view)
    view.show()
    counts: list[int] = []
    presenter.activeCountChanged.connect(counts.append)
    restarted: EdgeServer | None = None

    def codes() -> list[str]:
        return [row.alert.code for row in presenter.rows]

    try:
        presenter.update_device(device)
        # Healthy: polls and nothing to report.
        await wait_until(lambda: len(presenter.tasks) == 2, 5, "polling and following")
        assert presenter.rows == []
        port = bay.server.port
        await bay.stop_serving()
        await wait_until(lambda: "offline" in codes(), 10, "offline alert")
        row = next(r for r in presenter.rows if r.alert.code == "offline")
        assert row.device_name == "bay 4"
        assert row.alert.severity == "critical"
        assert not row.acknowledged
        assert presenter.active_count >= 1
        assert counts[-1] == presenter.active_count
        await wait_until(lambda: row.key in view.visible_keys(), 5, "row in the view")
        assert "active alert" in view.summary.text()

        # Acknowledge from the panel: still listed, not counted.
        view.tree.clearSelection()
        index = view.visible_keys().index(row.key)
        item = view.tree.topLevelItem(index)
        assert item is not None
        item.setSelected(True)
        view.ack_button.click()
        assert next(r for r in presenter.rows if r.key == row.key).acknowledged
        assert presenter.active_count == 0
        assert counts[-1] == 0
        assert row.key in view.visible_keys()
        view.show_acked.setChecked(False)
        assert row.key not in view.visible_keys()
        view.show_acked.setChecked(True)
        # Stays acknowledged over further polls while the device is still down.
        since = next(r for r in presenter.rows if r.key == row.key).alert.since
        polls = len(counts)
        await asyncio.sleep(5 * presenter.interval_s)  # several more polls: nothing to wait for
        assert next(r for r in presenter.rows if r.key == row.key).alert.since == since
        assert next(r for r in presenter.rows if r.key == row.key).acknowledged
        assert len(counts) == polls  # no new count emitted: nothing changed

        # Back online: the alert clears.
        restarted = await start_edge_server(bay.edge, f"127.0.0.1:{port}")
        await wait_until(lambda: "offline" not in codes(), 10, "offline cleared")
        assert presenter.active_count == 0
        await wait_until(lambda: row.key not in view.visible_keys(), 5, "row gone")

        # Down again: a new alert, not acknowledged any more.
        await restarted.stop()
        await wait_until(lambda: "offline" in codes(), 10, "offline again")
        again = next(r for r in presenter.rows if r.alert.code == "offline")
        assert not again.acknowledged
        assert presenter.active_count >= 1
    finally:
        await presenter.aclose()
        await pool.aclose()
        if restarted is not None:
            await restarted.stop()


async def test_alert_events_from_the_edge_come_and_go(
    live_edge: LiveEdgeFactory, qtbot: QtBot, tmp_path: Path
) -> None:
    bay = await live_edge(name="bay 5")
    device = device_of(bay)
    pool = pool_for(tmp_path, {device: bay.keys.viewer})
    presenter = AlertsPresenter(pool.client_for, interval_s=0.2)
    view = AlertsView(presenter)
    qtbot.addWidget(view)
    try:
        presenter.update_device(device)
        # The follower's SSE stream is open on the edge: from now on nothing is missed.
        await wait_until(lambda: bay.edge.events.subscriber_count >= 1, 10, "SSE subscribed")
        message = "disk almost full: store pruned hard"
        payload = {"code": "disk", "severity": "critical", "active": True, "message": message}
        await bay.edge.events.emit("alert", payload)
        await wait_until(lambda: any(r.alert.code == "disk" for r in presenter.rows), 10)
        row = next(r for r in presenter.rows if r.alert.code == "disk")
        assert (row.source, row.alert.severity, row.alert.message) == ("edge", "critical", message)
        assert presenter.active_count >= 1
        await bay.edge.events.emit("alert", {**payload, "active": False, "message": "disk ok"})
        await wait_until(lambda: not any(r.alert.code == "disk" for r in presenter.rows), 10)
    finally:
        await presenter.aclose()
        await pool.aclose()
