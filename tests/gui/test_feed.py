"""The plate feed against real in-process edges: plate events travel through each edge's real
SSE route to the table. Most tests emit them through the edge's own event log (to script
members, times and pictures); one reads a real car through the edge's plate service."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from console.models.plate_rows import PlateRow
from console.presenters.feed import THUMB_WIDTH, FeedPresenter, SettingsLastIds
from console.services.pool import EdgeClients
from console.ui.feed import COL_PICTURE, PlateFeedView
from edge.camera.scene import BayScene, SceneParams
from edge.plates import normalize
from tests.conftest import Keys
from tests.gui.conftest import LiveEdge, LiveEdgeFactory, wait_until
from tests.gui.helpers_e import SignalWaiter, device_of, emit_plate_read, pool_for
from tests.support.serve_edge import start_edge_server

pytestmark = [pytest.mark.gui, pytest.mark.asyncio]

MEMBER = {"name": "Ann Lee", "plan": "gold", "status": "active"}


async def plate(bay: LiveEdge, text: str, *, member: dict[str, Any] | None = None,
                seq: int | None = None, crop: bool = True) -> int:  # fmt: skip
    return await emit_plate_read(bay, text, member=member, seq=seq, crop=crop)


class Pools:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.made: list[EdgeClients] = []

    def __call__(self, *bays: LiveEdge) -> EdgeClients:
        pool = pool_for(self.tmp_path, {device_of(b): b.keys.viewer for b in bays})
        self.made.append(pool)
        return pool


@pytest_asyncio.fixture
async def pools(tmp_path: Path) -> AsyncIterator[Pools]:
    made = Pools(tmp_path)
    yield made
    for pool in made.made:
        await pool.aclose()


def _plates(view: PlateFeedView) -> list[str]:
    return [row.plate for row in view.proxy.visible_rows()]


async def _feed(
    qtbot: QtBot, qsettings: QSettings, pool: EdgeClients
) -> tuple[FeedPresenter, PlateFeedView]:
    presenter = FeedPresenter(pool.client_for, SettingsLastIds(qsettings), batch_ms=20)
    view = PlateFeedView(presenter, max_rows=100)
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    return presenter, view


async def test_plates_arrive_and_search_filter_and_export(
    live_edge: LiveEdgeFactory, qtbot: QtBot, qsettings: QSettings, pools: Pools,
    tmp_path: Path,
) -> None:  # fmt: skip
    north = await live_edge(name="bay 1", site="north")
    south = await live_edge(name="bay 2", site="south")
    pool = pools(north, south)
    # Read before the console starts: it arrives from the recent events.
    await plate(north, "AB123", member=MEMBER)
    await plate(south, "XY999")
    presenter, view = await _feed(qtbot, qsettings, pool)
    try:
        presenter.update_device(device_of(north))
        presenter.update_device(device_of(south))
        await wait_until(lambda: len(_plates(view)) == 2, 10)
        # Live reads through the SSE stream.
        await plate(north, "CD-456")
        await plate(south, "ZAB12", member={"name": "Bob"})
        await wait_until(lambda: len(_plates(view)) == 4, 10)
        assert _plates(view) == ["ZAB12", "CD456", "XY999", "AB123"]  # newest first
        row = view.proxy.visible_rows()[3]
        assert (row.device_name, row.site, row.member_label) == ("bay 1", "north", "Ann Lee")
        assert (row.plan, row.match, row.member_status) == ("gold", "exact", "active")
        assert row.crop_url == f"/api/plates/{row.read_id}/crop.jpg"
        # The plate is the edge's normalised one; what was read is in the tooltip.
        tip = view.proxy.data(view.proxy.index(1, 0), Qt.ItemDataRole.ToolTipRole)
        assert tip.startswith('CD456 (read "CD-456") at bay 1, ')

        # Search (Ctrl+F focuses it): plate text without dashes/case, or the member's name.
        qtbot.keyClick(view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        assert view.search.hasFocus()
        qtbot.keyClicks(view.search, "ab1")
        assert _plates(view) == ["ZAB12", "AB123"]
        view.search.setText("bob")
        assert _plates(view) == ["ZAB12"]
        view.search.clear()
        view.member_only.setChecked(True)
        assert _plates(view) == ["ZAB12", "AB123"]
        view.site.setCurrentIndex(view.site.findData("north"))
        assert _plates(view) == ["AB123"]
        view.member_only.setChecked(False)
        view.site.setCurrentIndex(0)
        view.device.setCurrentIndex(view.device.findData(device_of(south).key))
        assert _plates(view) == ["ZAB12", "XY999"]
        view.device.setCurrentIndex(0)
        view.time_range.setCurrentIndex(1)  # last 15 minutes: all of them
        assert len(_plates(view)) == 4
        # Member rows are highlighted.
        member_index = view.proxy.index(0, 0)
        assert view.proxy.data(member_index, Qt.ItemDataRole.BackgroundRole) is not None
        assert view.proxy.data(view.proxy.index(1, 0), Qt.ItemDataRole.BackgroundRole) is None

        # Export what is shown (members only), written off the GUI thread.
        view.member_only.setChecked(True)
        target = tmp_path / "members.csv"
        async with SignalWaiter(presenter.exported) as done:
            view.export_to(str(target))
        assert done.args == (str(target), 2)
        with target.open(encoding="utf-8-sig", newline="") as f:
            records = list(csv.DictReader(f))
        assert [(r["plate"], r["member"], r["device"], r["site"]) for r in records] == [
            ("ZAB12", "Bob", "bay 2", "south"),
            ("AB123", "Ann Lee", "bay 1", "north"),
        ]
        # An export that cannot be written is an error message, not a crash.
        async with SignalWaiter(presenter.error) as failed:
            view.export_to(str(tmp_path / "no-such-dir" / "x.csv"))
        assert "cannot write" in failed.args[0]
    finally:
        await presenter.aclose()


async def test_thumbnails_are_fetched_lazily_and_old_reads_get_a_placeholder(
    live_edge: LiveEdgeFactory, qtbot: QtBot, qsettings: QSettings, pools: Pools
) -> None:
    bay = await live_edge(name="bay 1")
    pool = pools(bay)
    presenter, view = await _feed(qtbot, qsettings, pool)
    try:
        model = view.model
        fetched: list[tuple[str, str]] = []
        missing: list[tuple[str, str]] = []
        presenter.thumbnailReady.connect(lambda k, s, _img: fetched.append((k, s)))
        presenter.thumbnailMissing.connect(lambda k, s: missing.append((k, s)))
        presenter.update_device(device_of(bay))
        # No crop, and a picture far beyond the edge's history: nothing to show.
        await plate(bay, "OLD1", seq=10**9, crop=False)
        # A crop the edge does not have (no plate service yet): the read's snapshot instead.
        await plate(bay, "NEW1")
        await wait_until(lambda: len(_plates(view)) == 2, 10)
        # The view asks for the pictures it paints (maybe already did); the model fetches once.
        for i in range(2):
            model.data(model.index(i, COL_PICTURE), Qt.ItemDataRole.DecorationRole)
        new_row, old_row = model.row_at(0), model.row_at(1)
        await wait_until(lambda: len(fetched) == 1 and len(missing) == 1, 10)
        assert new_row.crop_url is not None
        assert fetched == [(device_of(bay).key, new_row.crop_url)]
        assert missing == [(device_of(bay).key, f"seq:{10**9}")]
        thumb = model.data(model.index(0, COL_PICTURE), Qt.ItemDataRole.DecorationRole)
        assert isinstance(thumb, QImage)
        assert thumb.width() == THUMB_WIDTH
        assert not _is_flat(thumb)  # a real picture of the bay, not the placeholder
        placeholder = model.data(model.index(1, COL_PICTURE), Qt.ItemDataRole.DecorationRole)
        assert isinstance(placeholder, QImage)
        assert _is_flat(placeholder)
        assert old_row.plate == "OLD1"
        # Asked again: cached, no second fetch.
        wanted: list[PlateRow] = []
        model.thumbnailWanted.connect(wanted.append)
        for i in range(2):
            model.data(model.index(i, COL_PICTURE), Qt.ItemDataRole.DecorationRole)
        assert wanted == []
    finally:
        await presenter.aclose()


def _is_flat(image: QImage) -> bool:
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7)
               for y in range(0, image.height(), 7)}  # fmt: skip
    return len(colours) == 1


async def test_resume_after_edge_restart_and_console_restart_loses_nothing(
    live_edge: LiveEdgeFactory, qtbot: QtBot, qsettings: QSettings, pools: Pools
) -> None:
    bay = await live_edge(name="bay 1")
    pool = pools(bay)
    device = device_of(bay)
    presenter, view = await _feed(qtbot, qsettings, pool)
    restarted = None
    try:
        presenter.update_device(device)
        await plate(bay, "P1")
        await wait_until(lambda: _plates(view) == ["P1"], 10)
        # The edge's HTTP server goes away; reads keep being logged meanwhile.
        port = bay.server.port
        await bay.stop_serving()
        await plate(bay, "P2")
        await plate(bay, "P3", member=MEMBER)
        restarted = await start_edge_server(bay.edge, f"127.0.0.1:{port}")
        await wait_until(lambda: _plates(view) == ["P3", "P2", "P1"], 20)
        await plate(bay, "P4")
        await wait_until(lambda: _plates(view)[0] == "P4", 10)
        assert _plates(view) == ["P4", "P3", "P2", "P1"]  # each once
        # A new key for the device: the pool replaces (and closes) its client; the feed
        # carries on with the new one from where it was.
        old_client = pool.client_for(device)
        pool.credentials.set(device.key, bay.keys.operator)
        assert pool.client_for(device) is not old_client
        await plate(bay, "P4b")
        await wait_until(lambda: _plates(view)[0] == "P4B", 10)
        assert _plates(view) == ["P4B", "P4", "P3", "P2", "P1"]
        last_id = SettingsLastIds(qsettings).load(device.key)
        assert last_id is not None

        # The console restarts: a new feed resumes from the id kept in the settings.
        await presenter.aclose()
        view.hide()  # not close(): closing the last window would quit the app (and the loop)
        await plate(bay, "P5")
        await plate(bay, "P6")
        presenter2, view2 = await _feed(qtbot, qsettings, pool)
        try:
            presenter2.update_device(device)
            await wait_until(lambda: _plates(view2) == ["P6", "P5"], 10)
            await plate(bay, "P7")
            await wait_until(lambda: _plates(view2) == ["P7", "P6", "P5"], 10)
        finally:
            await presenter2.aclose()
    finally:
        await presenter.aclose()
        if restarted is not None:
            await restarted.stop()


async def test_the_table_keeps_only_the_newest_rows(
    live_edge: LiveEdgeFactory, qtbot: QtBot, qsettings: QSettings, pools: Pools
) -> None:
    bay = await live_edge(name="bay 1")
    pool = pools(bay)
    presenter, view = await _feed(qtbot, qsettings, pool)
    view.model.max_rows = 5
    try:
        presenter.update_device(device_of(bay))
        for i in range(12):
            await plate(bay, f"N{i:02d}")
        await wait_until(lambda: _plates(view)[:1] == ["N11"], 10)
        assert _plates(view) == ["N11", "N10", "N09", "N08", "N07"]
        assert all(isinstance(r, PlateRow) for r in view.model.rows())
    finally:
        await presenter.aclose()


async def test_a_real_read_from_the_handshake_reaches_the_feed_with_its_member_and_crop(
    live_edge: LiveEdgeFactory, qtbot: QtBot, qsettings: QSettings, pools: Pools,
    tmp_path: Path,
) -> None:  # fmt: skip
    """No injected event: the edge's plate service reads a parked car of the synthetic bay
    (offline reader), matches the club member, stores the read; the feed shows it."""
    query = "width=960&height=540&fps=5&seed=8&cycle=30&stop=29&empty=1"
    truth = BayScene(SceneParams.from_query(query)).state(5.0).plate
    assert truth is not None
    members = tmp_path / "members.json"
    members.write_text(json.dumps([{"plate": truth, "id": "m-1", "name": "Cleo Park",
                                    "plan": "unlimited"}]), encoding="utf-8")  # fmt: skip
    bay = await live_edge(
        name="bay 1",
        camera={"source": f"synthetic://?{query}"},
        plates={"members_file": str(members), "motion": {"enabled": False}},
    )
    await bay.edge.start_plates()  # start_async() starts it in production
    pool = pools(bay)
    presenter, view = await _feed(qtbot, qsettings, pool)
    try:
        presenter.update_device(device_of(bay))
        await asyncio.sleep(1.0)  # the car comes to a stop
        async with httpx.AsyncClient(base_url=bay.url, timeout=15) as client:
            r = await client.post("/api/plates/recognize", json={"timeout_s": 10},
                                  headers=Keys.auth(bay.keys.operator))  # fmt: skip
        assert r.status_code == 200, r.text
        read = r.json()["read"]
        assert read["plate"] == normalize.clean(truth)
        await wait_until(lambda: _plates(view) == [read["plate"]], 10)
        row = view.proxy.visible_rows()[0]
        assert (row.member_label, row.plan) == ("Cleo Park", "unlimited")
        assert row.read_id == str(read["id"])
        fetched: list[str] = []
        presenter.thumbnailReady.connect(lambda _k, url, _img: fetched.append(url))
        view.model.data(view.model.index(0, COL_PICTURE), Qt.ItemDataRole.DecorationRole)
        await wait_until(lambda: fetched == [read["crop_url"]], 10)
    finally:
        await presenter.aclose()


def _refused(bay: LiveEdge, route: str) -> float:
    """How many 401 answers ``bay`` gave on ``route`` (its own metrics registry)."""
    value = bay.edge.metrics.registry.get_sample_value(
        "carwash_edge_http_responses_total", {"route": route, "status": "401"}
    )
    return value or 0.0


async def test_a_bay_without_a_key_is_not_an_http_error_in_the_status_bar(
    live_edge: LiveEdgeFactory, console_factory: Any
) -> None:
    bay = await live_edge(name="bay 3")
    console = await console_factory(edges=[(bay.url, None)], layout=(1, 1))
    errors: list[str] = []
    console.feed.error.connect(errors.append)
    await wait_until(lambda: len(console.devices.devices) == 1, 10, "the bay")
    device = next(iter(console.devices.devices.values()))
    await wait_until(
        lambda: console.status.state(device.key).name == "key_needed", 10, "key needed"
    )
    # The feed asked and was refused ...
    await wait_until(lambda: _refused(bay, "/api/events/recent") >= 1, 10, "the feed asked")
    await asyncio.sleep(0)  # ... and whatever it does with the refusal has been done
    # ... which the one state says (tile, sidebar, alerts); the feed adds no raw HTTP error.
    assert errors == []
    assert "401" not in console.window.statusBar().currentMessage()
    assert console.sidebar.state_of(device.key) == "key_needed"
    # A key entered: the feed follows the bay at once, without a restart.
    console.sidebar.apiKeyEntered.emit(device.key, bay.keys.viewer)
    await wait_until(lambda: console.status.state(device.key).name == "online", 10, "online")
    await plate(bay, "KEY123")
    await wait_until(lambda: "KEY123" in _plates(console.feed_view), 10, "the plate in the feed")
    assert errors == []
