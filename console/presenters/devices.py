"""The device directory for widgets: zeroconf + manual URLs, as Qt signals.

Wraps :class:`console.services.discovery.DeviceDirectory`; adding an edge by URL stores its API
key (once) in the credential store under the URL, where the client pool finds it even after the
device becomes known by its id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal

from console.presenters.base import Presenter
from console.services.credentials import Credentials
from console.services.device import Device
from console.services.discovery import DeviceDirectory, normalize_url
from console.services.errors import ConsoleError
from console.services.settings import ConsoleSettings

log = logging.getLogger("console.devices")


class DevicesPresenter(Presenter):
    deviceChanged = Signal(object)  # Device (new, or changed: name, URL, online)
    deviceRemoved = Signal(str)  # device key
    summaryChanged = Signal(str)  # "4 edges, 3 online"

    def __init__(
        self,
        settings: ConsoleSettings,
        credentials: Credentials,
        *,
        interfaces: Sequence[str] | None,
        browse: bool = True,
        manual_urls: Sequence[str] = (),
        probe_interval_s: float = 5.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.credentials = credentials
        urls = list(dict.fromkeys([*settings.manual_urls, *manual_urls]))
        self.directory = DeviceDirectory(
            interfaces=interfaces,
            browse=browse,
            manual_urls=urls,
            probe_interval_s=probe_interval_s,
            on_change=self._changed,
            on_removed=self._removed,
        )

    @property
    def devices(self) -> dict[str, Device]:
        return self.directory.devices

    def device(self, key: str) -> Device | None:
        return self.directory.devices.get(key)

    async def start(self) -> None:
        await self.directory.start()

    async def aclose(self) -> None:
        await super().aclose()
        await self.directory.stop()

    def add_edge(self, url: str, api_key: str = "", *, remember: bool = True) -> str:
        """Watch ``url``; store ``api_key`` for it (when given). Returns the normalised URL."""
        url = normalize_url(url)
        if api_key:
            try:
                self.credentials.set(url, api_key)
            except (ConsoleError, ValueError) as err:
                self.report(err, f"storing the API key of {url}")
        if remember:
            self.settings.manual_urls = [*self.settings.manual_urls, url]
        self.directory.add_manual(url)
        log.info("edge added by URL: %s", url)
        return url

    def _changed(self, device: Device) -> None:
        self.deviceChanged.emit(device)
        self._summary()

    def _removed(self, key: str) -> None:
        self.deviceRemoved.emit(key)
        self._summary()

    def _summary(self) -> None:
        devices = self.directory.devices.values()
        online = sum(1 for d in devices if d.online)
        self.summaryChanged.emit(f"{len(devices)} edges, {online} online")
