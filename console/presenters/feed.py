"""The plate feed's presenter: follows every edge's plate reads, fetches thumbnails, exports.

One task per device follows ``EdgeClient.follow_events(kinds=["plate.read"])``. The last event
id seen per device is handed to a small store the app gives (QSettings in the app, see
:class:`SettingsLastIds`), so a reconnect or a console restart resumes with ``Last-Event-ID``
and loses nothing. A device seen for the first time starts with its recent plates.

Rows reach the view in batches (every ``batch_ms``), so a burst of reads costs one model update.
A row's thumbnail is the edge's crop of the plate when the read has one (``crop_url``), else its
snapshot from the edge's picture history (``snapshot_seq``), scaled by the edge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QImage

from console.models.plate_rows import PLATE_READ, PlateRow, row_from_event, write_csv
from console.presenters.base import Presenter
from console.services.discovery import Device
from console.services.edge_client import ClientFor, EdgeClient, EdgeEvent
from console.services.errors import ConsoleError, EdgeApiError, EdgeAuthError, EdgeUnreachable

log = logging.getLogger("console.feed")

PLATE = PLATE_READ
THUMB_WIDTH = 96
RESUME_DELAY_S = 0.5
# A bay that refuses the key (or has none) is asked again this often, and at once when its
# client changes (a key was entered); the feed says nothing meanwhile: the device's one state
# (key needed, on its tile, in the sidebar and the alerts) already does.
KEY_RETRY_S = 15.0


class LastIds(Protocol):
    """Where the feed keeps each device's last event id across reconnects and restarts."""

    def load(self, device_key: str) -> int | None: ...
    def save(self, device_key: str, event_id: int) -> None: ...


class SettingsLastIds:
    """:class:`LastIds` in QSettings under ``feed/last_event_id/<device key>``."""

    def __init__(self, settings: QSettings, group: str = "feed/last_event_id") -> None:
        self._settings = settings
        self._group = group

    def _key(self, device_key: str) -> str:
        return f"{self._group}/{quote(device_key, safe='')}"

    def load(self, device_key: str) -> int | None:
        value = self._settings.value(self._key(device_key))
        try:
            return int(str(value)) if value is not None else None
        except ValueError:
            return None

    def save(self, device_key: str, event_id: int) -> None:
        self._settings.setValue(self._key(device_key), event_id)


@dataclass
class _Follow:
    device: Device
    task: asyncio.Task[None]


class FeedPresenter(Presenter):
    """Plate reads of every device, as :class:`PlateRow` batches.

    The app calls :meth:`update_device` for every device the directory reports (and
    :meth:`remove_device` when one is forgotten); ``client_for`` gives the device's client.
    """

    rowsArrived = Signal(list)  # list[PlateRow], oldest first
    thumbnailReady = Signal(str, str, QImage)  # device key, PlateRow.thumb_key, decoded picture
    thumbnailMissing = Signal(str, str)  # no longer kept by the edge (or no client)
    exported = Signal(str, int)  # path, rows written
    following = Signal(str, bool)  # device key, following or not

    def __init__(
        self,
        client_for: ClientFor,
        last_ids: LastIds,
        *,
        initial_limit: int = 200,
        batch_ms: int = 100,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._client_for = client_for
        self._last_ids = last_ids
        self._initial_limit = initial_limit
        self._batch_s = batch_ms / 1000.0
        self._follows: dict[str, _Follow] = {}
        self._pending: list[PlateRow] = []
        self._pending_ids: dict[str, int] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._thumbs_wanted: set[tuple[str, str]] = set()
        self._devices: dict[str, Device] = {}

    # ------------------------------------------------------------------ devices
    @property
    def devices(self) -> dict[str, Device]:
        return dict(self._devices)

    def update_device(self, device: Device) -> None:
        """Follow ``device`` (its new name/site label the rows from now on)."""
        self._devices[device.key] = device
        current = self._follows.get(device.key)
        if current is not None and not current.task.done():
            current.device = device
            return
        task = self.spawn(self._follow(device.key), name=f"plates of {device.name}")
        self._follows[device.key] = _Follow(device, task)
        self.following.emit(device.key, True)

    def remove_device(self, key: str) -> None:
        self._devices.pop(key, None)
        follow = self._follows.pop(key, None)
        if follow is not None:
            follow.task.cancel()
            self.following.emit(key, False)

    def _client(self, key: str) -> EdgeClient | None:
        follow = self._follows.get(key)
        return self._client_for(follow.device) if follow is not None else None

    async def _follow(self, key: str) -> None:
        """Follow one device for as long as it is in the feed.

        The pool closes a client whose URL or key changed (its stream then ends): the loop takes
        the device's current client and resumes from the last id, so nothing is lost.
        """
        last = self._last_ids.load(key)
        first = last is None
        while (client := self._client(key)) is not None:
            try:
                if first:
                    last = await self._recent(key, client)
                    first = False
                async for event in client.follow_events(last_event_id=last, kinds=[PLATE]):
                    self._accept(key, event)
                    if event.id:
                        last = event.id
            except EdgeAuthError as err:
                log.info("%s: plate feed waits for a key the edge accepts: %s", key, err)
                await self._key_changed(key, client)
                continue
            await asyncio.sleep(RESUME_DELAY_S)  # the stream ended: the client was replaced

    async def _key_changed(self, key: str, client: EdgeClient) -> None:
        """Wait until ``key``'s client is replaced (a key was entered), or KEY_RETRY_S."""
        for _ in range(max(1, round(KEY_RETRY_S / RESUME_DELAY_S))):
            if self._client(key) is not client:
                return
            await asyncio.sleep(RESUME_DELAY_S)

    async def _recent(self, key: str, client: EdgeClient) -> int | None:
        """First sight of a device: its recent plates; returns the newest id (None: none)."""
        try:
            recent = await client.recent_events(self._initial_limit, kinds=[PLATE])
        except EdgeApiError as err:
            if err.status != 404:
                raise
            return None  # an edge without an event log yet: live only
        except EdgeUnreachable as err:
            log.info("%s: no recent plates (%s); following from now", client.base_url, err)
            return None
        for event in reversed(recent):
            self._accept(key, event)
        # No plates at all yet: resume after id 0, i.e. every plate from now on, including one
        # read between this answer and the stream's start.
        return max((e.id for e in recent), default=0)

    def _accept(self, key: str, event: EdgeEvent) -> None:
        follow = self._follows.get(key)
        device = follow.device if follow is not None else self._devices.get(key)
        if event.kind != PLATE or device is None:
            return
        row = row_from_event(key, device.name, device.site, event.id, event.ts, event.payload)
        if event.id > 0:  # id 0: the edge could not store it, so it cannot be resumed from
            self._pending_ids[key] = event.id
        if row is not None:
            self._pending.append(row)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self._batch_s, self.flush)

    def flush(self) -> None:
        """Hand the pending rows to the view, then remember the ids (delivered = seen)."""
        self._flush_handle = None
        rows, self._pending = self._pending, []
        ids, self._pending_ids = self._pending_ids, {}
        if rows and not self.closed:
            self.rowsArrived.emit(rows)
        for key, event_id in ids.items():
            self._last_ids.save(key, event_id)

    # ------------------------------------------------------------------ thumbnails
    def request_thumbnail(self, row: PlateRow) -> None:
        """Fetch (once) and decode off the GUI thread the picture of a read: its plate crop,
        else its snapshot. ``thumbnailReady``/``thumbnailMissing`` name ``row.thumb_key``."""
        key = row.thumb_key
        if key is None or (row.device_key, key) in self._thumbs_wanted or self.closed:
            return
        self._thumbs_wanted.add((row.device_key, key))
        self.spawn(self._thumbnail(row, key), name=f"thumbnail {row.device_key} {key}")

    async def _thumbnail(self, row: PlateRow, key: str) -> None:
        device_key = row.device_key
        client = self._client(device_key)
        if client is None:
            self.thumbnailMissing.emit(device_key, key)
            return
        try:
            jpeg = await self._thumbnail_jpeg(client, row)
        except ConsoleError as err:
            log.debug("thumbnail %s %s: %s", device_key, key, err)
            self._thumbs_wanted.discard((device_key, key))  # may work on a later look
            self.thumbnailMissing.emit(device_key, key)
            return
        image = await asyncio.to_thread(_decode, jpeg, THUMB_WIDTH) if jpeg else None
        if image is None or image.isNull():
            self.thumbnailMissing.emit(device_key, key)
        else:
            self.thumbnailReady.emit(device_key, key, image)

    @staticmethod
    async def _thumbnail_jpeg(client: EdgeClient, row: PlateRow) -> bytes | None:
        if row.crop_url:
            try:
                crop = await client.plate_crop(row.crop_url)
            except EdgeApiError as err:  # refused (an edge with other read ids): the picture
                log.debug("crop %s: %s", row.crop_url, err)
                crop = None
            if crop is not None:
                return crop
            # No crop (any more, or an edge that keeps none): the whole picture, if kept.
        if row.snapshot_seq is None:
            return None
        picture = await client.snapshot_at(row.snapshot_seq, width=THUMB_WIDTH)
        return picture.jpeg if picture is not None else None

    # ------------------------------------------------------------------ export
    def export_csv(self, path: str, rows: Sequence[PlateRow]) -> asyncio.Task[None]:
        """Write ``rows`` to ``path`` in a worker thread; ``exported`` or ``error`` follows."""
        return self.spawn(self._export(Path(path), list(rows)), name=f"export {path}")

    async def _export(self, path: Path, rows: list[PlateRow]) -> None:
        try:
            count = await asyncio.to_thread(write_csv, path, rows)
        except OSError as err:
            raise ConsoleError(f"cannot write {path}: {err.strerror or err}") from err
        self.exported.emit(str(path), count)

    def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        super().close()


def _decode(jpeg: bytes, max_width: int) -> QImage:
    """JPEG → QImage at most ``max_width`` wide (a crop comes at the edge's size); runs in a
    worker thread (QImage, unlike QPixmap, is thread-safe)."""
    image = QImage()
    image.loadFromData(jpeg, "JPEG")
    if image.width() > max_width:
        image = image.scaledToWidth(max_width, Qt.TransformationMode.SmoothTransformation)
    return image
