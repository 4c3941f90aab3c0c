"""The live wall against real edges on loopback (in-process edges, real HTTP)."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QColor, QFontMetrics, QImage
from pytestqt.qtbot import QtBot

from console.presenters.wall import Tile, WallPresenter, look, width_bucket
from console.services.settings import AgeThresholds, ConsoleSettings
from console.services.status import DeviceState
from console.ui.wall import FirstPicture, TileWidget
from edge.discovery import device_id
from edge.keys import KeyStore
from tests.conftest import EdgeFactory, Keys
from tests.gui.conftest import EdgeProcessFactory, LiveEdgeFactory, synthetic, wait_until
from tests.gui.helpers_e import emit_plate_read
from tests.support.lock_sim import LockRig
from tests.support.serve_edge import start_edge_server
from tests.support.xvfb import ARTIFACTS

pytestmark = pytest.mark.gui


def colourful(image: QImage) -> bool:
    """Some pixel in the middle band has clearly different R, G, B (not a grey picture)."""
    h, w = image.height(), image.width()
    for y in range(h // 4, 3 * h // 4, max(1, h // 20)):
        for x in range(0, w, max(1, w // 40)):
            c = QColor(image.pixel(x, y))
            if max(c.red(), c.green(), c.blue()) - min(c.red(), c.green(), c.blue()) > 40:
                return True
    return False


# ---------------------------------------------------------------------- pure rules
def test_look_never_presents_an_old_or_offline_picture_as_live() -> None:
    limits = AgeThresholds(amber_ms=1000, red_ms=3000)
    tile = Tile(0, device_key="dev", device_name="bay 1")
    assert look(tile, limits, 10.0).overlay == "Connecting…"
    tile.image = QImage(8, 8, QImage.Format.Format_RGB32)
    tile.received_mono, tile.stream_status = 10.0, "online"
    tile.age_at_receipt_ms = 200
    assert look(tile, limits, 10.0) == look(tile, limits, 10.0)
    fresh = look(tile, limits, 10.1)
    assert (fresh.badge, fresh.live, fresh.overlay) == ("green", True, "")
    assert fresh.age_text == "0.3 s"
    late = look(tile, limits, 11.5)
    assert (late.badge, late.live) == ("amber", True)
    stale = look(tile, limits, 13.0)
    assert (stale.badge, stale.live, stale.overlay) == ("red", False, "STALE")
    tile.stream_status = "offline"
    tile.offline_since = datetime(2026, 11, 24, 14, 5)
    gone = look(tile, limits, 10.1)
    assert (gone.live, gone.overlay) == (
        False,
        "OFFLINE since 14:05\nThe edge answers, but its camera sends no pictures.",
    )
    tile.stream_status, tile.reachable, tile.problem = "online", False, "connection refused"
    assert look(tile, limits, 10.1).overlay == "OFFLINE since 14:05\nconnection refused"
    assert look(Tile(1), limits).overlay == "No device"
    # With the device's one state, it decides (the sidebar and the alerts show the same).
    tile.reachable = True
    went = datetime(2026, 11, 24, 15, 7)
    dead = DeviceState("offline", "The edge does not answer (connection refused)", went)
    assert look(tile, limits, 10.1, dead).overlay == (
        "OFFLINE since 15:07\nThe edge does not answer (connection refused)"
    )
    keyless = look(tile, limits, 10.1, DeviceState("key_needed", "No key stored", went))
    assert keyless.overlay.startswith("API KEY NEEDED\nNo key stored")
    assert not keyless.live


@pytest.mark.parametrize(
    ("pixels", "bucket"), [(1, 160), (160, 160), (161, 240), (700, 960), (5000, 1920)]
)
def test_width_buckets(pixels: float, bucket: int) -> None:
    assert width_bucket(pixels) == bucket


# ---------------------------------------------------------------------- against real edges
@pytest.mark.asyncio
async def test_wall_2x2_shows_four_live_pictures_that_change(
    live_edge: LiveEdgeFactory, console_factory: Any
) -> None:
    bays = [await live_edge(name=f"bay {n}", width=640, height=360) for n in range(1, 5)]
    console = await console_factory(edges=[(b.url, b.keys.viewer) for b in bays], layout=(2, 2))
    console.window.resize(1000, 700)
    wall, view = console.wall, console.wall_view
    assert (wall.rows, wall.cols) == (2, 2)
    assert len(view.tiles) == 4

    await wait_until(lambda: all(t.image is not None for t in wall.tiles), 10, "4 pictures")
    assert sorted(t.device_name for t in wall.tiles) == ["bay 1", "bay 2", "bay 3", "bay 4"]
    assert len({t.device_key for t in wall.tiles}) == 4
    first = [t.seq for t in wall.tiles]
    await wait_until(
        lambda: all(t.seq > s for t, s in zip(wall.tiles, first, strict=True)), 10,
        "every tile shows a newer frame",
    )  # fmt: skip
    for index, tile in enumerate(wall.tiles):
        state = wall.look(index)
        assert state.live, (tile.device_name, state)
        assert state.badge == "green"
        # Asked at the tile's size (bucketed), and the edge scaled the picture to it.
        widget = view.tiles[index]
        assert tile.width == width_bucket(widget.width() * widget.devicePixelRatioF())
        assert tile.image is not None
        assert tile.image.width() == min(tile.width, 640)  # the edge never upscales
    # What is painted: the live picture in colour, no overlay.
    await wait_until(lambda: all(w.live_shown for w in view.tiles), 3, "painted as live")
    shot = view.tiles[0].grab().toImage()
    assert colourful(shot)
    assert console.first_picture.done  # logged "first picture on screen after N ms"


@pytest.mark.asyncio
async def test_unchanged_frames_cost_a_304(
    live_edge: LiveEdgeFactory, console_factory: Any
) -> None:
    bay = await live_edge(name="slow bay", fps=1)  # a new frame every second, polled at 2 fps
    console = await console_factory(edges=[(bay.url, bay.keys.viewer)], layout=(1, 1))
    wall = console.wall
    await wait_until(lambda: wall.tile(0).not_modified >= 2, 6, "two 304 answers")
    assert wall.tile(0).pictures >= 1
    assert wall.look(0).live


@pytest.mark.asyncio
async def test_stopped_edge_turns_offline_and_grey(
    live_edge: LiveEdgeFactory, console_factory: Any
) -> None:
    bay = await live_edge(name="bay 5")
    console = await console_factory(edges=[(bay.url, bay.keys.viewer)], layout=(1, 1))
    wall, tile_widget = console.wall, console.wall_view.tiles[0]
    await wait_until(lambda: wall.tile(0).image is not None, 10, "a picture")
    await wait_until(lambda: tile_widget.live_shown, 3, "painted as live")
    assert colourful(tile_widget.grab().toImage())

    stopped = time.monotonic()
    await bay.stop_serving()
    took = await wait_until(
        lambda: wall.look(0).overlay.startswith("OFFLINE since"), 3.0, "the offline overlay"
    )
    print(f"offline overlay {took:.2f} s after the edge stopped")
    since = wall.tile(0).offline_since
    assert since is not None
    assert abs((datetime.now().astimezone() - since).total_seconds()) < 5
    assert wall.look(0).overlay.startswith(f"OFFLINE since {since:%H:%M}")
    assert not wall.look(0).live
    await wait_until(lambda: not tile_widget.live_shown, 1.0, "repainted as not live")
    assert tile_widget.overlay_shown.startswith("OFFLINE since")
    # The old picture is still drawn, but in grey under the overlay: never as if live.
    assert not colourful(tile_widget.grab().toImage())
    assert time.monotonic() - stopped < 4.0


@pytest.mark.asyncio
async def test_edge_that_comes_up_after_the_console_takes_its_tile(
    tmp_path: Path, edge_factory: EdgeFactory, console_factory: Any
) -> None:
    # The site PC boots before the bay's Pi: the typed URL does not answer yet. Once it does,
    # the device becomes known by its id, and the tile must follow it (not stay on the URL).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data_dir = tmp_path / "late"
    data_dir.mkdir()
    keys = Keys(KeyStore.in_dir(data_dir))
    url = f"http://127.0.0.1:{port}"
    console = await console_factory(edges=[(url, keys.viewer)], layout=(1, 1))
    wall = console.wall
    await wait_until(lambda: wall.tile(0).device_key is not None, 5, "the unreachable URL's tile")
    assert not wall.look(0).live

    edge = edge_factory(name="late bay", data_dir=str(data_dir), camera={"source": synthetic()})
    edge.device_id = device_id(data_dir)
    server = await start_edge_server(edge, f"127.0.0.1:{port}")
    try:
        await wait_until(
            lambda: wall.look(0).live and wall.tile(0).device_key == edge.device_id,
            12, "the late edge live on its tile, keyed by its id",
        )  # fmt: skip
        assert wall.tile(0).device_name == "late bay"
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_double_click_enlarges_and_escape_returns(
    live_edge: LiveEdgeFactory, console_factory: Any, qtbot: QtBot
) -> None:
    bays = [await live_edge(name=f"bay {n}") for n in (1, 2)]
    console = await console_factory(edges=[(b.url, b.keys.viewer) for b in bays], layout=(1, 2))
    view, wall = console.wall_view, console.wall
    await wait_until(lambda: all(t.image is not None for t in wall.tiles), 10, "2 pictures")
    small = view.tiles[1].width()
    qtbot.mouseDClick(view.tiles[1], Qt.MouseButton.LeftButton)
    assert view.enlarged == 1
    assert not view.tiles[0].isVisible()
    await wait_until(lambda: view.tiles[1].width() > small * 1.5, 2, "the tile grew")
    assert not wall.tile(0).active
    await wait_until(lambda: wall.tile(1).width > width_bucket(small), 2, "a bigger picture asked")
    qtbot.keyClick(view.tiles[1], Qt.Key.Key_Escape)
    assert view.enlarged is None
    assert view.tiles[0].isVisible()
    assert wall.tile(0).active


def test_layout_and_groups_are_saved_and_restored(tmp_path: Path) -> None:
    path = str(tmp_path / "console.ini")
    settings = ConsoleSettings(QSettings(path, QSettings.Format.IniFormat))
    wall = WallPresenter(settings, client_for=lambda d: pytest.fail("no polling here"))
    assert (wall.rows, wall.cols) == (2, 2)
    wall.set_layout(3, 3)
    wall.assign(4, "dev-a")
    wall.assign(8, "dev-b")
    wall.save_group("Entrance")
    wall.save_group("Exit")  # from now on changes go to "Exit"; "Entrance" stays as it was
    wall.set_layout(1, 2)
    wall.assign(0, "dev-c")
    assert wall.tile_fps(1) == 2.0  # the wall's default
    wall.set_tile_fps(1, 5.0)
    settings.sync()

    again = WallPresenter(
        ConsoleSettings(QSettings(path, QSettings.Format.IniFormat)),
        client_for=lambda d: pytest.fail("no polling here"),
    )
    assert (again.rows, again.cols) == (1, 2)
    assert again.group == "Exit"
    assert again.assignments == ["dev-c", None]
    assert (again.tile_fps(0), again.tile_fps(1)) == (2.0, 5.0)
    assert again.groups() == ["Default", "Entrance", "Exit"]
    again.set_layout(3, 3)
    again.load_group("Entrance")
    assert again.assignments[4] == "dev-a"
    assert again.assignments[8] == "dev-b"
    with pytest.raises(KeyError):
        again.load_group("nope")
    again.close()
    wall.close()


def test_tile_text_grows_with_the_tile(tmp_path: Path, qtbot: QtBot) -> None:
    """11 px text on a 1,900 px tile at 4K (no Qt scaling) is unreadable: the text scales."""
    settings = ConsoleSettings(QSettings(str(tmp_path / "c.ini"), QSettings.Format.IniFormat))
    wall = WallPresenter(settings, client_for=lambda d: pytest.fail("no polling here"))
    wall.set_layout(1, 1)
    wall.assign(0, "dev-a")
    tile = TileWidget(wall, 0, FirstPicture(time.monotonic()))
    qtbot.addWidget(tile)
    base_px = QFontMetrics(tile.font()).height()
    sizes = {}
    for width, height in ((320, 180), (1900, 1070)):
        tile.resize(width, height)
        tile.grab()  # paints: text_px is the pixel height of the text the paint used
        sizes[width] = tile.text_px
    assert sizes[320] >= base_px  # never below the desktop's font on a small tile
    assert sizes[1900] >= 3 * sizes[320], sizes
    assert sizes[1900] >= 40, sizes  # readable across a room
    wall.close()


@pytest.mark.asyncio
async def test_sixteen_tiles_from_four_edges_never_stall_the_loop(
    edge_process: EdgeProcessFactory, console_factory: Any
) -> None:
    # Edges in their own processes: the console's loop carries only the console's work.
    procs = await asyncio.gather(*(edge_process(name=f"bay {n}") for n in range(1, 5)))
    console = await console_factory(edges=[(p.url, p.keys.viewer) for p in procs], layout=(4, 4))
    console.window.resize(1280, 800)
    wall = console.wall
    await wait_until(lambda: len(wall.devices) == 4, 10, "4 devices")
    keys = list(wall.devices)
    for index in range(16):
        wall.assign(index, keys[index % 4])
    await wait_until(lambda: all(t.image is not None for t in wall.tiles), 15, "16 pictures")
    assert wall.refresh_fps == 2.0

    gaps: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer.timeout.connect(tick)
    pictures_before = sum(t.pictures for t in wall.tiles)
    timer.start()
    await asyncio.sleep(10.0)  # the measurement window itself: nothing to wait for
    timer.stop()
    pictures = sum(t.pictures for t in wall.tiles) - pictures_before
    stalls = sorted(max(0.0, g - 0.010) * 1000 for g in gaps)
    p50, p99 = stalls[len(stalls) // 2], stalls[int(len(stalls) * 0.99)]
    print(
        f"16 tiles, 4 edges, 2 fps: {len(gaps)} ticks, {pictures} new pictures in 10 s;"
        f" event-loop stall p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {stalls[-1]:.1f} ms"
    )
    assert pictures > 16 * 2 * 10 * 0.5  # the wall really refreshed meanwhile
    assert all(wall.look(i).live for i in range(16))
    assert p99 <= 50.0


@pytest.mark.asyncio
async def test_tile_shows_the_last_plate_read_at_its_bay(
    live_edge: LiveEdgeFactory, console_factory: Any
) -> None:
    bay = await live_edge(name="bay 7")
    console = await console_factory(edges=[(bay.url, bay.keys.viewer)], layout=(1, 1))
    wall = console.wall
    await wait_until(lambda: wall.look(0).live, 10, "a live picture")
    # Through the edge's own event log and SSE route (P1 will emit these from real reads).
    await emit_plate_read(bay, "KA-123-B", member={"name": "Ann Lee", "plan": "gold"})
    await wait_until(lambda: wall.tile(0).last_plate == "KA123B", 8, "the plate on the tile")
    assert wall.tile(0).plate_member
    await emit_plate_read(bay, "MX 4411")
    await wait_until(lambda: wall.tile(0).last_plate == "MX4411", 8, "the next plate")
    assert not wall.tile(0).plate_member


@pytest.mark.asyncio
async def test_tile_shows_the_cart_summary_of_a_bay_with_lock_boards(
    rig: LockRig, live_edge: LiveEdgeFactory, console_factory: Any
) -> None:
    locked = await live_edge(
        name="bay 1", width=160, height=90, fps=2, locks=rig.config.model_dump(mode="json")
    )
    await locked.edge.start_locks()  # live_edge starts the camera side only
    plain = await live_edge(name="bay 2", width=160, height=90, fps=2)
    console = await console_factory(
        edges=[(locked.url, locked.keys.operator), (plain.url, plain.keys.viewer)], layout=(1, 2)
    )
    console.window.resize(1000, 600)
    wall, view, carts = console.wall, console.wall_view, console.carts

    def index_of(name: str) -> int:
        return next(i for i, t in enumerate(wall.tiles) if t.device_name == name)

    def shown(name: str) -> str:
        summary = wall.carts(index_of(name))
        return summary.text if summary is not None else ""

    await wait_until(lambda: {t.device_name for t in wall.tiles} == {"bay 1", "bay 2"}, 10,
                     "both bays on the wall")  # fmt: skip
    await wait_until(lambda: shown("bay 1") == "Carts 6 free", 10, "the summary of bay 1")
    await wait_until(lambda: view.tiles[index_of("bay 1")].carts_shown == "Carts 6 free", 2,
                     "painted on the tile")  # fmt: skip
    # A device without lock boards shows nothing about carts (once the edge said so).
    plain_key = wall.tile(index_of("bay 2")).device_key
    await wait_until(
        lambda: (s := carts.section(plain_key)) is not None and s.enabled is False, 10,
        "bay 2 answered: no lock boards",
    )  # fmt: skip
    assert wall.carts(index_of("bay 2")) is None
    assert view.tiles[index_of("bay 2")].carts_shown == ""

    # Unlocked from the console (the carts page's presenter: the one source of cart state).
    key = wall.tile(index_of("bay 1")).device_key
    task = carts.unlock(key, 2)
    assert task is not None
    await task
    await wait_until(lambda: shown("bay 1") == "Carts 5 free · 1 out", 3, "one cart out")
    await wait_until(lambda: view.tiles[index_of("bay 1")].carts_shown == "Carts 5 free · 1 out",
                     2, "repainted")  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # for a look (not committed)
    view.tiles[index_of("bay 1")].grab().save(str(ARTIFACTS / "wall-tile-carts.png"))
    # A board that stops answering: its carts count as unknown (summary still current).
    rig.thread.call(lambda: rig.sim.set_online(2, False))
    await wait_until(lambda: shown("bay 1") == "Carts 3 free · 1 out · 2 unknown", 5,
                     "board 2 silent")  # fmt: skip
    assert rig.sim.coil_writes == [(2, True)]
