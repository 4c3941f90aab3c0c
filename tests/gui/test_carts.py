"""The carts page against a real edge driving simulated lock boards over a socat pty pair.

The edge runs in-process (``live_edge``) with ``[locks]`` pointing at the pty end of
:class:`tests.support.lock_sim.LockRig`; the boards are pymodbus's own RTU server in a thread
of its own. The console's real client pool, presenter and view talk to the edge over HTTP on
127.0.0.1, as the console does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from console.models.cart_tiles import OPERATOR_KEY_NEEDED
from console.presenters.carts import CartsPresenter
from console.services.device import Device
from console.services.pool import EdgeClients
from console.ui.carts import CartsView, CartTileWidget
from tests.gui.conftest import LiveEdge, LiveEdgeFactory, wait_until
from tests.gui.helpers_e import SignalWaiter, device_of, pool_for
from tests.support.lock_sim import LockRig

pytestmark = [pytest.mark.gui, pytest.mark.asyncio]

UNLOCK_ROUTE = "/api/carts/{cart_id}/unlock"


@dataclass
class Bay:
    edge: LiveEdge
    rig: LockRig
    device: Device

    def states(self) -> list[str]:
        service = self.edge.edge.locks
        assert service is not None
        return [v.state for v in service.carts()]

    def responses(self, route: str, status: int) -> float:
        value = self.edge.edge.metrics.registry.get_sample_value(
            "carwash_edge_http_responses_total", {"route": route, "status": str(status)}
        )
        return value or 0.0


@pytest_asyncio.fixture
async def bay(rig: LockRig, live_edge: LiveEdgeFactory) -> Bay:
    edge = await live_edge(
        name="bay 1", width=160, height=90, fps=2, locks=rig.config.model_dump(mode="json")
    )
    # live_edge starts the camera side only (edge.start()); the lock service is started by
    # start_async() in production, and stopped with the edge by edge_factory.
    await edge.edge.start_locks()
    found = Bay(edge, rig, device_of(edge))
    await wait_until(lambda: found.states() == ["locked"] * 6, 5, "the edge reads the boards")
    return found


class Page:
    """The presenter and the view on the console's real client pool, with one key."""

    def __init__(self, bay: Bay, api_key: str, tmp_path: Path, qtbot: QtBot) -> None:
        self.bay = bay
        self.key = bay.device.key
        self.pool: EdgeClients = pool_for(tmp_path, {bay.device: api_key})
        self.presenter = CartsPresenter(self.pool.client_for)
        self.view = CartsView(self.presenter)
        self.answer = True
        self.confirmations: list[str] = []
        self.view.confirm = self._confirm
        qtbot.addWidget(self.view)
        self.view.resize(1100, 700)
        self.view.show()
        self.failures: list[tuple[int, str, str]] = []
        self.presenter.commandFailed.connect(
            lambda _key, cart, code, text: self.failures.append((cart, code, text))
        )

    def _confirm(self, title: str, text: str) -> bool:
        self.confirmations.append(title)
        return self.answer

    def tile(self, cart: int) -> CartTileWidget:
        widget = self.view.tile(self.key, cart)
        assert widget is not None, f"no tile for cart {cart}"
        return widget

    def state_of(self, cart: int) -> str:
        widget = self.view.tile(self.key, cart)
        return widget.state_label.text() if widget is not None else ""

    async def start(self) -> None:
        self.presenter.update_device(self.bay.device)
        await wait_until(
            lambda: [self.state_of(n) for n in range(1, 7)] == ["Locked"] * 6,
            5, "six locked carts on the page",
        )  # fmt: skip

    async def close(self) -> None:
        await self.presenter.aclose()
        await self.pool.aclose()


@pytest_asyncio.fixture
async def pages(tmp_path: Path, qtbot: QtBot) -> AsyncIterator[list[Page]]:
    made: list[Page] = []
    yield made
    for page in made:
        await page.close()


async def test_operator_unlocks_and_the_cart_goes_out_and_comes_back(
    bay: Bay, pages: list[Page], tmp_path: Path, qtbot: QtBot
) -> None:
    page = Page(bay, bay.edge.keys.operator, tmp_path, qtbot)
    pages.append(page)
    await page.start()
    box = page.view.boxes[page.key]
    assert box.title() == "bay 1 — 6 carts"
    assert not box.banner.isVisible()
    cart2 = page.tile(2)
    assert cart2.where.text() == "board 1 · lock 2"
    assert cart2.sensors.text() == "cart present · bolt closed"
    assert cart2.since.text().startswith("since ")
    assert cart2.icon.state == "locked"
    assert (cart2.unlock_button.isEnabled(), cart2.lock_button.isEnabled()) == (True, False)

    # "No" in the confirmation: nothing is sent.
    page.answer = False
    qtbot.mouseClick(page.tile(1).unlock_button, Qt.MouseButton.LeftButton)
    assert page.confirmations == ["Unlock cart 1 at bay 1?"]
    # "Yes": Unlocking… with a busy bar and no buttons, then the confirmed state.
    page.answer = True
    seen: list[tuple[str, bool, bool]] = []
    page.presenter.sectionChanged.connect(
        lambda _key: seen.append(
            (cart2.status.text(), cart2.progress.isVisible(), cart2.unlock_button.isEnabled())
        )
    )
    async with SignalWaiter(page.presenter.commandConfirmed) as confirmed:
        qtbot.mouseClick(cart2.unlock_button, Qt.MouseButton.LeftButton)
    assert page.confirmations[-1] == "Unlock cart 2 at bay 1?"
    key, cart, result = confirmed.args
    assert (key, cart, result.action, result.state) == (page.key, 2, "unlock", "unlocked")
    assert ("Unlocking…", True, False) in seen
    assert cart2.status.text().startswith("Unlock confirmed: unlocked at ")
    assert not cart2.progress.isVisible()
    assert cart2.state_label.text() == "Unlocked"
    assert cart2.icon.state == "unlocked"
    assert (cart2.unlock_button.isEnabled(), cart2.lock_button.isEnabled()) == (False, True)
    assert bay.rig.sim.coil_writes == [(2, True)]  # cart 1 (answered "no") never moved
    assert bay.states()[1] == "unlocked"

    # Someone takes the cart: in use, promptly (the edge's cart event, not the next poll only).
    taken = time.monotonic()
    bay.rig.thread.call(lambda: bay.rig.sim.take(2))
    await wait_until(lambda: page.state_of(2) == "In use", 3, "cart 2 in use")
    await wait_until(lambda: cart2.sensors.text() == "bay empty · bolt open", 2, "sensors")
    assert time.monotonic() - taken < 2.0
    assert cart2.icon.state == "in_use"
    assert (cart2.unlock_button.isEnabled(), cart2.lock_button.isEnabled()) == (False, True)

    # ... and brings it back: returned, then locked again by the edge itself.
    states: list[str] = []
    page.presenter.sectionChanged.connect(lambda _key: states.append(page.state_of(2)))
    bay.rig.thread.call(lambda: bay.rig.sim.give_back(2))
    await wait_until(lambda: page.state_of(2) == "Locked", 4, "cart 2 locked again")
    assert "Returned" in states
    # The state comes with the event; the sensors with the poll it triggers, right behind.
    await wait_until(lambda: cart2.sensors.text() == "cart present · bolt closed", 1, "sensors")
    assert cart2.unlock_button.isEnabled()
    assert bay.rig.sim.coil_writes == [(2, True), (2, False)]
    assert page.failures == []


async def test_a_viewer_key_is_told_an_operator_key_is_needed(
    bay: Bay, pages: list[Page], tmp_path: Path, qtbot: QtBot
) -> None:
    page = Page(bay, bay.edge.keys.viewer, tmp_path, qtbot)
    pages.append(page)
    await page.start()  # a viewer key reads the carts
    cart3 = page.tile(3)
    assert cart3.unlock_button.isEnabled()  # the console cannot know the key's role beforehand
    async with SignalWaiter(page.presenter.commandFailed) as failed:
        qtbot.mouseClick(cart3.unlock_button, Qt.MouseButton.LeftButton)
    key, cart, code, text = failed.args
    assert (key, cart, code) == (page.key, 3, OPERATOR_KEY_NEEDED)
    assert "needs an operator key" in text
    assert bay.responses(UNLOCK_ROUTE, 403) == 1  # refused by the edge's guard
    assert cart3.status.text() == text
    box = page.view.boxes[page.key]
    assert box.banner.isVisible()
    assert "operator key" in box.banner.text()
    # From now on the page knows: no buttons, and no further command is sent at all.
    for n in range(1, 7):
        widget = page.tile(n)
        assert not widget.unlock_button.isEnabled()
        assert not widget.lock_button.isEnabled()
        assert "operator key" in widget.unlock_button.toolTip()
    task = page.presenter.unlock(page.key, 4)
    assert task is not None
    await task
    assert page.failures[-1][:2] == (4, OPERATOR_KEY_NEEDED)
    assert bay.responses(UNLOCK_ROUTE, 403) == 1
    assert bay.rig.sim.coil_writes == []
    assert bay.states() == ["locked"] * 6


async def test_a_silent_board_shows_its_carts_unknown_and_refuses_commands(
    bay: Bay, pages: list[Page], tmp_path: Path, qtbot: QtBot
) -> None:
    page = Page(bay, bay.edge.keys.operator, tmp_path, qtbot)
    pages.append(page)
    await page.start()
    box = page.view.boxes[page.key]
    bay.rig.thread.call(lambda: bay.rig.sim.set_online(2, False))
    await wait_until(
        lambda: [page.state_of(n) for n in (5, 6)] == ["Unknown — board not answering"] * 2,
        3, "carts 5 and 6 unknown",
    )  # fmt: skip
    await wait_until(lambda: box.banner.isVisible(), 2, "the board-down banner")
    assert "Lock board 2 not answering" in box.banner.text()
    assert box.title() == "bay 1 — 6 carts — board 2 down"
    cart5 = page.tile(5)
    assert cart5.icon.state == "unknown"
    assert cart5.sensors.text() == "sensors unknown"
    assert cart5.status.text() == "Board 2 is not answering."
    assert not cart5.unlock_button.isEnabled()
    assert not cart5.lock_button.isEnabled()
    assert [page.state_of(n) for n in range(1, 5)] == ["Locked"] * 4  # board 1 carries on
    assert page.tile(1).unlock_button.isEnabled()

    # A command that gets through anyway (another console, a race) fails fast with the
    # edge's board_down, shown on the tile.
    started = time.monotonic()
    task = page.presenter.unlock(page.key, 6)
    assert task is not None
    await task
    assert time.monotonic() - started < 1.0
    cart, code, text = page.failures[-1]
    assert (cart, code) == (6, "board_down")
    assert page.tile(6).status.text() == text
    assert "not answering" in text

    # The board answers again: locked, buttons back, banner gone.
    bay.rig.thread.call(lambda: bay.rig.sim.set_online(2, True))
    await wait_until(lambda: page.state_of(5) == "Locked", 3, "cart 5 locked again")
    await wait_until(lambda: not box.banner.isVisible(), 2, "the banner goes")
    assert box.title() == "bay 1 — 6 carts"
    assert cart5.unlock_button.isEnabled()
    assert bay.rig.sim.coil_writes == []


async def test_an_edge_without_locks_is_listed_and_not_polled_every_second(
    live_edge: LiveEdgeFactory, tmp_path: Path, qtbot: QtBot
) -> None:
    plain = await live_edge(name="bay 9", width=160, height=90, fps=2)
    device = device_of(plain)
    pool = pool_for(tmp_path, {device: plain.keys.viewer})
    presenter = CartsPresenter(pool.client_for)
    view = CartsView(presenter)
    qtbot.addWidget(view)
    view.show()
    try:
        presenter.update_device(device)
        assert not view.without.isVisible()
        await wait_until(lambda: view.without.isVisible(), 5, "the edge is listed")
        assert view.without.text() == "Without lock boards: bay 9."
        assert view.empty.isVisible()
        assert view.boxes == {}
        section = presenter.section(device.key)
        assert section is not None
        assert section.enabled is False

        def polls() -> Any:
            return plain.edge.metrics.registry.get_sample_value(
                "carwash_edge_http_responses_total", {"route": "/api/carts", "status": "200"}
            )

        before = polls()
        assert before == 1
        await asyncio.sleep(1.5)  # an edge with locks would be asked once a second meanwhile
        assert polls() == before  # asked again only every idle_interval_s (15 s)
    finally:
        await presenter.aclose()
        await pool.aclose()


def _columns_shown(view: CartsView, key: str) -> int:
    """How many columns the carts of ``key`` stand in on screen (distinct left edges)."""
    box = view.boxes[key]
    return len({tile.geometry().x() for tile in box.tiles.values()})


async def test_carts_reflow_after_a_resize_while_another_page_showed(
    bay: Bay, console_factory: Any
) -> None:
    console = await console_factory(edges=[(bay.edge.url, bay.edge.keys.operator)], layout=(1, 1))
    window, view = console.window, console.carts_view
    window.resize(700, 600)
    window.show_page("carts")
    await wait_until(lambda: len(view.boxes) == 1, 10, "the bay's carts on the page")
    key = next(iter(view.boxes))
    await wait_until(lambda: len(view.boxes[key].tiles) == 6, 10, "six carts")
    await wait_until(lambda: _columns_shown(view, key) <= 2, 5, "narrow: one or two columns")
    # Another page shows while the window grows; then the carts page comes back.
    window.show_page("wall")
    window.resize(1800, 900)
    await wait_until(lambda: console.wall_view.width() > 1200, 5, "the wall took the width")
    window.show_page("carts")
    await wait_until(lambda: view.scroll_area.viewport().width() > 1200, 5, "the page is wide")
    await wait_until(lambda: _columns_shown(view, key) >= 5, 5, "the carts use the width")
    # ... and nothing stands beyond the visible width.
    right = max(t.mapTo(view, t.rect().topRight()).x() for t in view.boxes[key].tiles.values())
    assert right <= view.scroll_area.viewport().width()
