"""The sidebar: sites → devices, online or offline; "Add edge…" asks for a URL and an API key."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.services.device import Device
from console.services.status import DeviceState

KEY_ROLE = Qt.ItemDataRole.UserRole
ONLINE_COLOUR = QColor(46, 160, 67)
OFFLINE_COLOUR = QColor(150, 150, 150)
STATE_COLOURS = {
    "connecting": QColor(190, 190, 190),
    "online": ONLINE_COLOUR,
    "degraded": QColor(219, 150, 20),
    "offline": QColor(210, 50, 50),
    "key_needed": QColor(150, 90, 210),
}


def dot_icon(colour: QColor, size: int = 12) -> QIcon:
    """A filled circle, drawn at 1x and 2x so it stays sharp on high-DPI screens."""
    icon = QIcon()
    for scale in (1, 2):
        pixmap = QPixmap(size * scale, size * scale)
        pixmap.setDevicePixelRatio(scale)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(colour)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(1, 1, size - 2, size - 2)
        painter.end()
        icon.addPixmap(pixmap)
    return icon


class AddEdgeDialog(QDialog):
    """URL and API key of an edge that zeroconf cannot see; the key is asked for once."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add edge")
        self.url_edit = QLineEdit(self)
        self.url_edit.setPlaceholderText("http://192.168.1.20:8080")
        self.key_edit = QLineEdit(self)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("cwe_… (viewer key or better)")
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Edge URL", self.url_edit)
        form.addRow("API key", self.key_edit)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self._check)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

    @property
    def url(self) -> str:
        return self.url_edit.text().strip()

    @property
    def api_key(self) -> str:
        return self.key_edit.text().strip()

    def _check(self) -> None:
        url = self.url
        if not url.startswith(("http://", "https://")) or len(url) < 10:
            self.message.setText("The URL starts with http:// or https://, e.g. http://bay3:8080")
            return
        self.accept()


class Sidebar(QWidget):
    """Sites and their devices. Emits ``deviceActivated(key)`` when one is chosen."""

    deviceActivated = Signal(str)
    addEdgeRequested = Signal(str, str)  # url, api key ("" when none was given)
    apiKeyEntered = Signal(str, str)  # device key, api key (a device zeroconf found)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderHidden(True)
        self.tree.setIconSize(QSize(12, 12))
        self.tree.setObjectName("devices")
        self.tree.itemActivated.connect(self._activated)
        self.tree.itemClicked.connect(self._activated)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.add_button = QPushButton("Add edge…", self)
        self.add_button.clicked.connect(self.ask_for_edge)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        layout.addWidget(self.add_button)
        self._sites: dict[str, QTreeWidgetItem] = {}
        self._items: dict[str, QTreeWidgetItem] = {}
        self._devices: dict[str, Device] = {}
        self._states: dict[str, DeviceState] = {}
        self._icons = {name: dot_icon(colour) for name, colour in STATE_COLOURS.items()}

    # ------------------------------------------------------------------ devices
    @property
    def devices(self) -> dict[str, Device]:
        return dict(self._devices)

    def item_for(self, key: str) -> QTreeWidgetItem | None:
        return self._items.get(key)

    def selected_key(self) -> str | None:
        item = self.tree.currentItem()
        key = item.data(0, KEY_ROLE) if item is not None else None
        return key if isinstance(key, str) else None

    def state_of(self, key: str) -> str:
        """The state the item of ``key`` shows ("online", "offline", "key_needed"...)."""
        item = self._items.get(key)
        value = item.data(0, Qt.ItemDataRole.AccessibleDescriptionRole) if item else None
        return value if isinstance(value, str) else ""

    def update_device(self, device: Device) -> None:
        selected = self.selected_key()
        old = self._devices.get(device.key)
        self._devices[device.key] = device
        if old is not None and old.site != device.site:
            self._take(device.key)
        item = self._items.get(device.key)
        if item is None:
            item = QTreeWidgetItem()
            item.setData(0, KEY_ROLE, device.key)
            self._site(device.site).addChild(item)
            self._items[device.key] = item
        item.setText(0, device.name or device.url)
        self._paint(device.key)
        parent = item.parent()
        if parent is not None:
            parent.sortChildren(0, Qt.SortOrder.AscendingOrder)
        self._reselect(selected)

    def update_state(self, key: str, state: DeviceState) -> None:
        """The device's one state (console.services.status): the dot and the tooltip."""
        self._states[key] = state
        self._paint(key)

    def _paint(self, key: str) -> None:
        item, device = self._items.get(key), self._devices.get(key)
        if item is None or device is None:
            return
        state = self._states.get(key, DeviceState())
        item.setIcon(0, self._icons[state.name])
        tip = f"{device.name} — {device.url} ({state.label.lower()}, {device.source})"
        if state.reason:
            tip += f"\n{state.reason}"
        item.setToolTip(0, tip)
        item.setData(0, Qt.ItemDataRole.AccessibleDescriptionRole, state.name)

    def _reselect(self, key: str | None) -> None:
        """Keep the highlight on the device (not the row) when the tree was regrouped."""
        if key is None:
            return
        item = self._items.get(key)
        if item is not None and self.tree.currentItem() is not item:
            self.tree.setCurrentItem(item)

    def remove_device(self, key: str) -> None:
        selected = self.selected_key()
        self._devices.pop(key, None)
        self._states.pop(key, None)
        self._take(key)
        if selected != key:
            self._reselect(selected)

    def _take(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is None:
            return
        site = item.parent()
        if site is None:
            return
        site.removeChild(item)
        if site.childCount() == 0:
            name = site.text(0)
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(site))
            self._sites.pop(name, None)

    def _site(self, name: str) -> QTreeWidgetItem:
        label = name or "(no site)"
        item = self._sites.get(label)
        if item is None:
            item = QTreeWidgetItem([label])
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            self.tree.addTopLevelItem(item)
            self.tree.sortItems(0, Qt.SortOrder.AscendingOrder)
            item.setExpanded(True)
            self._sites[label] = item
        return item

    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        key = item.data(0, KEY_ROLE)
        if isinstance(key, str):
            self.deviceActivated.emit(key)

    def _menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        key = item.data(0, KEY_ROLE) if item is not None else None
        if not isinstance(key, str):
            return
        menu = QMenu(self)
        menu.addAction("Open device page", lambda: self.deviceActivated.emit(key))
        menu.addAction("Set API key…", lambda: self.ask_for_key(key))
        menu.popup(self.tree.viewport().mapToGlobal(pos))

    def ask_for_key(self, key: str) -> None:
        """Ask once for the API key of a device found on the LAN (stored by the app)."""
        device = self._devices.get(key)
        dialog = QInputDialog(self)
        dialog.setWindowTitle("API key")
        dialog.setLabelText(f"API key for {device.name if device else key}:")
        dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
        dialog.textValueSelected.connect(
            lambda text: self.apiKeyEntered.emit(key, text.strip()) if text.strip() else None
        )
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    # ------------------------------------------------------------------ adding by URL
    def make_dialog(self) -> AddEdgeDialog:
        return AddEdgeDialog(self)

    def ask_for_edge(self) -> None:
        dialog = self.make_dialog()
        dialog.accepted.connect(lambda: self.addEdgeRequested.emit(dialog.url, dialog.api_key))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()  # window-modal, does not block the event loop


class KeyDialog(QDialog):
    """One API key for every bay of a site that needs one: "Enter key…" on a tile, or asked
    by itself when edges that refuse (or lack) a key are found. Emits ``keyEntered(keys, key)``.
    """

    keyEntered = Signal(list, str)  # device keys, the API key

    def __init__(
        self,
        site: str,
        devices: dict[str, str],
        *,
        prompt: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.site = site
        self.devices: dict[str, str] = {}
        self.setWindowTitle("API key needed" if prompt else "Enter API key")
        self.intro = QLabel(self)
        self.intro.setWordWrap(True)
        self.key_edit = QLineEdit(self)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("cwe_… (viewer key or better)")
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("API key", self.key_edit)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self._check)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.add_devices(devices)

    def add_devices(self, devices: dict[str, str]) -> None:
        self.devices.update(devices)
        names = ", ".join(sorted(self.devices.values()))
        where = f"site {self.site}" if self.site else "these edges"
        count = len(self.devices)
        self.intro.setText(
            f"{count} edge{'s' if count != 1 else ''} of {where} need{'s' if count == 1 else ''}"
            f" an API key: {names}.\nThe key is stored for each of them."
        )

    @property
    def api_key(self) -> str:
        return self.key_edit.text().strip()

    def _check(self) -> None:
        if not self.api_key:
            self.message.setText("Enter the key the edge's administrator gave you.")
            return
        self.keyEntered.emit(list(self.devices), self.api_key)
        self.accept()
