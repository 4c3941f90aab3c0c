"""The carts page: per device a grid of cart tiles with Unlock and Lock.

A tile shows the cart's number, its board and lock, the state as a colour and an icon (drawn
with QPainter, so it follows the theme and scales on high-DPI screens), the sensors (cart
present, bolt) and since when. Unlock and Lock are enabled only when they make sense
(:func:`console.models.cart_tiles.can_unlock` / :func:`~console.models.cart_tiles.can_lock`); both
ask for confirmation first (``CartsView.confirm``, replaceable in tests), then show "Unlocking…"
with a busy bar, and then the confirmed result or the error on the tile. Everything comes from
:class:`console.presenters.carts.CartsPresenter`; the page does no I/O.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from console.models.cart_tiles import (
    STATE_LABELS,
    CartSection,
    CartTile,
    board_down,
    can_lock,
    can_unlock,
    running_text,
    sensors_text,
    since_text,
)
from console.presenters.carts import CartsPresenter
from console.ui.config_editor import Confirm, ask

STATE_COLOURS: Final = {
    "locked": QColor(46, 160, 67),
    "unlocked": QColor(33, 118, 210),
    "in_use": QColor(142, 68, 173),
    "returned": QColor(0, 150, 136),
    "missing": QColor(230, 120, 0),
    "fault": QColor(210, 50, 50),
    "unknown": QColor(128, 128, 128),
}
ERROR_COLOUR: Final = "#c62828"
OK_COLOUR: Final = "#2e7d32"
TILE_WIDTH: Final = 230
ICON_SIZE: Final = 44


def state_colour(state: str) -> QColor:
    return STATE_COLOURS.get(state, STATE_COLOURS["unknown"])


class StateIcon(QWidget):
    """The state's icon: a closed or open padlock, a cart, a warning sign, a question mark."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = "unknown"
        self.setFixedSize(ICON_SIZE, ICON_SIZE)

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = state_colour(self.state)
        r = QRectF(self.rect()).adjusted(2, 2, -2, -2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawEllipse(r)
        painter.setPen(
            QPen(QColor(255, 255, 255), 2.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        )
        painter.setBrush(Qt.BrushStyle.NoBrush)
        c = r.center()
        s = r.width() / 40.0  # drawn on a 40-unit grid
        if self.state in ("locked", "unlocked"):
            _padlock(painter, c, s, open_=self.state == "unlocked")
        elif self.state in ("in_use", "returned"):
            _cart(painter, c, s, back=self.state == "returned")
        elif self.state == "fault":
            _warning(painter, c, s)
        else:
            font = QFont(self.font())
            font.setBold(True)
            font.setPixelSize(int(22 * s))
            painter.setFont(font)
            painter.drawText(r, Qt.AlignmentFlag.AlignCenter, "?")


def _padlock(painter: QPainter, c: QPointF, s: float, *, open_: bool) -> None:
    body = QRectF(c.x() - 9 * s, c.y() - 1 * s, 18 * s, 13 * s)
    painter.save()
    painter.setBrush(QColor(255, 255, 255))
    painter.drawRoundedRect(body, 2 * s, 2 * s)
    painter.restore()
    shackle = QPainterPath()
    lift = 5 * s if open_ else 0.0
    left, right, top = c.x() - 5.5 * s, c.x() + 5.5 * s, c.y() - 12 * s - lift
    shackle.moveTo(left, c.y() - 1 * s - lift)  # open: the left leg is out of the body
    shackle.lineTo(left, top + 5.5 * s)
    shackle.arcTo(QRectF(left, top, 11 * s, 11 * s), 180, -180)
    shackle.lineTo(right, c.y() - 1 * s)  # the right leg stays in the body
    painter.drawPath(shackle)


def _cart(painter: QPainter, c: QPointF, s: float, *, back: bool) -> None:
    basket = QPainterPath()
    basket.moveTo(c.x() - 12 * s, c.y() - 8 * s)
    basket.lineTo(c.x() - 8 * s, c.y() - 8 * s)
    basket.lineTo(c.x() - 5 * s, c.y() + 4 * s)
    basket.lineTo(c.x() + 9 * s, c.y() + 4 * s)
    basket.lineTo(c.x() + 11 * s, c.y() - 4 * s)
    basket.lineTo(c.x() - 7 * s, c.y() - 4 * s)
    painter.drawPath(basket)
    painter.save()
    painter.setBrush(QColor(255, 255, 255))
    for x in (-3.0, 7.0):
        painter.drawEllipse(QPointF(c.x() + x * s, c.y() + 9 * s), 2 * s, 2 * s)
    painter.restore()
    if back:  # a small "back home" tick above the basket
        painter.drawLine(
            QPointF(c.x() + 6 * s, c.y() - 13 * s), QPointF(c.x() + 9 * s, c.y() - 10 * s)
        )
        painter.drawLine(
            QPointF(c.x() + 9 * s, c.y() - 10 * s), QPointF(c.x() + 14 * s, c.y() - 16 * s)
        )


def _warning(painter: QPainter, c: QPointF, s: float) -> None:
    triangle = QPainterPath()
    triangle.moveTo(c.x(), c.y() - 12 * s)
    triangle.lineTo(c.x() + 12 * s, c.y() + 9 * s)
    triangle.lineTo(c.x() - 12 * s, c.y() + 9 * s)
    triangle.closeSubpath()
    painter.drawPath(triangle)
    painter.drawLine(QPointF(c.x(), c.y() - 4 * s), QPointF(c.x(), c.y() + 2 * s))
    painter.drawPoint(QPointF(c.x(), c.y() + 6 * s))


class CartTileWidget(QFrame):
    """One cart. ``commandRequested(cart, action)`` when Unlock or Lock is clicked."""

    commandRequested = Signal(int, str)

    def __init__(self, cart_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cart_id = cart_id
        self.state = "unknown"
        self.setFixedWidth(TILE_WIDTH)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Maximum)
        self.icon = StateIcon(self)
        self.title = QLabel(f"Cart {cart_id}", self)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self.title.setFont(font)
        self.where = QLabel(self)
        self.state_label = QLabel(self)
        bold = self.state_label.font()
        bold.setBold(True)
        self.state_label.setFont(bold)
        self.state_label.setWordWrap(True)  # a fault's detail can be a sentence
        self.since = QLabel(self)
        self.sensors = QLabel(self)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)  # busy
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.progress.hide()
        self.unlock_button = QPushButton("Unlock", self)
        self.lock_button = QPushButton("Lock", self)
        self.unlock_button.clicked.connect(
            lambda: self.commandRequested.emit(self.cart_id, "unlock")
        )
        self.lock_button.clicked.connect(lambda: self.commandRequested.emit(self.cart_id, "lock"))

        head = QHBoxLayout()
        head.addWidget(self.icon)
        names = QVBoxLayout()
        names.setSpacing(0)
        names.addWidget(self.title)
        names.addWidget(self.where)
        head.addLayout(names, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.unlock_button)
        buttons.addWidget(self.lock_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 10, 10)
        layout.addLayout(head)
        layout.addWidget(self.state_label)
        layout.addWidget(self.since)
        layout.addWidget(self.sensors)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

    def show_tile(self, section: CartSection, tile: CartTile) -> None:
        info = tile.info
        self.state = info.state
        self.icon.set_state(info.state)
        self.where.setText(f"board {info.board} · lock {info.lock}")
        label = STATE_LABELS.get(info.state, info.state)
        if info.detail and info.state in ("fault", "unknown"):  # why; the others say it
            label += f" — {info.detail}"
        self.state_label.setText(label)
        self.state_label.setStyleSheet(f"color: {state_colour(info.state).name()};")
        self.since.setText(since_text(info.changed_at))
        self.sensors.setText(sensors_text(info))
        command = tile.command
        self.progress.setVisible(tile.running)
        if command is None:
            text, colour = "", ""
        elif command.phase == "running":
            text, colour = running_text(command.action), ""
        elif command.phase == "done":
            text, colour = command.text, OK_COLOUR
        else:
            text, colour = command.text, ERROR_COLOUR
        if not text and board_down(section, tile):
            text, colour = f"Board {info.board} is not answering.", ERROR_COLOUR
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {colour};" if colour else "")
        self.status.setVisible(bool(text))
        self.unlock_button.setEnabled(can_unlock(section, tile))
        self.lock_button.setEnabled(can_lock(section, tile))
        hint = section.read_only or section.problem
        for button in (self.unlock_button, self.lock_button):
            button.setToolTip(hint)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = state_colour(self.state)
        tint = QColor(colour)
        tint.setAlpha(36)
        rect = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        painter.setPen(QPen(colour, 2))
        painter.setBrush(tint)
        painter.drawRoundedRect(rect, 8, 8)
        painter.fillRect(QRectF(rect.left(), rect.top() + 8, 5, rect.height() - 16), colour)
        painter.end()
        super().paintEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(TILE_WIDTH, 210)


class DeviceCarts(QGroupBox):
    """One device's carts: a banner (problems, boards down, key) and the grid of tiles."""

    commandRequested = Signal(str, int, str)  # device key, cart, action

    def __init__(self, device_key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device_key = device_key
        self.banner = QLabel(self)
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(f"color: {ERROR_COLOUR};")
        self.banner.hide()
        self.grid = QGridLayout()
        self.grid.setSpacing(10)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addLayout(self.grid)
        self.tiles: dict[int, CartTileWidget] = {}
        self._columns = 4

    def show_section(self, section: CartSection) -> None:
        count = len(section.carts)
        down = ", ".join(str(u) for u in section.boards_down)
        title = f"{section.name} — {count} cart{'s' if count != 1 else ''}"
        if down:
            title += f" — board{'s' if len(section.boards_down) > 1 else ''} {down} down"
        self.setTitle(title)
        problems = [section.problem, section.read_only]
        if section.boards_down:
            problems.append(
                f"Lock board{'s' if len(section.boards_down) > 1 else ''} {down} not answering:"
                " those carts are shown as unknown and cannot be unlocked or locked."
            )
        text = "\n".join(p for p in problems if p)
        self.banner.setText(text)
        self.banner.setVisible(bool(text))
        for cart_id in list(self.tiles):
            if cart_id not in section.carts:
                gone = self.tiles.pop(cart_id)
                self.grid.removeWidget(gone)
                gone.deleteLater()
        for cart_id, tile in section.carts.items():
            widget = self.tiles.get(cart_id)
            if widget is None:
                widget = CartTileWidget(cart_id, self)
                widget.commandRequested.connect(
                    lambda cart, action: self.commandRequested.emit(self.device_key, cart, action)
                )
                self.tiles[cart_id] = widget
            widget.show_tile(section, tile)
        self._place()

    def set_columns(self, columns: int) -> None:
        if columns != self._columns:
            self._columns = columns
            self._place()

    def _place(self) -> None:
        for index, cart_id in enumerate(sorted(self.tiles)):
            widget = self.tiles[cart_id]
            row, col = divmod(index, self._columns)
            self.grid.addWidget(widget, row, col)  # moves a widget already in the grid


class CartsView(QWidget):
    """Every device's carts; devices without lock boards are listed in one line below."""

    def __init__(self, presenter: CartsPresenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.presenter = presenter
        self.confirm: Confirm = ask(self)
        self.title = QLabel("Carts", self)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        self.empty = QLabel("No edge with cart locks found yet.", self)
        self.empty.setWordWrap(True)
        self.without = QLabel(self)
        self.without.setWordWrap(True)
        self.without.setStyleSheet("color: palette(mid);")
        self.boxes: dict[str, DeviceCarts] = {}
        self._inner = QWidget()
        self._list = QVBoxLayout(self._inner)
        self._list.setAlignment(Qt.AlignmentFlag.AlignTop)
        self._list.addWidget(self.empty)
        self._list.addStretch(1)
        self._list.addWidget(self.without)
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setWidget(self._inner)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.scroll_area, 1)

        presenter.sectionChanged.connect(self._section_changed)
        presenter.sectionRemoved.connect(self._section_removed)
        for section in presenter.sections:
            self._section_changed(section.device_key)
        self._summary()

    # ------------------------------------------------------------------ presenter → widgets
    def _section_changed(self, key: str) -> None:
        section = self.presenter.section(key)
        if section is None:
            return
        box = self.boxes.get(key)
        if section.enabled:
            if box is None:
                box = DeviceCarts(key, self._inner)
                box.commandRequested.connect(self.request)
                box.set_columns(self._columns())
                self.boxes[key] = box
                self._reorder()
            box.show_section(section)
        elif box is not None:
            self._drop(key)
        self._summary()

    def _section_removed(self, key: str) -> None:
        self._drop(key)
        self._summary()

    def _drop(self, key: str) -> None:
        box = self.boxes.pop(key, None)
        if box is not None:
            self._list.removeWidget(box)
            box.deleteLater()

    def _reorder(self) -> None:
        names = {s.device_key: (s.name, s.device_key) for s in self.presenter.sections}
        for box in self.boxes.values():
            self._list.removeWidget(box)
        for index, key in enumerate(sorted(self.boxes, key=lambda k: names.get(k, (k, k)))):
            self._list.insertWidget(1 + index, self.boxes[key])

    def _summary(self) -> None:
        sections = self.presenter.sections
        self.empty.setVisible(not self.boxes)
        without = [s.name for s in sections if s.enabled is False]
        asking = [s.name for s in sections if s.enabled is None]
        parts = []
        if without:
            parts.append("Without lock boards: " + ", ".join(without) + ".")
        if asking:
            parts.append("Not answered yet: " + ", ".join(asking) + ".")
        self.without.setText(" ".join(parts))
        self.without.setVisible(bool(parts))

    # ------------------------------------------------------------------ layout
    def _columns(self) -> int:
        width: int = self.scroll_area.viewport().width() - 40
        return max(1, width // (TILE_WIDTH + 10))

    def reflow(self) -> None:
        columns = self._columns()
        for box in self.boxes.values():
            box.set_columns(columns)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.reflow()

    def showEvent(self, event: QShowEvent) -> None:
        # Resized while another page showed, the hidden scroll area kept its old width: lay
        # the carts out for the width they have now, before the first paint.
        super().showEvent(event)

        layout = self.layout()
        if layout is not None:
            layout.activate()
        self.reflow()
        QTimer.singleShot(0, self.reflow)  # once more, after the layout has settled

    # ------------------------------------------------------------------ commands
    def request(self, key: str, cart_id: int, action: str) -> None:
        """Unlock or Lock clicked: confirm, then ask the presenter."""
        section = self.presenter.section(key)
        if section is None:
            return
        if action == "unlock":
            title = f"Unlock cart {cart_id} at {section.name}?"
            text = "The lock opens and the cart can be taken out of its bay."
        else:
            title = f"Lock cart {cart_id} at {section.name}?"
            text = "The lock closes. Make sure the cart stands in its bay."
        if self.confirm(title, text):
            self.presenter.command(key, cart_id, action)

    # ------------------------------------------------------------------ reading (tests, a11y)
    def tile(self, key: str, cart_id: int) -> CartTileWidget | None:
        box = self.boxes.get(key)
        return box.tiles.get(cart_id) if box is not None else None
