"""The config editor: a form generated from the edge's JSON schema, a diff before applying,
the edge's own validation errors at their fields, history and rollback.

Objects become group boxes, integers and numbers spin boxes bounded by the schema, booleans
check boxes, enums combo boxes, strings line edits, lists line edits of comma-separated values;
descriptions are tooltips and ``x-apply: restart:<component>`` shows a "restarts <component>"
badge. The widget does no I/O: it emits ``applyRequested(changes)``, ``previewRequested(n)``
and ``rollbackRequested(n)`` for :class:`console.presenters.device.DevicePresenter`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
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
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.configform import (
    MASK,
    Change,
    FieldSpec,
    FieldValueError,
    GroupSpec,
    diff,
    form_from_schema,
    get_path,
    nearest_field,
    parse_text,
    text_of,
    validate,
)
from console.services.edge_client import ConfigApplied, ConfigVersionInfo

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
        row.addWidget(self.badge)
        self.container = QWidget()
        outer = QVBoxLayout(self.container)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        outer.addLayout(row)
        outer.addWidget(self.error)

    def _make(self, spec: FieldSpec, on_change: Callable[[], None]) -> QWidget:
        kind = spec.kind
        if kind == "int" and not spec.nullable:
            box = QSpinBox()
            low = spec.minimum if spec.minimum is not None else -_INT_MAX
            if spec.exclusive_minimum is not None:
                low = spec.exclusive_minimum + 1
            high = spec.maximum if spec.maximum is not None else _INT_MAX
            if spec.exclusive_maximum is not None:
                high = spec.exclusive_maximum - 1
            box.setRange(int(max(low, -_INT_MAX)), int(min(high, _INT_MAX)))
            box.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.UpDownArrows)
            box.setKeyboardTracking(True)
            box.valueChanged.connect(on_change)
            return box
        if kind == "number" and not spec.nullable:
            dbox = QDoubleSpinBox()
            dbox.setDecimals(3)
            step = 10**-3
            low_f = spec.minimum if spec.minimum is not None else -1e12
            if spec.exclusive_minimum is not None:
                low_f = spec.exclusive_minimum + step
            high_f = spec.maximum if spec.maximum is not None else 1e12
            if spec.exclusive_maximum is not None:
                high_f = spec.exclusive_maximum - step
            dbox.setRange(low_f, high_f)
            dbox.valueChanged.connect(on_change)
            return dbox
        if kind == "bool":
            check = QCheckBox()
            check.toggled.connect(on_change)
            return check
        if kind == "enum":
            combo = QComboBox()
            for choice in spec.choices:
                combo.addItem(str(choice), choice)
            combo.currentIndexChanged.connect(on_change)
            return combo
        line = QLineEdit()
        if kind == "secret":
            line.setEchoMode(QLineEdit.EchoMode.Password)
        if kind == "list":
            line.setPlaceholderText("comma-separated values")
        line.textChanged.connect(on_change)
        return line

    def set_value(self, value: Any) -> None:
        self.original = value
        w = self.widget
        w.blockSignals(True)
        try:
            if isinstance(w, QSpinBox):
                w.setValue(int(value) if isinstance(value, int | float) else w.minimum())
            elif isinstance(w, QDoubleSpinBox):
                w.setValue(float(value) if isinstance(value, int | float) else w.minimum())
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QComboBox):
                found = [i for i in range(w.count()) if w.itemData(i) == value]
                w.setCurrentIndex(found[0] if found else 0)
            elif isinstance(w, QLineEdit):
                if self.spec.kind == "secret" and value == MASK:
                    w.setText("")
                    w.setPlaceholderText("set on the device; type to replace")
                else:
                    w.setText(text_of(self.spec, value))
        finally:
            w.blockSignals(False)

    def value(self) -> Any:
        """The edited value; :class:`FieldValueError` when it is not acceptable."""
        w = self.widget
        if isinstance(w, QSpinBox):
            value: Any = w.value()
        elif isinstance(w, QDoubleSpinBox):
            value = round(w.value(), w.decimals())
            if isinstance(self.original, int | float) and abs(value - self.original) < 10**-3:
                value = self.original  # the spin box's rounding is no edit
        elif isinstance(w, QCheckBox):
            value = w.isChecked()
        elif isinstance(w, QComboBox):
            value = w.currentData()
        elif isinstance(w, QLineEdit):
            if self.spec.kind == "secret" and self.original == MASK and not w.text():
                return MASK
            return parse_text(self.spec, w.text())
        else:  # pragma: no cover - every kind has a widget above
            raise FieldValueError("unsupported field")
        validate(self.spec, value)
        return value

    def set_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))
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
        self.version_label.setText(f"Version {version} on the device")
        self._set_enabled(True)
        self._update_pending()
        if self.message.text() == _LOADING:
            self.show_message("")

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
                info.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
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
        for path, reason in by_path.items():
            target = nearest_field(path, known)
            if target is None:
                unplaced.append(f"{path}: {reason}")
                continue
            prefix = "" if target == path else f"{path}: "
            self.fields[target].set_error(prefix + reason)
            self.form_area.ensureWidgetVisible(self.fields[target].container)
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

    def _group_box(self, group: GroupSpec) -> QGroupBox:
        box = QGroupBox(group.title)
        box.setToolTip(group.description)
        outer = QVBoxLayout(box)
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
