"""The config editor: a form generated from the edge's JSON schema, a diff before applying,
the edge's own validation errors at their fields, history and rollback.

Objects become group boxes, integers and numbers spin boxes bounded by the schema, booleans
check boxes, enums combo boxes, strings line edits, lists line edits of comma-separated values;
descriptions are tooltips and ``x-apply: restart:<component>`` shows a "restarts <component>"
badge. The widget does no I/O: it emits ``applyRequested(changes)``, ``previewRequested(n)``
and ``rollbackRequested(n)`` for :class:`console.presenters.device.DevicePresenter`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Final

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.models.config_form import (
    MASK,
    Change,
    FieldSpec,
    FieldValueError,
    GroupSpec,
    cell_text,
    describe_bounds,
    diff,
    form_from_schema,
    format_value,
    get_path,
    group_of,
    nearest_field,
    parse_cell,
    parse_text,
    set_path,
    text_of,
    validate,
)
from console.services.edge_client import parse_ts
from fleet_common.wire.edge import ConfigApplied, ConfigVersionInfo

_INT_MAX = 2**31 - 1
_ERROR_STYLE = "color: #d32f2f;"
_BADGE_STYLE = (
    "color: white; background: #ef6c00; border-radius: 6px; padding: 1px 6px; font-size: 10px;"
)

Confirm = Callable[[str, str], bool]
_LOADING = "Loading the configuration…"


def ask(parent: QWidget) -> Confirm:
    """A confirmation dialog: ``title``, ``text`` → True when the user says yes."""

    def confirm(title: str, text: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, title, title, parent=parent)
        box.setInformativeText(text)
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Yes

    return confirm


class NoWheelComboBox(QComboBox):
    """A combo box the mouse wheel changes only when it has the focus: scrolling the form
    over it scrolls the form."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if not self.hasFocus():
            event.ignore()  # to the scroll area
            return
        super().wheelEvent(event)


TABLE_MAX_ROWS: Final = 10  # a table grows to this many rows, then scrolls


class TableEditor(QWidget):
    """A list of objects (lock boards) as a table: a row per item, a column per leaf of the
    item; rows can be added and removed. Cells are typed and checked like the form's fields."""

    changed = Signal()

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.columns = spec.columns
        self._extra: list[dict[str, Any]] = []  # per row: keys the table has no column for
        self.table = QTableWidget(0, len(self.columns), self)
        self.table.setHorizontalHeaderLabels([c.title for c in self.columns])
        for index, column in enumerate(self.columns):
            header = self.table.horizontalHeaderItem(index)
            if header is not None:
                header.setToolTip(column.tooltip)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(True)
        self.table.itemChanged.connect(lambda _item: self.changed.emit())
        self.add_button = QPushButton("Add row", self)
        self.remove_button = QPushButton("Remove row", self)
        self.add_button.clicked.connect(self.add_row)
        self.remove_button.clicked.connect(self.remove_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

    def set_rows(self, items: list[Any]) -> None:
        self.table.blockSignals(True)
        try:
            self.table.setRowCount(0)
            self._extra = []
            for item in items:
                self._append(item if isinstance(item, dict) else {})
        finally:
            self.table.blockSignals(False)
        self._fit()

    def _append(self, item: dict[str, Any]) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        known = {c.path for c in self.columns}
        self._extra.append(_without(item, known))
        for col, column in enumerate(self.columns):
            value = get_path(item, column.path)
            if value is None and column.path not in _flat_keys(item):
                value = column.default
            self.table.setItem(row, col, QTableWidgetItem(cell_text(column, value)))

    def _fit(self) -> None:
        """As tall as its rows (from one empty row up to TABLE_MAX_ROWS, then it scrolls): a
        form gives a table only its minimum otherwise, a row and a half."""
        table = self.table
        rows = table.rowCount()
        shown = min(max(rows, 1), TABLE_MAX_ROWS)
        row_height = table.verticalHeader().defaultSectionSize()
        height = 2 * table.frameWidth() + table.horizontalHeader().sizeHint().height()
        height += sum(table.rowHeight(r) for r in range(shown)) if rows else row_height
        height += table.horizontalScrollBar().sizeHint().height()  # the columns may not fit
        table.setFixedHeight(height)

    def add_row(self) -> None:
        item: dict[str, Any] = {}
        for column in self.columns:
            if column.default is not None:
                set_path(item, column.path, column.default)
        self._append(item)
        self._fit()
        self.changed.emit()

    def remove_row(self) -> None:
        row = self.table.currentRow()
        if row < 0:
            row = self.table.rowCount() - 1
        if row >= 0:
            self.table.removeRow(row)
            del self._extra[row]
            self._fit()
            self.changed.emit()

    def rows(self) -> list[dict[str, Any]]:
        """Every row as the item's object; :class:`FieldValueError` naming the first bad cell."""
        items = []
        for row in range(self.table.rowCount()):
            item: dict[str, Any] = json.loads(json.dumps(self._extra[row]))
            for col, column in enumerate(self.columns):
                cell = self.table.item(row, col)
                try:
                    value = parse_cell(column, cell.text() if cell is not None else "")
                except FieldValueError as err:
                    raise FieldValueError(f"row {row + 1}, {column.title}: {err}") from err
                set_path(item, column.path, value)
            items.append(item)
        return items

    def mark(self, sub_path: str, reason: str) -> bool:
        """Colour the cell of ``sub_path`` (``0.unit``); "" clears. False when no such cell."""
        for row in range(self.table.rowCount()):
            for col in range(len(self.columns)):
                cell = self.table.item(row, col)
                if cell is not None:
                    cell.setBackground(QBrush())
                    cell.setToolTip("")
        where = self._cell(sub_path)
        if where is None:
            return False
        cell = self.table.item(*where)
        if cell is not None:
            cell.setBackground(QColor(211, 47, 47, 90))
            cell.setToolTip(reason)
        return True

    def describe(self, sub_path: str, reason: str) -> str:
        where = self._cell(sub_path)
        if where is None:
            return f"{sub_path}: {reason}"
        row, col = where
        return f"Row {row + 1}, {self.columns[col].title}: {reason}"

    def _cell(self, sub_path: str) -> tuple[int, int] | None:
        index, _, rest = sub_path.partition(".")
        if not index.isdigit() or int(index) >= self.table.rowCount():
            return None
        for col, column in enumerate(self.columns):
            if rest == column.path or rest.startswith(column.path + "."):
                return int(index), col
        return (int(index), 0) if not rest else None


def _flat_keys(item: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, value in item.items():
        path = f"{prefix}{key}"
        keys.add(path)
        if isinstance(value, dict):
            keys |= _flat_keys(value, path + ".")
    return keys


def _without(item: dict[str, Any], paths: set[str], prefix: str = "") -> dict[str, Any]:
    """``item`` less the leaves at ``paths`` (what the table has no column for: kept)."""
    rest: dict[str, Any] = {}
    for key, value in item.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            inner = _without(value, paths, path + ".")
            if inner:
                rest[key] = inner
        elif path not in paths:
            rest[key] = value
    return rest


class FieldEditor:
    """One field's row: the editing widget, its restart badge and its error line."""

    def __init__(self, spec: FieldSpec, on_change: Callable[[], None]) -> None:
        self.spec = spec
        self.original: Any = None
        self.widget = self._make(spec, on_change)
        self.widget.setToolTip(spec.tooltip)
        self.widget.setEnabled(spec.editable)
        self.badge = QLabel(spec.badge)
        self.badge.setStyleSheet(_BADGE_STYLE)
        self.badge.setVisible(bool(spec.badge))
        self.badge.setToolTip(spec.tooltip)
        self.error = QLabel()
        self.error.setStyleSheet(_ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.widget, 1)
        row.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignTop)
        self.container = QWidget()
        outer = QVBoxLayout(self.container)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        outer.addLayout(row)
        outer.addWidget(self.error)

    def _make(self, spec: FieldSpec, on_change: Callable[[], None]) -> QWidget:
        kind = spec.kind
        if kind == "bool":
            check = QCheckBox()
            check.toggled.connect(on_change)
            return check
        if kind == "enum":
            combo = NoWheelComboBox()
            for choice in spec.choices:
                combo.addItem(str(choice), choice)
            combo.currentIndexChanged.connect(on_change)
            return combo
        if kind == "table":
            table = TableEditor(spec)
            table.changed.connect(on_change)
            return table
        # Numbers too are typed (no spin box): a value out of bounds or not a number stays as
        # typed and is explained under the field, instead of silently snapping back.
        line = QLineEdit()
        if kind == "secret":
            line.setEchoMode(QLineEdit.EchoMode.Password)
        if kind == "list":
            line.setPlaceholderText("comma-separated values")
        if kind in ("int", "number"):
            bounds = describe_bounds(spec)
            line.setPlaceholderText(bounds or ("whole number" if kind == "int" else "number"))
            line.setAlignment(Qt.AlignmentFlag.AlignRight)
        line.textChanged.connect(on_change)
        return line

    def set_value(self, value: Any) -> None:
        self.original = value
        w = self.widget
        w.blockSignals(True)
        try:
            if isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QComboBox):
                found = [i for i in range(w.count()) if w.itemData(i) == value]
                w.setCurrentIndex(found[0] if found else 0)
            elif isinstance(w, TableEditor):
                w.set_rows(value if isinstance(value, list) else [])
            elif isinstance(w, QLineEdit):
                if self.spec.kind == "secret" and value == MASK:
                    w.setText("")
                    w.setPlaceholderText("set on the device; type to replace")
                elif self.spec.kind in ("int", "number") and isinstance(value, int | float):
                    w.setText(format_value(value))
                else:
                    w.setText(text_of(self.spec, value))
        finally:
            w.blockSignals(False)

    def value(self) -> Any:
        """The edited value; :class:`FieldValueError` when it is not acceptable."""
        w = self.widget
        if isinstance(w, QCheckBox):
            value: Any = w.isChecked()
        elif isinstance(w, QComboBox):
            value = w.currentData()
        elif isinstance(w, TableEditor):
            return w.rows()
        elif isinstance(w, QLineEdit):
            if self.spec.kind == "secret" and self.original == MASK and not w.text():
                return MASK
            return parse_text(self.spec, w.text())
        else:  # pragma: no cover - every kind has a widget above
            raise FieldValueError("unsupported field")
        validate(self.spec, value)
        return value

    def set_error_at(self, sub_path: str, reason: str) -> None:
        """An error of the edge about a part of this field (a table's ``0.unit``)."""
        if isinstance(self.widget, TableEditor) and self.widget.mark(sub_path, reason):
            self.set_error(self.widget.describe(sub_path, reason))
            return
        self.set_error(f"{sub_path}: {reason}" if sub_path else reason)

    def set_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))
        if isinstance(self.widget, TableEditor):
            if not message:
                self.widget.mark("", "")
            return
        self.widget.setStyleSheet("border: 1px solid #d32f2f;" if message else "")


class ConfigEditor(QWidget):
    """The form, the pending diff, apply; the history with rollback."""

    applyRequested = Signal(list)  # list[Change]
    previewRequested = Signal(int)  # version: load it to show what a rollback changes
    rollbackRequested = Signal(int)
    reloadRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.confirm: Confirm = ask(self)
        self.fields: dict[str, FieldEditor] = {}
        self.group_errors: dict[str, QLabel] = {}  # group path → its error line
        self.config: dict[str, Any] = {}
        self.version: int | None = None
        self._schema: dict[str, Any] | None = None
        self._form: GroupSpec | None = None

        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.version_label = QLabel(self)
        self.form_area = QScrollArea(self)
        self.form_area.setWidgetResizable(True)
        self.pending = QPlainTextEdit(self)
        self.pending.setReadOnly(True)
        self.pending.setMaximumHeight(90)
        self.pending.setPlaceholderText("No changes")
        self.revert_button = QPushButton("Revert", self)
        self.apply_button = QPushButton("Review and apply…", self)
        self.apply_button.setDefault(True)

        self.history = QTableWidget(0, 5, self)
        self.history.setHorizontalHeaderLabels(["Version", "Created", "Source", "Reason", "Good"])
        self.history.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.history.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.history.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history.verticalHeader().setVisible(False)
        self.history.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.history.horizontalHeader().setStretchLastSection(True)
        self.rollback_button = QPushButton("Roll back to selected…", self)
        self.rollback_button.setEnabled(False)

        form_side = QWidget(self)
        form_layout = QVBoxLayout(form_side)
        form_layout.setContentsMargins(0, 0, 0, 0)
        form_layout.addWidget(self.version_label)
        form_layout.addWidget(self.form_area, 1)
        form_layout.addWidget(QLabel("Pending changes:", self))
        form_layout.addWidget(self.pending)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.apply_button)
        form_layout.addLayout(buttons)
        history_side = QGroupBox("History", self)
        history_layout = QVBoxLayout(history_side)
        history_layout.addWidget(self.history, 1)
        history_layout.addWidget(self.rollback_button)
        splitter = QSplitter(self)
        splitter.addWidget(form_side)
        splitter.addWidget(history_side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(splitter, 1)

        self.apply_button.clicked.connect(self.review_and_apply)
        self.revert_button.clicked.connect(self.revert)
        self.rollback_button.clicked.connect(self._ask_rollback)
        self.history.itemSelectionChanged.connect(self._selection_changed)
        self._set_enabled(False)
        self.show_message(_LOADING)

    # ------------------------------------------------------------------ state in
    def set_config(self, schema: dict[str, Any], config: dict[str, Any], version: int) -> None:
        """Build (or refill) the form for ``config`` at ``version``."""
        if schema != self._schema:
            self._schema = schema
            self._build(form_from_schema(schema))
        self.config, self.version = config, version
        for path, editor in self.fields.items():
            editor.set_value(get_path(config, path))
            editor.set_error(None)
        self._clear_group_errors()
        self.version_label.setText(f"Version {version} on the device")
        self._set_enabled(True)
        self._update_pending()
        if self.message.text() == _LOADING:
            self.show_message("")

    def reset(self) -> None:
        """Another device is shown: no form, no message of the previous one until it loads."""
        self.config, self.version = {}, None
        self._set_enabled(False)
        self.pending.setPlainText("")
        self.history.setRowCount(0)
        self.version_label.setText("")
        self.show_message(_LOADING)

    def show_first_table(self) -> None:
        """Scroll the form to its first table (a list of objects, e.g. lock boards)."""
        for editor in self.fields.values():
            if isinstance(editor.widget, TableEditor):
                root = self.form_area.widget()
                if root is not None:
                    top = editor.container.mapTo(root, QPoint(0, 0)).y()
                    self.form_area.verticalScrollBar().setValue(max(0, top - 60))
                return

    def set_unavailable(self, message: str) -> None:
        """The editor cannot work (no admin key, an old edge): say why, keep the form off."""
        self._set_enabled(False)
        self.show_message(message, error=True)

    def set_history(self, versions: Sequence[ConfigVersionInfo]) -> None:
        self.history.setRowCount(0)
        for info in versions:
            r = self.history.rowCount()
            self.history.insertRow(r)
            good = {True: "✓", False: "✗", None: "?"}[info.good]
            cells = [
                str(info.version),
                _local_time(info.created_at),
                info.source,
                info.reason,
                good,
            ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, info.version)
                if info.version == self.version:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.history.setItem(r, c, item)
        self._selection_changed()

    def show_rejection(self, by_path: dict[str, str], message: str) -> None:
        """The edge refused the change: each reason at its field, the summary on top."""
        known = list(self.fields)
        unplaced = []
        for editor in self.fields.values():
            editor.set_error(None)
        self._clear_group_errors()
        first: QWidget | None = None
        for path, reason in by_path.items():
            target = nearest_field(path, known, reason)
            if target is not None:
                sub = path[len(target) + 1 :] if path != target else ""
                self.fields[target].set_error_at(sub, reason)
                first = first or self.fields[target].container
                continue
            group = group_of(path, list(self.group_errors))
            if group is not None:
                label = self.group_errors[group]
                label.setText(reason)
                label.setVisible(True)
                first = first or label
                continue
            unplaced.append(f"{path}: {reason}")
        if first is not None:
            self.form_area.ensureWidgetVisible(first)
        text = "The device refused the change: " + message
        if unplaced:
            text += "\n" + "\n".join(unplaced)
        self.show_message(text, error=True)

    def show_applied(self, applied: ConfigApplied) -> None:
        parts = [f"Applied: version {applied.version}."]
        if applied.restarted:
            parts.append("Restarted: " + ", ".join(applied.restarted) + ".")
        elif applied.hot:
            parts.append("Applied in place, nothing restarted.")
        self.show_message(" ".join(parts))

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(_ERROR_STYLE if error else "")

    # ------------------------------------------------------------------ form
    def _build(self, form: GroupSpec) -> None:
        self._form = form
        self.fields = {}
        self.group_errors = {}
        root = QWidget()
        layout = QVBoxLayout(root)
        top = QFormLayout()
        layout.addLayout(top)
        for child in form.children:
            if isinstance(child, GroupSpec):
                layout.addWidget(self._group_box(child))
            else:
                self._add_field(top, child)
        layout.addStretch(1)
        self.form_area.setWidget(root)

    def _clear_group_errors(self) -> None:
        for label in self.group_errors.values():
            label.setText("")
            label.setVisible(False)

    def _group_box(self, group: GroupSpec) -> QGroupBox:
        box = QGroupBox(group.title)
        box.setToolTip(group.description)
        outer = QVBoxLayout(box)
        error = QLabel()  # the edge's objections to the group as a whole
        error.setStyleSheet(_ERROR_STYLE)
        error.setWordWrap(True)
        error.setVisible(False)
        outer.addWidget(error)
        self.group_errors[group.path] = error
        rows = QFormLayout()
        outer.addLayout(rows)
        for child in group.children:
            if isinstance(child, GroupSpec):
                outer.addWidget(self._group_box(child))
            else:
                self._add_field(rows, child)
        return box

    def _add_field(self, layout: QFormLayout, spec: FieldSpec) -> None:
        editor = FieldEditor(spec, self._update_pending)
        label = QLabel(spec.title)
        label.setToolTip(spec.tooltip)
        layout.addRow(label, editor.container)
        self.fields[spec.path] = editor

    def _set_enabled(self, on: bool) -> None:
        self.form_area.setEnabled(on)
        self.apply_button.setEnabled(on)
        self.revert_button.setEnabled(on)

    # ------------------------------------------------------------------ changes
    def edited_values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """``(values by path, client-side errors by path)``."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for path, editor in self.fields.items():
            try:
                values[path] = editor.value()
            except FieldValueError as err:
                errors[path] = str(err)
        return values, errors

    def pending_changes(self) -> list[Change]:
        values, _ = self.edited_values()
        return diff(self.config, values, [e.spec for e in self.fields.values()])

    def _update_pending(self) -> None:
        values, errors = self.edited_values()
        for path, editor in self.fields.items():
            editor.set_error(errors.get(path))
        changes = diff(self.config, values, [e.spec for e in self.fields.values()])
        self.pending.setPlainText("\n".join(_describe(c, self.fields) for c in changes))

    def review_and_apply(self) -> None:
        """Validate, show the diff for confirmation, then ask the presenter to apply it."""
        values, errors = self.edited_values()
        for path, editor in self.fields.items():
            editor.set_error(errors.get(path))
        if errors:
            self.show_message(f"{len(errors)} field(s) need fixing before applying.", error=True)
            return
        changes = diff(self.config, values, [e.spec for e in self.fields.values()])
        if not changes:
            self.show_message("Nothing to apply: the form matches the device.")
            return
        text = "\n".join(_describe(c, self.fields) for c in changes)
        if not self.confirm(f"Apply {len(changes)} change(s) to the device?", text):
            return
        self.show_message("Applying…")
        self.applyRequested.emit(changes)

    def revert(self) -> None:
        if self.version is not None and self._schema is not None:
            self.set_config(self._schema, self.config, self.version)
            self.show_message("Reverted to the device's config.")

    # ------------------------------------------------------------------ rollback
    def selected_version(self) -> int | None:
        items = self.history.selectedItems()
        if not items:
            return None
        value = items[0].data(Qt.ItemDataRole.UserRole)
        return int(value) if isinstance(value, int) else None

    def _selection_changed(self) -> None:
        chosen = self.selected_version()
        self.rollback_button.setEnabled(chosen is not None and chosen != self.version)

    def _ask_rollback(self) -> None:
        version = self.selected_version()
        if version is not None:
            self.previewRequested.emit(version)

    def confirm_rollback(self, version: int, config: dict[str, Any]) -> None:
        """The chosen version arrived: show what rolling back changes, then ask."""
        target = {path: get_path(config, path) for path in self.fields}
        changes = diff(self.config, target, [e.spec for e in self.fields.values()])
        text = "\n".join(str(c) for c in changes) or "No visible differences."
        if self.confirm(f"Roll back to version {version}?", text):
            self.show_message(f"Rolling back to version {version}…")
            self.rollbackRequested.emit(version)


def _describe(change: Change, fields: dict[str, FieldEditor]) -> str:
    editor = fields.get(change.path)
    badge = f"  [{editor.spec.badge}]" if editor is not None and editor.spec.badge else ""
    if editor is not None and editor.spec.kind == "secret":
        return f"{change.path}: (secret changed){badge}"
    return f"{change}{badge}"


def _local_time(text: str) -> str:
    """An RFC 3339 time in the local zone, to the second (the client checked it is one)."""
    try:
        return parse_ts(text).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return text
