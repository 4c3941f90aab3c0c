"""The device page: live picture, health of each component, recent events, charts, config.

Everything arrives through :class:`console.presenters.device.DevicePresenter` signals; the page
itself does no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.models.event_text import describe_event
from console.presenters.device import DevicePresenter, summary
from console.services.discovery import Device
from console.services.edge_client import EdgeEvent, Picture
from console.ui.charts import ChartPanel
from console.ui.config_editor import ConfigEditor
from fleet_common.wire.edge import ConfigApplied, Health, SnapshotInfo

MAX_EVENTS = 200
PICTURE_SIZE = (320, 180)
_STATUS_COLOURS = {
    "ok": "#2e7d32", "online": "#2e7d32", "degraded": "#ef6c00", "failing": "#c62828",
    "offline": "#c62828",
}  # fmt: skip


def _dot(status: str) -> str:
    colour = _STATUS_COLOURS.get(status, "#757575")
    return f'<span style="color:{colour}">●</span> {status}'


class DevicePage(QWidget):
    """One device's page; ``presenter.show_device(key)`` chooses which."""

    def __init__(self, presenter: DevicePresenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.presenter = presenter
        self.title = QLabel("No device selected", self)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        self.subtitle = QLabel(self)
        self.subtitle.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.picture = QLabel("waiting for a picture…", self)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setFixedSize(*PICTURE_SIZE)
        self.picture.setStyleSheet("background: #202020; color: #bbbbbb;")
        self.picture_caption = QLabel(self)
        self.last_image: QImage | None = None

        self.health = QTreeWidget(self)
        self.health.setHeaderLabels(["Component", "State", "Detail"])
        self.health.setRootIsDecorated(False)
        self.stream = QLabel(self)

        self.events = QListWidget(self)
        self.events.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.events.setWordWrap(True)  # whole sentences, not "previous=un…"
        self.events.setTextElideMode(Qt.TextElideMode.ElideNone)
        # Shown until a device is chosen (Ctrl+3 with none selected): not empty charts.
        self.hint = QLabel(
            "No device chosen. Click an edge in the sidebar, or focus its tile on the live wall"
            " (Tab or a click) and press Ctrl+3.",
            self,
        )
        self.hint.setObjectName("deviceHint")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("font-size: 14px; padding: 12px;")

        self.charts = ChartPanel(parent=self)
        self.editor = ConfigEditor(self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.charts, "Charts")
        self.tabs.addTab(self.editor, "Configuration")

        picture_box = QGroupBox("Live picture", self)
        pl = QVBoxLayout(picture_box)
        pl.addWidget(self.picture)
        pl.addWidget(self.picture_caption)
        health_box = QGroupBox("Health", self)
        hl = QVBoxLayout(health_box)
        hl.addWidget(self.stream)
        hl.addWidget(self.health)
        events_box = QGroupBox("Recent events", self)
        el = QVBoxLayout(events_box)
        el.addWidget(self.events)

        grid = QGridLayout()
        grid.addWidget(picture_box, 0, 0)
        grid.addWidget(health_box, 0, 1)
        grid.addWidget(events_box, 0, 2)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.hint)
        layout.addLayout(grid)
        layout.addWidget(self.tabs, 1)

        p = presenter
        p.deviceShown.connect(self._device_shown)
        p.pictureReady.connect(self._picture)
        p.sampleAdded.connect(self.charts.add_sample)
        p.healthChanged.connect(self._health)
        p.infoChanged.connect(self._info)
        p.unreachable.connect(self._unreachable)
        p.eventsReset.connect(self._events_reset)
        p.eventArrived.connect(self._event)
        p.configLoaded.connect(self.editor.set_config)
        p.configUnavailable.connect(self.editor.set_unavailable)
        p.configApplied.connect(self._applied)
        p.configRejected.connect(self.editor.show_rejection)
        p.historyLoaded.connect(self.editor.set_history)
        p.versionLoaded.connect(self.editor.confirm_rollback)
        p.error.connect(lambda message: self.editor.show_message(message, error=True))
        self.editor.applyRequested.connect(p.apply)
        self.editor.previewRequested.connect(p.preview_version)
        self.editor.rollbackRequested.connect(p.rollback)

    # ------------------------------------------------------------------ slots
    def _device_shown(self, device: Device) -> None:
        self.title.setText(device.name)
        site = f"{device.site} · " if device.site else ""
        self.subtitle.setText(f"{site}{device.url} · {device.source}")
        self.picture.setText("waiting for a picture…")
        self.picture.setPixmap(QPixmap())
        self.last_image = None
        self.charts.clear()
        self.events.clear()
        self.health.clear()
        self.hint.setVisible(False)
        self.editor.reset()  # nothing of the previous device's page carries over

    def _picture(self, image: QImage, picture: Picture) -> None:
        self.last_image = image
        scaled = image.scaled(
            self.picture.size(),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        self.picture.setPixmap(QPixmap.fromImage(scaled))
        self.picture_caption.setText(
            f"#{picture.seq} · {picture.stream_status} · {picture.age_ms:.0f} ms old when sent"
        )

    def _health(self, health: Health | None) -> None:
        self.health.clear()
        if health is None:
            self.stream.setText(_dot("offline") + " — the device does not answer")
            return
        self.stream.setText(
            f"Overall {_dot(health.status)} · stream {_dot(health.stream_status)}"
            f" · up {health.uptime_s / 3600:.1f} h · v{health.version}"
        )
        for name, component in sorted(health.components.items()):
            item = QTreeWidgetItem([name, component.status, component.detail])
            item.setForeground(1, QColor(_STATUS_COLOURS.get(component.status, "#757575")))
            self.health.addTopLevelItem(item)

    def _info(self, info: SnapshotInfo) -> None:
        source = info.source
        self.picture.setToolTip(
            f"{source.scheme} · {source.codec or 'no codec'} · in {source.fps_in:g} fps,"
            f" decoded {source.fps_decoded:g} fps · {source.sessions} session(s)"
        )

    def _unreachable(self, message: str) -> None:
        self.picture_caption.setText(f"⚠ {message}")

    def _events_reset(self, events: list[EdgeEvent]) -> None:
        self.events.clear()
        for event in events:  # newest first
            self.events.addItem(_event_item(event))

    def _event(self, event: EdgeEvent) -> None:
        self.events.insertItem(0, _event_item(event))
        while self.events.count() > MAX_EVENTS:
            self.events.takeItem(self.events.count() - 1)

    def _applied(self, applied: ConfigApplied) -> None:
        self.editor.show_applied(applied)

    # ------------------------------------------------------------------ reading (tests, a11y)
    def event_texts(self) -> list[str]:
        return [self.events.item(i).text() for i in range(self.events.count())]


def _event_item(event: EdgeEvent) -> QListWidgetItem:
    when = _local(event.ts)
    item = QListWidgetItem(f"{when}  {describe_event(event.kind, event.payload)}")
    item.setToolTip(f"{event.kind}: {summary(event.payload)}")  # the raw fields, for support
    severity: Any = event.payload.get("severity") if event.kind == "alert" else None
    if severity == "critical" or event.payload.get("status") == "offline":
        item.setForeground(QColor("#c62828"))
    elif severity == "warning" or event.payload.get("status") == "degraded":
        item.setForeground(QColor("#ef6c00"))
    return item


def _local(ts: datetime) -> str:
    return ts.astimezone().strftime("%H:%M:%S")
