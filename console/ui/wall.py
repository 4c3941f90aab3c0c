"""The live wall's widgets: a grid of tiles painted from :class:`WallPresenter` state.

A tile paints the newest picture scaled to fit (a pixmap made on the GUI thread from the QImage
decoded in a worker, with the screen's device pixel ratio, so it is sharp on high-DPI screens),
the device name, the frame-age badge, the stream status, the last plate and, for a device with
lock boards, its cart summary (from the carts page's presenter). When the presenter says the
picture is not live, it is drawn in grey under "OFFLINE since hh:mm" or "STALE".
Double-click enlarges a tile; Esc returns to the grid.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from PySide6.QtCore import QPoint, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QFocusEvent,
    QFont,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
    QShortcut,
)
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from console.models.cart_tiles import SUMMARY_STATES, CartSummary
from console.presenters.wall import WallPresenter
from console.services.settings import LAYOUTS, layout_name, parse_layout
from console.ui.carts import state_colour

log = logging.getLogger("console.wall")

BADGE_COLOURS = {
    "green": QColor(46, 160, 67),
    "amber": QColor(219, 150, 20),
    "red": QColor(210, 50, 50),
}
MEMBER_COLOUR = QColor(240, 200, 40)
TICK_MS = 250  # badges and overlays re-evaluated this often (age grows between pictures)


class FirstPicture:
    """Logs "first picture on screen after N ms" once (start-up benchmarks and tests read it)."""

    def __init__(self, started_mono: float) -> None:
        self.started_mono = started_mono
        self.done = False

    def shown(self) -> None:
        if not self.done:
            self.done = True
            ms = (time.monotonic() - self.started_mono) * 1000.0
            log.info("first picture on screen after %.0f ms", ms)


def plate_age_text(at: datetime | None, now: datetime | None = None) -> str:
    """ "2 min ago" for a plate read at ``at``: the picture may show another car by now."""
    if at is None:
        return ""
    seconds = ((now or datetime.now().astimezone()) - at).total_seconds()
    if seconds < 60:
        return "just now" if seconds < 10 else f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"at {at:%H:%M}"


def scaled_font(base: QFont, width: float, height: float) -> QFont:
    """The tile's text grows with the tile (11 px text on a 1,900 px 4K tile is unreadable):
    about 1/45 of the width, never below the desktop's font."""
    font = QFont(base)
    size = base.pointSizeF() if base.pointSizeF() > 0 else 9.0
    font.setPointSizeF(max(size, min(width / 45.0, height / 18.0, 40.0)))
    return font


class TileWidget(QWidget):
    doubleClicked = Signal(int)
    keyRequested = Signal(str)  # device key: "Enter key…"
    restoreRequested = Signal()  # Esc: back to the grid
    focused = Signal(int)  # index: the tile took the keyboard focus

    def __init__(
        self,
        presenter: WallPresenter,
        index: int,
        first_picture: FirstPicture | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.presenter = presenter
        self.index = index
        self.first_picture = first_picture
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(QSize(80, 60))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        # Tiles take the keyboard focus (Tab, a click): Enter enlarges, K asks for a key.
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.menu: QMenu | None = None  # the last context menu (tests read it)
        self.text_px = 0  # the pixel size of the last paint's text (tests read it)
        self._pixmap: QPixmap | None = None
        self._grey: QPixmap | None = None
        self._image: QImage | None = None
        self.live_shown = False  # what the last paint presented (tests read it)
        self.overlay_shown = ""
        self.carts_shown = ""  # the cart summary the last paint drew ("" none)
        self.carts_current: bool | None = None  # ... and whether in colour (None: none drawn)
        self.status_shown = ""  # the footer's status text
        self.plate_shown = ""  # the footer's plate text

    def sizeHint(self) -> QSize:
        return QSize(320, 180)

    # ------------------------------------------------------------------ pictures
    def _pixmaps(self) -> tuple[QPixmap | None, QPixmap | None]:
        image = self.presenter.tile(self.index).image
        if image is not self._image:
            self._image = image
            self._pixmap = self._grey = None
            if image is not None:
                self._pixmap = QPixmap.fromImage(image)
        if image is not None and self._grey is None:
            grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
            self._grey = QPixmap.fromImage(grey)
        return self._pixmap, self._grey

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.presenter.set_tile_width(self.index, event.size().width() * self.devicePixelRatioF())

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.doubleClicked.emit(self.index)
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.doubleClicked.emit(self.index)
        elif key == Qt.Key.Key_Escape:
            self.restoreRequested.emit()
        elif key == Qt.Key.Key_K:
            self._ask_key()
        elif key == Qt.Key.Key_Menu:
            self._menu(self.rect().center())
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self.focused.emit(self.index)
        self.update()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.update()

    def _ask_key(self) -> None:
        key = self.presenter.tile(self.index).device_key
        if key is not None:
            self.keyRequested.emit(key)

    def _menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        tile = self.presenter.tile(self.index)
        state = self.presenter.state(self.index)
        if tile.device_key is not None:
            enter = menu.addAction("Enter key…")
            enter.triggered.connect(self._ask_key)
            if state is not None and state.name == "key_needed":
                menu.setDefaultAction(enter)
            menu.addSeparator()
        for key, device in sorted(self.presenter.devices.items(), key=lambda kv: kv[1].name):
            action = QAction(device.name or device.url, menu)
            action.setCheckable(True)
            action.setChecked(key == tile.device_key)
            action.triggered.connect(lambda _=False, k=key: self.presenter.assign(self.index, k))
            menu.addAction(action)
        menu.addSeparator()
        rates = menu.addMenu("Refresh rate")
        current = self.presenter.tile_fps(self.index)
        for fps in (0.5, 1.0, 2.0, 5.0, 10.0):
            rate = QAction(f"{fps:g} per second", rates)
            rate.setCheckable(True)
            rate.setChecked(abs(fps - current) < 1e-6)
            rate.triggered.connect(
                lambda _=False, f=fps: self.presenter.set_tile_fps(self.index, f)
            )
            rates.addAction(rate)
        clear = menu.addAction("Empty tile")
        clear.triggered.connect(lambda: self.presenter.assign(self.index, None))
        self.menu = menu
        menu.popup(self.mapToGlobal(pos))  # at the pointer (or the tile's centre from keys)

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event: QPaintEvent) -> None:
        tile = self.presenter.tile(self.index)
        look = self.presenter.look(self.index)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect())
        painter.fillRect(rect, QColor(12, 12, 14))
        pixmap, grey = self._pixmaps()
        shown = pixmap if look.live else grey
        if shown is not None:
            size = shown.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRectF(
                (self.width() - size.width()) / 2, (self.height() - size.height()) / 2,
                size.width(), size.height(),
            )  # fmt: skip
            painter.drawPixmap(target, shown, QRectF(shown.rect()))
            if look.live and self.first_picture is not None:
                self.first_picture.shown()
        if not look.live:
            painter.fillRect(rect, QColor(0, 0, 0, 110 if shown is not None else 0))
        self.live_shown = look.live and shown is not None
        self.overlay_shown = look.overlay
        state = self.presenter.state(self.index)
        font = scaled_font(self.font(), self.width(), self.height())
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        self.text_px = metrics.height()
        pad = max(6.0, metrics.height() / 3)
        line = metrics.height() + 4
        # Name, top left, on a dark band so it reads on any picture.
        painter.fillRect(QRectF(0, 0, self.width(), line + pad), QColor(0, 0, 0, 140))
        painter.setPen(QColor(240, 240, 240))
        painter.drawText(
            QRectF(pad, pad / 2, self.width() - 2 * pad, line),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            tile.device_name or "—",
        )
        # Frame-age badge, top right.
        if look.badge != "none":
            text = look.age_text or "—"
            width = metrics.horizontalAdvance(text) + 2 * pad
            badge = QRectF(self.width() - width - pad, pad / 2, width, line - 2)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(BADGE_COLOURS[look.badge])
            painter.drawRoundedRect(badge, 4, 4)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        # Stream status and last plate, bottom.
        bottom = QRectF(0, self.height() - line - pad, self.width(), line + pad)
        painter.fillRect(bottom, QColor(0, 0, 0, 140))
        painter.setPen(QColor(220, 220, 220))
        # The footer says the one state when it is not plain online (never "online" under an
        # OFFLINE overlay), else the camera stream's status.
        if state is not None and state.name != "online":
            status = state.label.lower()
        else:
            status = tile.stream_status or ("unreachable" if not tile.reachable else "")
        self.status_shown = status
        painter.drawText(
            bottom.adjusted(pad, 0, -pad, 0),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            status,
        )
        self.plate_shown = ""
        if tile.last_plate:
            painter.setPen(MEMBER_COLOUR if tile.plate_member else QColor(240, 240, 240))
            label = tile.last_plate + ("  ★ member" if tile.plate_member else "")
            age = plate_age_text(tile.plate_at)
            if age:
                label += f"  ({age})"
            self.plate_shown = label
            painter.drawText(
                bottom.adjusted(pad, 0, -pad, 0),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
        summary = self.presenter.carts(self.index)
        if summary is not None and state is not None and not state.working:
            summary = replace(summary, current=False)  # last known numbers, greyed
        if summary is not None and self.height() >= 4 * (line + pad):
            self._paint_carts(painter, summary, bottom.top(), line, pad)
        else:
            self.carts_shown = ""
            self.carts_current = None
        # The overlay that says the picture is not live: the first line big, the reason below
        # it, wrapped inside the tile between the top and bottom bands.
        if look.overlay:
            self._paint_overlay(painter, font, look.overlay, line + pad)
        if self.hasFocus():
            painter.setPen(QPen(QColor(80, 160, 255), 3))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(self.rect()).adjusted(1.5, 1.5, -1.5, -1.5))
        painter.end()

    def _paint_overlay(self, painter: QPainter, font: QFont, text: str, band: float) -> None:
        title, _, rest = text.partition("\n")
        area = QRectF(self.rect()).adjusted(band / 2, band + 4, -band / 2, -(2 * band + 4))
        big = QFont(font)
        big.setPointSizeF(max(font.pointSizeF() * 1.4, min(40.0, self.height() / 14)))
        small = QFont(font)
        small.setBold(False)
        flags = int(Qt.AlignmentFlag.AlignHCenter) | int(Qt.TextFlag.TextWordWrap)
        painter.setFont(big)
        head = painter.boundingRect(area, flags, title)
        painter.setFont(small)
        body = painter.boundingRect(area, flags, rest) if rest else QRectF()
        top = area.top() + max(0.0, (area.height() - head.height() - body.height()) / 2)
        painter.setPen(QColor(255, 255, 255))
        painter.setFont(big)
        painter.drawText(QRectF(area.left(), top, area.width(), head.height()), flags, title)
        if rest:
            painter.setFont(small)
            painter.setPen(QColor(235, 235, 235))
            body_rect = QRectF(area.left(), top + head.height(), area.width(),
                               max(0.0, area.bottom() - top - head.height()))  # fmt: skip
            painter.drawText(body_rect, flags, rest)

    def _paint_carts(
        self, painter: QPainter, summary: CartSummary, bottom: float, line: float, pad: float
    ) -> None:
        """ "Carts ● 3 free ● 2 out ● 1 fault" on a band just above the bottom one, each dot in
        the state colour of the carts page; greyed while the numbers are not current."""
        metrics = painter.fontMetrics()
        dot = metrics.height() * 0.6
        parts = summary.parts()
        widths = [metrics.horizontalAdvance(text) for _kind, text in parts]
        label = "Carts"
        total = metrics.horizontalAdvance(label) + sum(dot + 4 + w + pad for w in widths) + 2 * pad
        band = QRectF(0, bottom - line - 2, min(total, self.width()), line)
        painter.fillRect(band, QColor(0, 0, 0, 140))
        text_colour = QColor(235, 235, 235) if summary.current else QColor(150, 150, 150)
        painter.setPen(text_colour)
        x = pad
        left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(QRectF(x, band.top(), band.width(), line), left, label)
        x += metrics.horizontalAdvance(label) + pad
        for (kind, text), width in zip(parts, widths, strict=True):
            colour = state_colour(SUMMARY_STATES[kind][0])
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour if summary.current else QColor(110, 110, 110))
            painter.drawEllipse(QRectF(x, band.center().y() - dot / 2, dot, dot))
            x += dot + 4
            painter.setPen(text_colour)
            painter.drawText(QRectF(x, band.top(), width + 1, line), left, text)
            x += width + pad
        self.carts_shown = summary.text
        self.carts_current = summary.current


class AlertBanner(QPushButton):
    """The wall's alert strip: the most severe active alert and how many more; a click opens
    the alerts page. Hidden while nothing is wrong."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("wallAlerts")
        self.setFlat(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setVisible(False)

    def show_rows(self, rows: list[Any]) -> None:
        active = [r for r in rows if not r.acknowledged]
        if not active:
            self.setText("")
            self.setVisible(False)
            return
        first = active[0].alert
        more = f"   (+{len(active) - 1} more)" if len(active) > 1 else ""
        self.setText(f"⚠ {first.message}{more}")
        colour = "#d23232" if first.severity == "critical" else "#db9614"
        self.setStyleSheet(
            f"QPushButton#wallAlerts {{ background: {colour}; color: white; font-weight: bold;"
            " text-align: left; padding: 4px 8px; border-radius: 3px; }"
        )
        self.setVisible(True)


class WallView(QWidget):
    """The wall page: a toolbar (layout, group), the alert strip and the grid of tiles."""

    keyRequested = Signal(str)  # device key
    alertsRequested = Signal()

    def __init__(
        self,
        presenter: WallPresenter,
        first_picture: FirstPicture | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.presenter = presenter
        self.first_picture = first_picture
        self.enlarged: int | None = None
        self.last_focused: int | None = None
        self.tiles: list[TileWidget] = []
        self._all_live_logged = False

        self.layout_box = QComboBox(self)
        self.layout_box.addItems([*LAYOUTS, "custom…"])
        self.layout_box.textActivated.connect(self._layout_chosen)
        self.group_box = QComboBox(self)
        self.group_box.textActivated.connect(self._group_chosen)
        self.save_group_button = QPushButton("Save group…", self)
        self.save_group_button.clicked.connect(self._save_group)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Layout", self))
        bar.addWidget(self.layout_box)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Group", self))
        bar.addWidget(self.group_box)
        bar.addWidget(self.save_group_button)
        bar.addStretch(1)
        self.alert_banner = AlertBanner(self)
        self.alert_banner.clicked.connect(self.alertsRequested)
        self.grid = QGridLayout()
        self.grid.setSpacing(4)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addLayout(bar)
        outer.addWidget(self.alert_banner)
        outer.addLayout(self.grid, 1)

        self.escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.escape.activated.connect(self.restore)
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

        presenter.layoutChanged.connect(self._rebuild)
        presenter.tileChanged.connect(self._tile_changed)
        presenter.groupsChanged.connect(self._groups)
        self._rebuild(presenter.rows, presenter.cols)
        self._groups(presenter.groups())

    # ------------------------------------------------------------------ grid
    def _rebuild(self, rows: int, cols: int) -> None:
        self.restore()
        for tile in self.tiles:
            self.grid.removeWidget(tile)
            tile.deleteLater()
        self.tiles = []
        self.last_focused = None
        for index in range(rows * cols):
            tile = TileWidget(self.presenter, index, self.first_picture, self)
            tile.doubleClicked.connect(self.toggle_enlarged)
            tile.keyRequested.connect(self.keyRequested)
            tile.restoreRequested.connect(self.restore)
            tile.focused.connect(self._focused)
            self.grid.addWidget(tile, index // cols, index % cols)
            self.tiles.append(tile)
        for r in range(8):
            self.grid.setRowStretch(r, 1 if r < rows else 0)
        for c in range(8):
            self.grid.setColumnStretch(c, 1 if c < cols else 0)
        name = layout_name(rows, cols)
        index = self.layout_box.findText(name)
        if index < 0:
            self.layout_box.insertItem(self.layout_box.count() - 1, name)
            index = self.layout_box.findText(name)
        self.layout_box.setCurrentIndex(index)

    def chosen_device(self) -> str | None:
        """The device of the enlarged tile, else of the tile that last had the focus."""
        index = self.enlarged if self.enlarged is not None else self.last_focused
        if index is None or index >= len(self.tiles):
            return None
        return self.presenter.tile(index).device_key

    def show_alerts(self, rows: list[Any]) -> None:
        """The active alerts (AlertsPresenter.alertsChanged): shown on the wall too."""
        self.alert_banner.show_rows(rows)

    def _focused(self, index: int) -> None:
        self.last_focused = index

    def _tile_changed(self, index: int) -> None:
        if index < len(self.tiles):
            self.tiles[index].update()

    def _tick(self) -> None:
        for tile in self.tiles:
            if tile.isVisible():
                tile.update()
        if not self._all_live_logged and self.tiles and all(t.live_shown for t in self.tiles):
            self._all_live_logged = True  # once: screenshot tests and benchmarks wait for it
            log.info("all %d tiles show live pictures", len(self.tiles))

    def toggle_enlarged(self, index: int) -> None:
        if self.enlarged is None:
            self.enlarge(index)
        else:
            self.restore()

    def enlarge(self, index: int) -> None:
        """Show tile ``index`` alone over the whole grid; the others stop polling."""
        self.enlarged = index
        rows, cols = self.presenter.rows, self.presenter.cols
        for tile in self.tiles:
            tile.setVisible(tile.index == index)
        self.grid.addWidget(self.tiles[index], 0, 0, rows, cols)
        self.presenter.set_active([index])
        self.tiles[index].setFocus()

    def restore(self) -> None:
        if self.enlarged is None:
            return
        tile = self.tiles[self.enlarged]
        self.enlarged = None
        cols = self.presenter.cols
        self.grid.addWidget(tile, tile.index // cols, tile.index % cols)
        for each in self.tiles:
            each.setVisible(True)
        self.presenter.set_active(None)

    # ------------------------------------------------------------------ toolbar
    def _layout_chosen(self, text: str) -> None:
        if text == "custom…":
            text, ok = QInputDialog.getText(self, "Custom layout", "Rows x columns (e.g. 2x3):")
            if not ok:
                self._rebuild(self.presenter.rows, self.presenter.cols)
                return
        try:
            rows, cols = parse_layout(text.strip())
        except ValueError as err:
            self.presenter.error.emit(str(err))
            return
        self.presenter.set_layout(rows, cols)

    def _groups(self, names: list[str]) -> None:
        self.group_box.clear()
        self.group_box.addItems(names)
        self.group_box.setCurrentText(self.presenter.group)

    def _group_chosen(self, name: str) -> None:
        if name != self.presenter.group:
            self.presenter.load_group(name)

    def _save_group(self) -> None:
        name, ok = QInputDialog.getText(
            self, "Save group", "Group name:", text=self.presenter.group
        )
        if ok and name.strip():
            self.presenter.save_group(name.strip())
