"""The plate feed: a bounded table of reads behind a filter proxy, with search and export.

The widget does no I/O: rows and thumbnails come from :class:`console.presenters.feed.
FeedPresenter`; export asks the presenter (which writes in a worker thread).
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.models.plate_rows import FeedFilter, PlateRow
from console.presenters.feed import THUMB_WIDTH, FeedPresenter

ROW_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2

COLUMNS = ("Picture", "Time", "Plate", "Member", "Score", "Device", "Site")
(COL_PICTURE, COL_TIME, COL_PLATE, COL_MEMBER, COL_SCORE, COL_DEVICE, COL_SITE) = range(7)

MEMBER_BRUSH = QBrush(QColor(46, 160, 67, 60))
THUMB_HEIGHT = THUMB_WIDTH * 9 // 16

_Index = QModelIndex | QPersistentModelIndex

TIME_RANGES: tuple[tuple[str, timedelta | None], ...] = (
    ("Any time", None),
    ("Last 15 minutes", timedelta(minutes=15)),
    ("Last hour", timedelta(hours=1)),
    ("Last 24 hours", timedelta(hours=24)),
    ("Last 7 days", timedelta(days=7)),
)


def _placeholder(grey: int) -> QImage:
    """A flat thumbnail: dark grey while fetching, lighter when the edge has no such picture."""
    image = QImage(THUMB_WIDTH, THUMB_HEIGHT, QImage.Format.Format_RGB32)
    image.fill(QColor(grey, grey, grey))
    return image


class PlateTableModel(QAbstractTableModel):
    """The newest ``max_rows`` reads, newest first; duplicates (same device and id) dropped."""

    thumbnailWanted = Signal(object)  # the PlateRow whose thumbnail is painted first

    def __init__(self, max_rows: int = 5000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.max_rows = max_rows
        self._rows: deque[PlateRow] = deque()
        self._seen: set[tuple[str, int]] = set()
        # By (device key, PlateRow.thumb_key); None: asked, not here yet.
        self._thumbs: dict[tuple[str, str], QImage | None] = {}
        self._missing = _placeholder(90)
        self._waiting = _placeholder(45)

    # ------------------------------------------------------------------ data in
    def add_rows(self, rows: list[PlateRow]) -> None:
        """Add reads (oldest first), dropping the oldest beyond ``max_rows``."""
        fresh = [r for r in rows if (r.device_key, r.event_id) not in self._seen]
        if not fresh:
            return
        fresh = fresh[-self.max_rows :]
        self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
        for row in fresh:
            self._rows.appendleft(row)
            self._seen.add((row.device_key, row.event_id))
        self.endInsertRows()
        excess = len(self._rows) - self.max_rows
        if excess > 0:
            first = len(self._rows) - excess
            self.beginRemoveRows(QModelIndex(), first, len(self._rows) - 1)
            for _ in range(excess):
                old = self._rows.pop()
                self._seen.discard((old.device_key, old.event_id))
                if old.thumb_key is not None:
                    self._thumbs.pop((old.device_key, old.thumb_key), None)
            self.endRemoveRows()

    def set_thumbnail(self, device_key: str, key: str, image: QImage | None) -> None:
        """A decoded thumbnail, or None for "not available" (shown as a placeholder)."""
        self._thumbs[(device_key, key)] = image if image is not None else self._missing
        for i, row in enumerate(self._rows):
            if row.device_key == device_key and row.thumb_key == key:
                index = self.index(i, COL_PICTURE)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def mark_missing(self, device_key: str, key: str) -> None:
        self.set_thumbnail(device_key, key, None)

    def clear(self) -> None:
        self.beginResetModel()
        self._rows.clear()
        self._seen.clear()
        self._thumbs.clear()
        self.endResetModel()

    # ------------------------------------------------------------------ data out
    def rows(self) -> list[PlateRow]:
        return list(self._rows)

    def row_at(self, i: int) -> PlateRow:
        return self._rows[i]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, col)
        if role == SORT_ROLE:
            return self._sort_key(row, col)
        if role == Qt.ItemDataRole.DecorationRole and col == COL_PICTURE:
            return self._thumbnail(row)
        if role == Qt.ItemDataRole.BackgroundRole and row.is_member:
            return MEMBER_BRUSH
        if role == Qt.ItemDataRole.FontRole and row.is_member and col in (COL_PLATE, COL_MEMBER):
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(row)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_SCORE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _display(row: PlateRow, col: int) -> str | None:
        if col == COL_TIME:
            return row.ts.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        if col == COL_PLATE:
            return row.plate
        if col == COL_MEMBER:
            return f"★ {row.member_label}" if row.is_member else ""
        if col == COL_SCORE:
            return f"{row.score:.2f}"
        if col == COL_DEVICE:
            return row.device_name
        if col == COL_SITE:
            return row.site
        return None

    @staticmethod
    def _sort_key(row: PlateRow, col: int) -> Any:
        if col in (COL_TIME, COL_PICTURE):
            return row.ts.timestamp()
        if col == COL_SCORE:
            return row.score
        return PlateTableModel._display(row, col) or ""

    def _thumbnail(self, row: PlateRow) -> QImage:
        if row.thumb_key is None:
            return self._missing
        key = (row.device_key, row.thumb_key)
        if key not in self._thumbs:
            self._thumbs[key] = None
            self.thumbnailWanted.emit(row)
        image = self._thumbs[key]
        return image if image is not None else self._waiting


def _tooltip(row: PlateRow) -> str:
    """E.g. "AB123 (read "AB 123") at bay 1, 2026-11-24 15:00:00: member Ann Lee (gold, fuzzy
    match, status expired)"."""
    details = [row.plan] if row.plan else []
    if row.match and row.match != "exact":
        details.append(f"{row.match} match")
    if row.member_status and row.member_status != "active":
        details.append(f"status {row.member_status}")
    extra = f" ({', '.join(details)})" if details else ""
    who = f"member {row.member_label}{extra}" if row.is_member else "not a member"
    read = f' (read "{row.text}")' if row.text and row.text != row.plate else ""
    return f"{row.plate}{read} at {row.device_name}, {row.ts:%Y-%m-%d %H:%M:%S}: {who}"


class PlateFilterProxy(QSortFilterProxyModel):
    """Shows the rows a :class:`FeedFilter` accepts; sorts by :data:`SORT_ROLE`."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._filter = FeedFilter()
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    @property
    def feed_filter(self) -> FeedFilter:
        return self._filter

    def set_feed_filter(self, feed_filter: FeedFilter) -> None:
        if feed_filter == self._filter:
            return
        self.beginFilterChange()
        self._filter = feed_filter
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        model = self.sourceModel()
        row = model.data(model.index(source_row, 0, source_parent), ROW_ROLE)
        return isinstance(row, PlateRow) and self._filter.matches(row)

    def visible_rows(self) -> list[PlateRow]:
        """The rows shown, in the order shown (what an export writes)."""
        rows = []
        for i in range(self.rowCount()):
            row = self.data(self.index(i, 0), ROW_ROLE)
            if isinstance(row, PlateRow):
                rows.append(row)
        return rows


class PlateFeedView(QWidget):
    """Search box (Ctrl+F), site/device/member/time filters, the table, CSV export."""

    exportRequested = Signal(str, list)  # path, rows (filtered, as shown)

    def __init__(
        self, presenter: FeedPresenter, *, max_rows: int = 5000, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.presenter = presenter
        self.model = PlateTableModel(max_rows, self)
        self.proxy = PlateFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.search = QLineEdit(self, placeholderText="Search plate or member (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.site = QComboBox(self)
        self.device = QComboBox(self)
        self.site.addItem("All sites", None)
        self.device.addItem("All bays", None)
        self.member_only = QCheckBox("Members only", self)
        self.time_range = QComboBox(self)
        for label, span in TIME_RANGES:
            self.time_range.addItem(label, span)
        self.export_button = QPushButton("Export CSV…", self)
        self.status = QLabel(self)

        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COL_TIME, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMB_HEIGHT + 6)
        self.table.setIconSize(QImage(THUMB_WIDTH, THUMB_HEIGHT, QImage.Format.Format_RGB32).size())
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.resizeSection(COL_PICTURE, THUMB_WIDTH + 12)
        header.resizeSection(COL_TIME, 160)
        header.setStretchLastSection(True)

        bar = QHBoxLayout()
        bar.addWidget(self.search, 2)
        bar.addWidget(self.site)
        bar.addWidget(self.device)
        bar.addWidget(self.time_range)
        bar.addWidget(self.member_only)
        bar.addStretch(1)
        bar.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

        QShortcut(QKeySequence.StandardKey.Find, self, self.focus_search)
        self.search.textChanged.connect(self._refilter)
        self.site.currentIndexChanged.connect(self._refilter)
        self.device.currentIndexChanged.connect(self._refilter)
        self.member_only.toggled.connect(self._refilter)
        self.time_range.currentIndexChanged.connect(self._refilter)
        self.export_button.clicked.connect(self._ask_export)
        # A relative time range ("last hour") moves with the clock.
        self._clock = QTimer(self)
        self._clock.setInterval(30_000)
        self._clock.timeout.connect(self._refilter)
        self._clock.start()

        presenter.rowsArrived.connect(self.add_rows)
        presenter.thumbnailReady.connect(self.model.set_thumbnail)
        presenter.thumbnailMissing.connect(self.model.mark_missing)
        presenter.exported.connect(self._exported)
        presenter.error.connect(self._show_error)
        self.model.thumbnailWanted.connect(presenter.request_thumbnail)
        self.exportRequested.connect(presenter.export_csv)
        self.model.rowsInserted.connect(self._update_count)
        self.model.rowsRemoved.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)
        self._update_count()

    # ------------------------------------------------------------------ rows
    def add_rows(self, rows: list[PlateRow]) -> None:
        self.model.add_rows(rows)
        for row in rows:
            _add_choice(self.site, row.site or "(no site)", row.site)
            _add_choice(self.device, row.device_name, row.device_key)

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def current_filter(self) -> FeedFilter:
        span = self.time_range.currentData()
        since = datetime.now(UTC) - span if isinstance(span, timedelta) else None
        return FeedFilter(
            text=self.search.text().strip(),
            site=self.site.currentData(),
            device_key=self.device.currentData(),
            member_only=self.member_only.isChecked(),
            since=since,
        )

    def _refilter(self) -> None:
        self.proxy.set_feed_filter(self.current_filter())
        self._update_count()

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        members = sum(1 for r in self.model.rows() if r.is_member)
        self.status.setText(f"{shown} of {total} reads shown · {members} members")

    # ------------------------------------------------------------------ export
    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export plate reads", "plates.csv", "CSV files (*.csv)"
        )
        if path:
            self.export_to(path)

    def export_to(self, path: str) -> None:
        """Export the rows as filtered and sorted now (the writing happens off this thread)."""
        rows = self.proxy.visible_rows()
        self.status.setText(f"Exporting {len(rows)} reads to {path}…")
        self.exportRequested.emit(path, rows)

    def _exported(self, path: str, count: int) -> None:
        self.status.setText(f"Exported {count} reads to {path}")

    def _show_error(self, message: str) -> None:
        self.status.setText(f"⚠ {message}")


def _add_choice(combo: QComboBox, label: str, value: str) -> None:
    if combo.findData(value) < 0:
        combo.addItem(label, value)
