"""The device page's presenter: live picture, chart samples, health, events, the config editor.

``await show_device(key)`` loads the device's config, history and recent events and starts
polling: every ``interval_s`` one round of ``/metrics``, ``/api/snapshot/info``,
``/api/health`` and a small picture (one request in flight at a time per device), turned into
a :class:`console.models.device_charts.Sample`. Events follow live over SSE. Config calls need an
admin key: without one the editor says so (``configUnavailable``) and the rest of the page works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from console.models.config_form import Change, errors_by_path, merge_patch
from console.models.device_charts import Sampler
from console.presenters.base import Presenter, tracked_slot
from console.services.discovery import Device
from console.services.edge_client import ClientFor, EdgeClient, Picture
from console.services.errors import ConsoleError, EdgeApiError, EdgeAuthError, EdgeUnreachable
from fleet_common.wire.edge import SnapshotInfo

log = logging.getLogger("console.device")

PICTURE_WIDTH = 480
RECENT_EVENTS = 50

DeviceFor = Callable[[str], Device | None]


def auth_message(err: EdgeAuthError, what: str) -> str:
    """A sentence for an operator: which key is missing, not a stack trace."""
    if err.status == 403:
        return (
            f"{what} needs an admin key for this device; the stored key's role is too low"
            f" ({err.message}). Enter an admin key in the device's settings."
        )
    return (
        f"{what} needs an API key for this device; the edge refused the stored one"
        f" ({err.message}). Enter a key in the device's settings."
    )


class DevicePresenter(Presenter):
    """Everything the device page shows, for one device at a time."""

    deviceShown = Signal(object)  # Device
    pictureReady = Signal(QImage, object)  # decoded picture, Picture (seq, age, status)
    sampleAdded = Signal(object)  # console.models.device_charts.Sample
    healthChanged = Signal(object)  # fleet_common.wire.edge.Health, or None while unreachable
    infoChanged = Signal(object)  # fleet_common.wire.edge.SnapshotInfo
    unreachable = Signal(str)  # why the last poll failed
    eventsReset = Signal(list)  # list[EdgeEvent], newest first
    eventArrived = Signal(object)  # EdgeEvent
    configLoaded = Signal(dict, dict, int)  # schema, current config (masked), version
    configUnavailable = Signal(str)  # why the editor cannot work (no admin key, old edge)
    configApplied = Signal(object)  # ConfigApplied
    configRejected = Signal(dict, str)  # {dotted path: reason}, message
    historyLoaded = Signal(list)  # list[ConfigVersionInfo], newest first
    versionLoaded = Signal(int, dict)  # version, its config (for a rollback preview)

    def __init__(
        self,
        device_for: DeviceFor,
        client_for: ClientFor,
        *,
        interval_s: float = 1.5,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._device_for = device_for
        self._client_for = client_for
        self.interval_s = interval_s
        self.device: Device | None = None
        self.version: int | None = None
        self._running: list[asyncio.Task[None]] = []
        self._sampler = Sampler()

    # ------------------------------------------------------------------ showing
    async def show_device(self, key: str) -> None:
        """Switch to device ``key``: stop the previous one's work, load, start polling."""
        await self._stop_running()
        device = self._device_for(key)
        if device is None:
            raise ConsoleError(f"no device {key!r} (forgotten?)")
        self.device, self.version = device, None
        self._sampler.reset()
        self.deviceShown.emit(device)
        self._running = [
            self.spawn(self._poll(), name=f"poll {device.name}"),
            self.spawn(self._follow_events(), name=f"events of {device.name}"),
        ]
        await self._load_config(self._client_for(device))

    @property
    def client(self) -> EdgeClient | None:
        """The shown device's client, asked of the pool each time (it replaces a client whose
        URL or key changed, and closes the old one)."""
        return self._client_for(self.device) if self.device is not None else None

    def hide_device(self) -> None:
        """Stop polling (the page is not visible)."""
        for task in self._running:
            task.cancel()
        self._running = []
        self.device = None

    async def _stop_running(self) -> None:
        tasks, self._running = self._running, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------------ polling
    async def _poll(self) -> None:
        etag: str | None = None
        while (client := self.client) is not None:
            started = time.monotonic()
            try:
                etag = await self._poll_once(client, etag)
            except EdgeUnreachable as err:
                self.healthChanged.emit(None)
                self.unreachable.emit(err.message)
                self._sampler.reset()
            delay = self.interval_s - (time.monotonic() - started)
            await asyncio.sleep(max(delay, 0.05))

    async def _poll_once(self, client: EdgeClient, etag: str | None) -> str | None:
        health = await client.health()
        self.healthChanged.emit(health)
        metrics: dict[str, float] = {}
        info: SnapshotInfo | None = None
        round_trip: float | None = None
        try:
            metrics = await client.metrics()
            info = await client.info()
            sent = time.monotonic()
            picture = await client.snapshot(width=PICTURE_WIDTH, etag=etag)
            round_trip = (time.monotonic() - sent) * 1000.0
        except EdgeAuthError as err:
            self.unreachable.emit(auth_message(err, "The live picture"))
            picture = None
        except EdgeApiError as err:  # e.g. 503: no picture yet
            log.debug("%s: %s", client.base_url, err)
            picture = None
        if info is not None:
            self.infoChanged.emit(info)
        latest = info.latest if info is not None else None
        self.sampleAdded.emit(
            self._sampler.sample(
                time.monotonic(),
                metrics,
                fps_in=info.source.fps_in if info is not None else None,
                fps_decoded=info.source.fps_decoded if info is not None else None,
                frame_age_ms=latest.age_ms if latest is not None else None,
                round_trip_ms=round_trip,
            )
        )
        if picture is not None:
            await self._show_picture(picture)
            return picture.etag
        return etag

    async def _show_picture(self, picture: Picture) -> None:
        image = await asyncio.to_thread(_decode, picture.jpeg)
        if not image.isNull():
            self.pictureReady.emit(image, picture)

    async def _follow_events(self) -> None:
        client = self.client
        if client is None:
            return
        try:
            recent = await client.recent_events(RECENT_EVENTS)
        except EdgeAuthError as err:
            self.unreachable.emit(auth_message(err, "Events"))
            return
        except EdgeApiError as err:
            if err.status == 404:
                return  # an edge without an event log
            raise
        except EdgeUnreachable:
            recent = []
        self.eventsReset.emit(recent)
        last = recent[0].id if recent else None
        while (client := self.client) is not None:
            async for event in client.follow_events(last_event_id=last):
                self.eventArrived.emit(event)
                if event.id:
                    last = event.id
            await asyncio.sleep(0.5)  # the stream ended: the pool replaced the client

    # ------------------------------------------------------------------ config
    async def _load_config(self, client: EdgeClient) -> None:
        try:
            schema = await client.config_schema()
            doc = await client.config()
        except EdgeAuthError as err:
            self.configUnavailable.emit(auth_message(err, "The config editor"))
            return
        except EdgeApiError as err:
            self.configUnavailable.emit(f"This edge has no config editor ({err.message}).")
            return
        except EdgeUnreachable as err:
            self.configUnavailable.emit(f"The device cannot be reached ({err.message}).")
            return
        self.version = doc.version
        self.configLoaded.emit(schema, doc.config, doc.version)
        try:
            history = await client.config_history()
        except ConsoleError as err:  # the form still works; only rollback does not
            log.info("%s: no config history: %s", client.base_url, err)
            history = []
        self.historyLoaded.emit(history)

    @tracked_slot()
    async def reload_config(self) -> None:
        if self.client is not None:
            await self._load_config(self.client)

    @tracked_slot(list)
    async def apply(self, changes: Sequence[Change]) -> None:
        """PATCH the changed paths with ``If-Match`` of the version the form was built from."""
        client = self.client
        if client is None or not changes:
            return
        patch = merge_patch(list(changes))
        try:
            applied = await client.patch_config(patch, if_match=self.version)
        except EdgeApiError as err:
            if err.status == 412:
                self.configRejected.emit(
                    {}, "The config changed on the device meanwhile: the form shows it now;"
                    " review your changes and apply again.",
                )  # fmt: skip
                await self._load_config(client)
                return
            self.configRejected.emit(errors_by_path(err.errors), err.message)
            return
        except EdgeAuthError as err:
            self.configRejected.emit({}, auth_message(err, "Changing the config"))
            return
        self.configApplied.emit(applied)
        await self._load_config(client)

    @tracked_slot(int)
    async def preview_version(self, version: int) -> None:
        """Load a past version's config (the view shows its diff before a rollback)."""
        if self.client is None:
            return
        doc = await self.client.config_version(version)
        self.versionLoaded.emit(doc.version, doc.config)

    @tracked_slot(int)
    async def rollback(self, version: int) -> None:
        client = self.client
        if client is None:
            return
        try:
            applied = await client.rollback(version)
        except EdgeApiError as err:
            self.configRejected.emit(errors_by_path(err.errors), err.message)
            return
        except EdgeAuthError as err:
            self.configRejected.emit({}, auth_message(err, "Rolling back"))
            return
        self.configApplied.emit(applied)
        await self._load_config(client)

    async def aclose(self) -> None:
        await self._stop_running()
        await super().aclose()


def _decode(jpeg: bytes) -> QImage:
    image = QImage()
    image.loadFromData(jpeg, "JPEG")
    return image


def summary(value: Any) -> str:
    """A one-line text of an event payload for the events list."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={summary(v)}" for k, v in value.items() if v not in (None, ""))
    if isinstance(value, list):
        return "[" + ", ".join(summary(v) for v in value) + "]"
    return str(value)
