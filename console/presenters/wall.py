"""The live wall: a grid of tiles, each polling one device's newest picture.

Per tile one task: ``GET /api/snapshot?width=BUCKET`` with ``If-None-Match`` (an unchanged frame
costs a 304 and no decoding), one request in flight, the next one ``1/refresh_fps`` after the
previous one started, backing off (1 s doubling to 30 s) while the edge is unreachable. JPEGs
are decoded to QImage in a worker thread; widgets turn them into pixmaps on the GUI thread.

Whether a picture may be presented as live is decided here (:func:`look`), not in the widget:
unreachable edge or offline stream → "OFFLINE since hh:mm"; older than the red threshold →
"STALE". The widget greys the picture in both cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from console.models.cart_tiles import CartSummary
from console.presenters.base import Presenter
from console.services.device import Device
from console.services.edge_client import ClientFor, Picture
from console.services.errors import ConsoleError, EdgeAuthError, EdgeUnreachable
from console.services.settings import DEFAULT_GROUP, AgeThresholds, ConsoleSettings
from console.services.status import DeviceState, DeviceStates, plain_reason

log = logging.getLogger("console.wall")

# Picture widths asked of the edge: it memoises one scaled variant per width and frame, so
# tiles of nearly the same size share one variant instead of each making its own.
WIDTH_BUCKETS: Final = (160, 240, 320, 480, 640, 960, 1280, 1920)
BACKOFF_FIRST_S: Final = 1.0
BACKOFF_MAX_S: Final = 30.0

Badge = Literal["none", "green", "amber", "red"]


def width_bucket(pixels: float) -> int:
    """The smallest bucket at least ``pixels`` wide (the largest one for bigger tiles)."""
    for bucket in WIDTH_BUCKETS:
        if bucket >= pixels:
            return bucket
    return WIDTH_BUCKETS[-1]


def decode_jpeg(data: bytes) -> QImage | None:
    """JPEG → QImage; runs in a worker thread (QImage, unlike QPixmap, is thread-safe)."""
    image = QImage.fromData(data)  # format sniffed: PySide6 wants str, its stubs say bytes
    return None if image.isNull() else image


@dataclass
class Tile:
    """What one tile shows; owned and changed by :class:`WallPresenter` only."""

    index: int
    device_key: str | None = None
    device_name: str = ""
    image: QImage | None = None
    seq: int = -1
    etag: str | None = None
    captured_at: datetime | None = None
    age_at_receipt_ms: float = 0.0
    received_mono: float = 0.0
    stream_status: str = ""
    reachable: bool = True
    problem: str = ""
    offline_since: datetime | None = None
    last_plate: str = ""
    plate_member: bool = False
    plate_at: datetime | None = None  # when the last plate was read
    pinned: bool = False  # put here by the user (else placed automatically, in bay order)
    width: int = 320
    active: bool = True
    pictures: int = 0
    not_modified: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def age_ms(self, now_mono: float | None = None) -> float | None:
        """Age of the shown picture now (the edge's age at receipt plus the time since)."""
        if self.image is None:
            return None
        now = time.monotonic() if now_mono is None else now_mono
        return self.age_at_receipt_ms + (now - self.received_mono) * 1000.0


@dataclass(frozen=True, slots=True)
class TileLook:
    badge: Badge
    age_text: str
    live: bool  # the picture may be presented as live (not greyed)
    overlay: str  # "" or what covers the picture


def _age_text(age_ms: float) -> str:
    if age_ms < 10_000:
        return f"{age_ms / 1000:.1f} s"
    if age_ms < 120_000:
        return f"{age_ms / 1000:.0f} s"
    return f"{age_ms / 60_000:.0f} min"


def natural_key(text: str) -> list[tuple[int, int | str]]:
    """ "bay 2" before "bay 10": digits compare as numbers."""
    return [(0, int(p)) if p.isdigit() else (1, p.lower()) for p in re.split(r"(\d+)", text) if p]


def look(
    tile: Tile,
    thresholds: AgeThresholds,
    now_mono: float | None = None,
    state: DeviceState | None = None,
) -> TileLook:
    """How ``tile`` must look now. Never "live" for an offline device (``state``, the one
    state the sidebar and the alerts show too), an edge that refuses the key, an offline stream
    or a picture older than the red threshold."""
    if tile.device_key is None:
        return TileLook("none", "", False, "No device")
    age = tile.age_ms(now_mono)
    age_text = _age_text(age) if age is not None else ""
    if state is not None and state.name == "key_needed":
        text = f"API KEY NEEDED\n{state.reason}\nRight-click or press K: Enter key…"
        return TileLook("red", age_text, False, text)
    if state is not None:
        offline = state.name == "offline" or tile.stream_status == "offline"
        problem = state.reason if state.name == "offline" else tile.problem
        went = state.since if state.name == "offline" else tile.offline_since
    else:
        offline = not tile.reachable or tile.stream_status == "offline"
        problem, went = tile.problem, tile.offline_since
    if offline:
        since = went.strftime("%H:%M") if went else "?"
        text = f"OFFLINE since {since}"
        if problem:
            text += f"\n{problem}"
        elif tile.stream_status == "offline":
            text += "\nThe edge answers, but its camera sends no pictures."
        return TileLook("red", age_text, False, text)
    if age is None:
        return TileLook("none", "", False, tile.problem or "Connecting…")
    if age > thresholds.red_ms:
        return TileLook("red", age_text, False, "STALE")
    if age > thresholds.amber_ms:
        return TileLook("amber", age_text, True, "")
    return TileLook("green", age_text, True, "")


class WallPresenter(Presenter):
    """Tiles, their devices and their pictures. Widgets read :meth:`tile` on ``tileChanged``."""

    layoutChanged = Signal(int, int)  # rows, cols
    tileChanged = Signal(int)  # index
    groupsChanged = Signal(list)  # group names

    def __init__(
        self,
        settings: ConsoleSettings,
        client_for: ClientFor,
        *,
        states: DeviceStates | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self._client_for = client_for
        self.states = (
            states
            if states is not None
            else DeviceStates(on_change=lambda k, _s: self.state_changed(k))
        )
        self.home_sites: set[str] = set()  # sites whose bays fill empty tiles by themselves
        self.refresh_fps = settings.refresh_fps
        self._tile_fps = settings.tile_fps
        self.thresholds = settings.thresholds
        self._devices: dict[str, Device] = {}
        self._carts: dict[str, CartSummary] = {}  # by device key: only devices with carts
        self._tiles: list[Tile] = []
        self._started = False
        self.rows, self.cols = settings.layout
        self.group = settings.group
        saved = settings.groups.get(self.group, [])
        self._assign(self.rows * self.cols, saved)
        for tile in self._tiles:
            tile.pinned = tile.device_key is not None  # the user's arrangement, kept

    # ------------------------------------------------------------------ reading
    @property
    def tiles(self) -> Sequence[Tile]:
        return tuple(self._tiles)

    def tile(self, index: int) -> Tile:
        return self._tiles[index]

    def look(self, index: int, now_mono: float | None = None) -> TileLook:
        tile = self._tiles[index]
        return look(tile, self.thresholds, now_mono, self.state(index))

    def state(self, index: int) -> DeviceState | None:
        """The one state of tile ``index``'s device (None: no device)."""
        key = self._tiles[index].device_key
        return self.states.state(key) if key is not None else None

    def state_changed(self, key: str) -> None:
        """The device's state changed (the status presenter): repaint its tiles."""
        for tile in self._tiles:
            if tile.device_key == key:
                self.tileChanged.emit(tile.index)

    def carts(self, index: int) -> CartSummary | None:
        """The cart summary tile ``index`` shows (None: its device has no lock boards)."""
        key = self._tiles[index].device_key
        return self._carts.get(key) if key is not None else None

    @property
    def assignments(self) -> list[str | None]:
        return [t.device_key for t in self._tiles]

    @property
    def devices(self) -> dict[str, Device]:
        return dict(self._devices)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start polling (on the running loop)."""
        self._started = True
        for tile in self._tiles:
            self._ensure_task(tile)

    def _ensure_task(self, tile: Tile) -> None:
        if self._started and not self.closed and (tile.task is None or tile.task.done()):
            tile.task = self.spawn(self._poll(tile), name=f"wall tile {tile.index}")

    def _assign(self, count: int, keys: Sequence[str | None]) -> None:
        old = self._tiles
        for tile in old[count:]:
            if tile.task is not None:
                tile.task.cancel()
        self._tiles = old[:count]
        for index in range(len(self._tiles), count):
            self._tiles.append(Tile(index))
        for index, tile in enumerate(self._tiles):
            key = keys[index] if index < len(keys) else tile.device_key
            self._set_device(tile, key)
            self._ensure_task(tile)

    # ------------------------------------------------------------------ layout and groups
    def set_layout(self, rows: int, cols: int) -> None:
        if (rows, cols) == (self.rows, self.cols):
            return
        self.rows, self.cols = rows, cols
        self.settings.layout = (rows, cols)
        self._assign(rows * cols, self.assignments)
        self._fill_empty_tiles()
        self._save()
        self.layoutChanged.emit(rows, cols)

    def assign(self, index: int, device_key: str | None) -> None:
        """Show ``device_key`` (None: nothing) on tile ``index``; saved in the current group."""
        tile = self._tiles[index]
        self._set_device(tile, device_key)
        tile.pinned = device_key is not None
        self._save()
        self.tileChanged.emit(index)

    def groups(self) -> list[str]:
        return sorted(set(self.settings.groups) | {self.group})

    def save_group(self, name: str) -> None:
        """Save the current assignments under ``name`` and make it the current group."""
        self.group = name
        self.settings.group = name
        self._save()
        self.groupsChanged.emit(self.groups())

    def load_group(self, name: str) -> None:
        keys = self.settings.groups.get(name)
        if keys is None:
            raise KeyError(f"no wall group named {name!r}")
        self.group = name
        self.settings.group = name
        for tile, key in zip(self._tiles, keys, strict=False):
            self._set_device(tile, key)
            tile.pinned = key is not None
        for tile in self._tiles[len(keys) :]:
            self._set_device(tile, None)
            tile.pinned = False
        for tile in self._tiles:
            self.tileChanged.emit(tile.index)

    def _save(self) -> None:
        self.settings.save_group(self.group or DEFAULT_GROUP, self.assignments)

    # ------------------------------------------------------------------ devices
    def update_device(self, device: Device) -> None:
        new = device.key not in self._devices
        self._devices[device.key] = device
        if device.source == "manual" and device.site:
            self.home_sites.add(device.site)  # an edge the user added: its site is theirs
        for tile in self._tiles:
            if tile.device_key == device.key:
                tile.device_name = device.name
                tile.wake.set()  # a new URL or key: try at once
                self.tileChanged.emit(tile.index)
        if new:
            self._fill_empty_tiles()

    def remove_device(self, key: str) -> None:
        """The device is gone: removed by the user, or now known by its id (a manual URL whose
        edge answered; the id-keyed device follows at once and takes the freed tile)."""
        self._devices.pop(key, None)
        for tile in self._tiles:
            if tile.device_key == key:
                self._set_device(tile, None)
                tile.pinned = False
                self.tileChanged.emit(tile.index)
        self._fill_empty_tiles()

    def _home(self, device: Device) -> bool:
        """Whether ``device`` may take an empty tile by itself: it is of the user's site (the
        site of an edge added by URL; else of the first edge found). Edges of other sites found
        on the LAN wait in the tile menu."""
        if not self.home_sites:
            for each in self._devices.values():
                if each.site:
                    self.home_sites.add(each.site)
                    break
        return not self.home_sites or not device.site or device.site in self.home_sites

    def _fill_empty_tiles(self) -> None:
        """The site's bays on the tiles not placed by the user, in bay order ("bay 2" before
        "bay 10"); the user's placements stay where they are."""
        pinned = {t.device_key for t in self._tiles if t.pinned and t.device_key is not None}
        candidates = [d for k, d in self._devices.items() if k not in pinned and self._home(d)]
        candidates.sort(key=lambda d: (natural_key(d.name or d.url), d.key))
        order = [d.key for d in candidates]
        free = [t for t in self._tiles if not t.pinned]
        for tile, key in zip(free, order + [None] * len(free), strict=False):
            if tile.device_key != key:
                self._set_device(tile, key)
                self.tileChanged.emit(tile.index)

    def _set_device(self, tile: Tile, key: str | None) -> None:
        if tile.device_key == key:
            return
        tile.device_key = key
        device = self._devices.get(key) if key else None
        tile.device_name = device.name if device else (key or "")
        tile.image, tile.etag, tile.seq, tile.captured_at = None, None, -1, None
        tile.reachable, tile.problem, tile.offline_since = True, "", None
        tile.stream_status, tile.last_plate, tile.plate_member = "", "", False
        tile.plate_at = None
        tile.wake.set()

    # ------------------------------------------------------------------ what the widgets tell
    def set_tile_width(self, index: int, pixels: float) -> None:
        """The tile's picture area is ``pixels`` device pixels wide."""
        if index >= len(self._tiles):
            return
        tile = self._tiles[index]
        bucket = width_bucket(pixels)
        if bucket != tile.width:
            tile.width = bucket
            tile.etag = None  # another variant: fetch it even if the frame is the same
            tile.wake.set()

    def tile_fps(self, index: int) -> float:
        """Pictures a second asked for tile ``index`` (its own rate, else the wall's)."""
        return self._tile_fps.get(index, self.refresh_fps)

    def set_tile_fps(self, index: int, fps: float | None) -> None:
        """Refresh tile ``index`` at ``fps`` (None: the wall's rate); saved per user."""
        if fps is None:
            self._tile_fps.pop(index, None)
        else:
            self._tile_fps[index] = min(30.0, max(0.1, fps))
        self.settings.tile_fps = self._tile_fps
        if index < len(self._tiles):
            self._tiles[index].wake.set()

    def set_active(self, indices: Sequence[int] | None) -> None:
        """Only tiles in ``indices`` poll (None: all), e.g. while one tile is enlarged."""
        for tile in self._tiles:
            active = indices is None or tile.index in indices
            if active != tile.active:
                tile.active = active
                tile.wake.set()

    def show_plate(
        self, device_key: str, plate: str, member: bool, at: datetime | None = None
    ) -> None:
        """The newest plate read of ``device_key`` (from the plate feed's events)."""
        for tile in self._tiles:
            if tile.device_key == device_key:
                tile.last_plate, tile.plate_member = plate, member
                tile.plate_at = datetime.now().astimezone() if at is None else at
                self.tileChanged.emit(tile.index)

    def show_carts(self, device_key: str, summary: CartSummary | None) -> None:
        """The carts of ``device_key`` now (from the carts page's presenter, which polls and
        follows every device's carts: the wall asks the edges nothing about carts itself)."""
        if summary is None:
            changed = self._carts.pop(device_key, None) is not None
        else:
            changed = self._carts.get(device_key) != summary
            self._carts[device_key] = summary
        if changed:
            for tile in self._tiles:
                if tile.device_key == device_key:
                    self.tileChanged.emit(tile.index)

    # ------------------------------------------------------------------ polling
    async def _poll(self, tile: Tile) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.0
        while True:
            device = self._devices.get(tile.device_key) if tile.device_key else None
            if device is None or not tile.active:
                tile.wake.clear()
                await tile.wake.wait()
                continue
            tile.wake.clear()
            started = loop.time()
            key = tile.device_key
            ok = await self._fetch(tile, device)
            if tile.device_key != key:
                backoff = 0.0
                continue  # re-assigned meanwhile: start over at once
            if ok:
                backoff = 0.0
                delay = max(0.0, 1.0 / self.tile_fps(tile.index) - (loop.time() - started))
            else:
                backoff = min(BACKOFF_MAX_S, backoff * 2 if backoff else BACKOFF_FIRST_S)
                delay = backoff
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives as the wait ends, and the closing console waits for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await tile.wake.wait()

    async def _fetch(self, tile: Tile, device: Device) -> bool:
        try:
            picture = await self._client_for(device).snapshot(width=tile.width, etag=tile.etag)
        except EdgeAuthError as err:
            self.states.refused(device.key, err.status)
            self._went_offline(tile, "API key missing or rejected")
            return False
        except EdgeUnreachable as err:
            self.states.miss(device.key, err.message)
            self._went_offline(tile, plain_reason(err.message))
            return False
        except ConsoleError as err:
            self._went_offline(tile, str(err))
            return False
        self.states.ok(
            device.key,
            authenticated=True,
            stream=picture.stream_status if picture is not None else None,
        )
        if picture is None:  # 304: the same frame; its age keeps growing
            tile.not_modified += 1
            if not tile.reachable:
                tile.reachable, tile.problem = True, ""
                self.tileChanged.emit(tile.index)
            return True
        image = await asyncio.to_thread(decode_jpeg, picture.jpeg)
        if tile.device_key != device.key:
            return True
        if image is None:
            self._went_offline(tile, "the edge sent a picture that does not decode")
            return False
        self._show(tile, picture, image)
        return True

    def _show(self, tile: Tile, picture: Picture, image: QImage) -> None:
        was_offline = not tile.reachable or tile.stream_status == "offline"
        tile.image, tile.etag, tile.seq = image, picture.etag, picture.seq
        tile.captured_at = picture.captured_at
        tile.age_at_receipt_ms, tile.received_mono = picture.age_ms, picture.received_mono
        tile.stream_status, tile.reachable, tile.problem = picture.stream_status, True, ""
        tile.pictures += 1
        if picture.stream_status == "offline":
            if not was_offline or tile.offline_since is None:
                tile.offline_since = datetime.now().astimezone()
        else:
            if was_offline and tile.offline_since is not None:
                log.info("tile %d: %s is back", tile.index, tile.device_name)
            tile.offline_since = None
        self.tileChanged.emit(tile.index)

    def _went_offline(self, tile: Tile, why: str) -> None:
        if tile.reachable:
            log.info("tile %d: %s unreachable: %s", tile.index, tile.device_name, why)
            tile.offline_since = datetime.now().astimezone()
        tile.reachable, tile.problem = False, why
        self.tileChanged.emit(tile.index)
