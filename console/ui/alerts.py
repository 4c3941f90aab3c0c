"""The alerts panel: active alerts with severity colours; acknowledge (local).

Rows come from :class:`console.presenters.alerts.AlertsPresenter`; acknowledged alerts are
greyed (or hidden) until they clear. The page title's count comes from the presenter's
``activeCountChanged``.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.presenters.alerts import AlertRow, AlertsPresenter

SEVERITY_COLOURS = {"critical": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}
COLUMNS = ("Severity", "Device", "Alert", "Since", "Message", "Source")
KEY_ROLE = Qt.ItemDataRole.UserRole + 1


class AlertsView(QWidget):
    """The list of active alerts of every device."""

    acknowledgeRequested = Signal(str)  # alert key

    def __init__(self, presenter: AlertsPresenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.presenter = presenter
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.ack_button = QPushButton("Acknowledge", self)
        self.ack_button.setToolTip("Acknowledge the selected alerts (Ctrl+K); they stay listed")
        self.ack_all_button = QPushButton("Acknowledge all", self)
        self.show_acked = QCheckBox("Show acknowledged", self)
        self.show_acked.setChecked(True)
        self.summary = QLabel("No active alerts", self)

        bar = QHBoxLayout()
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.show_acked)
        bar.addWidget(self.ack_button)
        bar.addWidget(self.ack_all_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.tree, 1)

        self._rows: list[AlertRow] = []
        self.ack_button.clicked.connect(self.acknowledge_selected)
        self.ack_all_button.clicked.connect(presenter.acknowledge_all)
        QShortcut(QKeySequence("Ctrl+K"), self, self.acknowledge_selected)
        self.show_acked.toggled.connect(lambda _: self.set_rows(self._rows))
        self.acknowledgeRequested.connect(presenter.acknowledge)
        presenter.alertsChanged.connect(self.set_rows)
        self.set_rows(presenter.rows)

    def set_rows(self, rows: list[AlertRow]) -> None:
        selected = set(self.selected_keys())
        self._rows = list(rows)
        self.tree.clear()
        for row in rows:
            if row.acknowledged and not self.show_acked.isChecked():
                continue
            alert = row.alert
            item = QTreeWidgetItem([
                alert.severity, row.device_name, alert.code, _when(alert.since), alert.message,
                row.source + (" · acknowledged" if row.acknowledged else ""),
            ])  # fmt: skip
            item.setData(0, KEY_ROLE, row.key)
            colour = QColor(SEVERITY_COLOURS.get(alert.severity, "#757575"))
            if row.acknowledged:
                colour.setAlpha(110)
                for c in range(len(COLUMNS)):
                    item.setForeground(c, QBrush(QColor(128, 128, 128)))
            item.setBackground(0, QBrush(colour))
            item.setForeground(0, QBrush(QColor("white")))
            self.tree.addTopLevelItem(item)
            item.setSelected(row.key in selected)
        open_count = sum(1 for r in rows if not r.acknowledged)
        self.summary.setText(
            f"{open_count} active alert(s), {len(rows) - open_count} acknowledged"
            if rows
            else "No active alerts"
        )

    def selected_keys(self) -> list[str]:
        return [str(item.data(0, KEY_ROLE)) for item in self.tree.selectedItems()]

    def acknowledge_selected(self) -> None:
        for key in self.selected_keys():
            self.acknowledgeRequested.emit(key)

    def visible_keys(self) -> list[str]:
        keys = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is not None:
                keys.append(str(item.data(0, KEY_ROLE)))
        return keys


def _when(ts: datetime) -> str:
    local = ts.astimezone()
    return (
        local.strftime("%H:%M:%S")
        if local.date() == datetime.now().date()
        else local.strftime("%Y-%m-%d %H:%M")
    )
