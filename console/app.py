"""The composition root: settings, credentials, services, presenters and the main window.

Everything is built here and passed down; no widget looks anything up
(``QApplication.instance()``) and there is no service locator.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from console.models.cart_tiles import cart_summary
from console.models.plate_rows import PlateRow
from console.presenters.alerts import AlertsPresenter
from console.presenters.carts import CartsPresenter
from console.presenters.device import DevicePresenter
from console.presenters.devices import DevicesPresenter
from console.presenters.feed import FeedPresenter, SettingsLastIds
from console.presenters.status import StatusPresenter
from console.presenters.wall import WallPresenter
from console.services.credentials import Credentials, CredentialStore
from console.services.credentials import open_credentials as open_store
from console.services.device import Device
from console.services.errors import CredentialStoreError
from console.services.pool import EdgeClients
from console.services.status import DeviceState
from console.ui.alerts import AlertsView
from console.ui.carts import CartsView
from console.ui.device_page import DevicePage
from console.ui.feed import PlateFeedView
from console.ui.main_window import MainWindow
from console.ui.settings import QtConsoleSettings
from console.ui.sidebar import KeyDialog, Sidebar
from console.ui.theme import apply_theme, next_mode
from console.ui.wall import FirstPicture, WallView

log = logging.getLogger("console")

PAGES = ("wall", "plates", "device", "alerts", "carts")


@dataclass
class ConsoleOptions:
    """What the command line decides (console/cli.py)."""

    edges: Sequence[str] = ()
    interfaces: Sequence[str] | None = None
    discovery: bool = True
    page: str = "wall"
    layout: tuple[int, int] | None = None
    probe_interval_s: float = 5.0
    keyring: bool = True  # API keys in the OS keyring when there is one (else the 0600 file)
    started_mono: float = field(default_factory=time.monotonic)


def open_credentials(path: Path, *, use_keyring: bool = True) -> tuple[Credentials, str]:
    """The credential store (the OS keyring or the file at ``path``, see
    :func:`console.services.credentials.open_credentials`); a corrupt file is moved aside (and
    said so), never overwritten."""
    try:
        return open_store(path, use_keyring=use_keyring), ""
    except CredentialStoreError as err:
        problem = str(err)
        where = err.path
    aside = CredentialStore.move_aside(where)
    message = f"{problem}; it was moved to {aside} and API keys must be entered again"
    log.error("%s", message)
    return open_store(path, use_keyring=use_keyring), message


class ConsoleApp:
    """The running console. Build inside the qasync loop, then ``await start()``."""

    def __init__(
        self,
        app: QApplication,
        options: ConsoleOptions,
        *,
        qsettings: QSettings,
        config_dir: Path,
    ) -> None:
        self.app = app
        self.options = options
        self._open_first_device = options.page in ("device", "config")
        self.settings = QtConsoleSettings(qsettings)
        if options.layout is not None:
            self.settings.layout = options.layout
        self.credentials, credentials_problem = open_credentials(
            config_dir / "credentials.json", use_keyring=options.keyring
        )
        self.clients = EdgeClients(self.credentials)
        interfaces = options.interfaces
        if interfaces is None:
            interfaces = self.settings.interfaces
        self.devices = DevicesPresenter(
            self.settings,
            self.credentials,
            interfaces=interfaces,
            browse=options.discovery,
            manual_urls=[],
            probe_interval_s=options.probe_interval_s,
        )
        # One state per device (online, offline, key needed...), fed by the wall's picture polls
        # and the alerts' health checks, read by the sidebar, the count, the tiles and alerts.
        self.status = StatusPresenter()
        self.wall = WallPresenter(self.settings, self.clients.client_for, states=self.status.states)
        self.feed = FeedPresenter(self.clients.client_for, SettingsLastIds(qsettings))
        self.alerts = AlertsPresenter(self.clients.client_for, states=self.status.states)
        self.device = DevicePresenter(self.devices.device, self.clients.client_for)
        self.carts = CartsPresenter(self.clients.client_for)
        self.presenters = (
            self.devices, self.wall, self.feed, self.alerts, self.device, self.carts,
            self.status,
        )  # fmt: skip

        self.theme = self.settings.theme
        apply_theme(app, self.theme)
        self.first_picture = FirstPicture(options.started_mono)
        self.sidebar = Sidebar()
        self.key_dialog: KeyDialog | None = None
        self._asked: set[str] = set()  # devices a key was asked for unprompted (once each)
        self.window = MainWindow(self.sidebar)
        self.wall_view = WallView(self.wall, self.first_picture)
        self.feed_view = PlateFeedView(self.feed)
        self.device_page = DevicePage(self.device)
        self.alerts_view = AlertsView(self.alerts)
        self.carts_view = CartsView(self.carts)
        self.window.add_page("wall", "Live wall", self.wall_view)
        self.window.add_page("plates", "Plates", self.feed_view)
        self.window.add_page("device", "Device", self.device_page)
        self.window.add_page("alerts", "Alerts", self.alerts_view)
        self.window.add_page("carts", "Carts", self.carts_view, "Ctrl+5")
        self._connect()
        geometry = self.settings.window_geometry
        if geometry is not None:  # where and how big it was when it last closed
            self.window.restoreGeometry(geometry)
        if options.page == "config":
            self.device_page.tabs.setCurrentWidget(self.device_page.editor)
            # Opened on the editor (`--page config`): show the lists edited as tables first.
            self.device.configLoaded.connect(lambda *_: self.device_page.editor.show_first_table())
        page = "device" if options.page == "config" else options.page
        self.window.show_page(page if page in PAGES else "wall")
        if credentials_problem:
            self.window.show_status(credentials_problem, 0)

    def _connect(self) -> None:
        for presenter in self.presenters:
            presenter.error.connect(self.window.show_status)
        self.devices.deviceChanged.connect(self._device_changed)
        self.devices.deviceRemoved.connect(self._device_removed)
        self.status.stateChanged.connect(self._state_changed)
        self.sidebar.addEdgeRequested.connect(self._add_edge)
        self.sidebar.apiKeyEntered.connect(self._set_key)
        self.window.deviceActivated.connect(self._show_device)
        self.window.pageShown.connect(self._page_shown)
        self.wall_view.keyRequested.connect(self._key_for_device)
        self.wall_view.alertsRequested.connect(lambda: self.window.show_page("alerts"))
        self.window.closing.connect(self._save_geometry)
        self.alerts.alertsChanged.connect(self.wall_view.show_alerts)
        self.window.themeToggled.connect(self._toggle_theme)
        self.app.styleHints().colorSchemeChanged.connect(self._system_scheme_changed)
        self.feed.rowsArrived.connect(self._plates)
        self.carts.sectionChanged.connect(self._carts_changed)
        self.carts.sectionRemoved.connect(lambda key: self.wall.show_carts(key, None))
        self.alerts.activeCountChanged.connect(self._alert_count)

    def _state_changed(self, key: str, state: DeviceState) -> None:
        """One state, shown everywhere: the sidebar's dot, the count, the tile, the alerts."""
        self.sidebar.update_state(key, state)
        self.wall.state_changed(key)
        self.alerts.state_changed(key, state)
        self._summary()
        if state.name == "key_needed":
            self._ask_for_keys(key)

    def _key_for_device(self, key: str) -> None:
        device = self.devices.device(key)
        if device is not None:
            self.ask_key_for_site(device.site, key=key)

    def _summary(self) -> None:
        self.window.set_summary(self.status.summary(self.devices.devices))

    def _ask_for_keys(self, key: str) -> None:
        """A new edge (or one whose key was revoked) needs a key: ask once per site, for every
        bay of that site that needs one (one key for all of them)."""
        device = self.devices.device(key)
        if device is None or key in self._asked:
            return
        self._asked.add(key)
        self.ask_key_for_site(device.site, prompt=True)

    def ask_key_for_site(self, site: str, *, prompt: bool = False, key: str = "") -> None:
        """The "Enter key…" dialog for the bays of ``site`` that need a key (and ``key``)."""
        keys = [
            k for k, d in self.devices.devices.items()
            if d.site == site and (self.status.state(k).name == "key_needed" or k == key)
        ]  # fmt: skip
        if not keys:
            return
        if self.key_dialog is not None and self.key_dialog.isVisible():
            self.key_dialog.add_devices(self._named(keys))
            return
        dialog = KeyDialog(site, self._named(keys), prompt=prompt, parent=self.window)
        dialog.keyEntered.connect(self._set_keys)
        dialog.finished.connect(self._key_dialog_done)
        self.key_dialog = dialog
        dialog.open()

    def _named(self, keys: list[str]) -> dict[str, str]:
        devices = self.devices.devices
        return {k: (devices[k].name if k in devices else k) for k in keys}

    def _key_dialog_done(self) -> None:
        dialog, self.key_dialog = self.key_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def _set_keys(self, keys: list[str], api_key: str) -> None:
        for key in keys:
            self._set_key(key, api_key)

    def _device_changed(self, device: Device) -> None:
        self.sidebar.update_device(device)
        self.sidebar.update_state(device.key, self.status.state(device.key))
        self._summary()
        self.wall.update_device(device)
        self.feed.update_device(device)
        self.alerts.update_device(device)
        self.carts.update_device(device)
        if self._open_first_device and device.online:
            # Started on the device page (`--page device`): show the first edge that answers
            # rather than an empty page (once: later the user chooses).
            self._open_first_device = False
            if self.device.device is None:
                self._show_device(device.key)

    def _device_removed(self, key: str) -> None:
        self.sidebar.remove_device(key)
        self.wall.remove_device(key)
        self.feed.remove_device(key)
        self.alerts.remove_device(key)
        self.carts.remove_device(key)
        self.clients.forget(key)
        self.status.forget(key)
        self._summary()

    def _add_edge(self, url: str, api_key: str) -> None:
        url = self.devices.add_edge(url, api_key)
        self.window.show_status(f"Added {url}; connecting…")

    def _set_key(self, device_key: str, api_key: str) -> None:
        """A key typed for a device (e.g. found by zeroconf): stored once, used at once."""
        try:
            self.credentials.set(device_key, api_key)
        except (CredentialStoreError, ValueError) as err:
            self.window.show_status(f"The API key was not stored: {err}")
            return
        device = self.devices.device(device_key)
        if device is not None:
            self._device_changed(device)  # the pool builds a client with the new key
        self.window.show_status("API key stored")

    def _page_shown(self, page: str) -> None:
        """Ctrl+3 with no device chosen: the device of the wall's focused (or enlarged) tile;
        with none, the page says how to choose one."""
        if page != "device" or self.device.device is not None:
            return
        key = self.wall_view.chosen_device()
        if key is not None:
            self._show_device(key)

    def _show_device(self, key: str) -> None:
        self.window.show_page("device")
        self.device.spawn(self.device.show_device(key), name=f"show device {key}")

    def _plates(self, rows: list[PlateRow]) -> None:
        for row in rows:  # oldest first: the newest read of each device wins
            self.wall.show_plate(row.device_key, row.plate, row.is_member)

    def _carts_changed(self, key: str) -> None:
        """One source per device: the wall's cart summary comes from the carts page's polls
        and cart events."""
        self.wall.show_carts(key, cart_summary(self.carts.section(key)))

    def _alert_count(self, count: int) -> None:
        self.window.set_page_title("alerts", f"Alerts ({count})" if count else "Alerts")

    def _system_scheme_changed(self) -> None:
        if self.theme == "system":  # "system" follows the desktop as it changes
            apply_theme(self.app, "system")

    def _toggle_theme(self) -> None:
        self.theme = next_mode(self.theme)
        self.settings.theme = self.theme
        effective = apply_theme(self.app, self.theme)
        self.window.show_status(f"Theme: {self.theme} ({effective})", 3000)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        for url in self.options.edges:
            self.devices.add_edge(url, remember=False)
        await self.devices.start()
        self.wall.start()

    def _save_geometry(self) -> None:
        self.settings.window_geometry = self.window.saveGeometry()

    async def aclose(self) -> None:
        if self.window.isVisible():  # closed without the window closing first (tests, SIGTERM)
            self._save_geometry()
        for presenter in self.presenters:
            await presenter.aclose()
        await self.clients.aclose()
        self.settings.sync()
