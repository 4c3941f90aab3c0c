"""The main window: sidebar of sites and devices, a stack of pages, menus and shortcuts.

Pages are added by the app (:meth:`MainWindow.add_page`); the window knows nothing of services.
Shortcuts: Ctrl+1..5 pages (in the order added, unless given), F11 full screen, Ctrl+T theme,
Ctrl+Q quit, Ctrl+E add an edge.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QSplitter,
    QStackedWidget,
    QWidget,
)

from console.ui.sidebar import Sidebar


@dataclass
class Page:
    key: str
    title: str
    widget: QWidget
    action: QAction


class MainWindow(QMainWindow):
    """``deviceActivated(key)`` when a device is chosen in the sidebar; ``pageShown(key)``."""

    deviceActivated = Signal(str)
    pageShown = Signal(str)
    themeToggled = Signal()
    closing = Signal()

    def __init__(self, sidebar: Sidebar | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Carwash Console")
        self.resize(1280, 800)
        self.sidebar = sidebar if sidebar is not None else Sidebar(self)
        self.sidebar.deviceActivated.connect(self.deviceActivated)
        self.stack = QStackedWidget(self)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.sidebar)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([240, 1040])
        self.splitter = splitter
        self.setCentralWidget(splitter)
        self.pages: dict[str, Page] = {}
        self.status_label = QLabel(self)
        self.statusBar().addPermanentWidget(self.status_label)
        self._build_menus()

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.add_edge_action = QAction("&Add edge…", self)
        self.add_edge_action.setShortcut(QKeySequence("Ctrl+E"))
        self.add_edge_action.triggered.connect(self.sidebar.ask_for_edge)
        file_menu.addAction(self.add_edge_action)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Quit))
        self.quit_action.setShortcuts([QKeySequence("Ctrl+Q")])
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)

        self.view_menu = bar.addMenu("&View")
        self.page_group = QActionGroup(self)
        self.page_group.setExclusive(True)
        self.view_menu.addSeparator()
        self.fullscreen_action = QAction("&Full screen", self)
        self.fullscreen_action.setCheckable(True)
        self.fullscreen_action.setShortcut(QKeySequence("F11"))
        self.fullscreen_action.toggled.connect(self.set_full_screen)
        self.theme_action = QAction("Switch &theme", self)
        self.theme_action.setShortcut(QKeySequence("Ctrl+T"))
        self.theme_action.triggered.connect(self.themeToggled)
        self.sidebar_action = QAction("&Sidebar", self)
        self.sidebar_action.setCheckable(True)
        self.sidebar_action.setChecked(True)
        self.sidebar_action.toggled.connect(self.sidebar.setVisible)
        for action in (self.fullscreen_action, self.theme_action, self.sidebar_action):
            self.view_menu.addAction(action)
        self._page_separator = self.view_menu.actions()[0]
        # Actions on the window itself too: their shortcuts then work with the menu bar hidden
        # (full screen) and whichever child has the focus.
        self.addActions([self.add_edge_action, self.quit_action, self.fullscreen_action,
                         self.theme_action, self.sidebar_action])  # fmt: skip

    # ------------------------------------------------------------------ pages
    def add_page(
        self, key: str, title: str, widget: QWidget, shortcut: str | None = None
    ) -> QAction:
        """Add a page; ``shortcut`` defaults to Ctrl+N for the first five pages."""
        if key in self.pages:
            raise ValueError(f"page {key!r} exists already")
        if shortcut is None and len(self.pages) < 5:
            shortcut = f"Ctrl+{len(self.pages) + 1}"
        action = QAction(title, self)
        action.setCheckable(True)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False, k=key: self.show_page(k))
        self.page_group.addAction(action)
        self.view_menu.insertAction(self._page_separator, action)
        self.addAction(action)
        self.stack.addWidget(widget)
        self.pages[key] = Page(key, title, widget, action)
        if len(self.pages) == 1:
            self.show_page(key)
        return action

    def show_page(self, key: str) -> None:
        page = self.pages[key]
        self.stack.setCurrentWidget(page.widget)
        page.action.setChecked(True)
        self.setWindowTitle(f"{page.title} — Carwash Console")
        self.pageShown.emit(key)

    def set_page_title(self, key: str, title: str) -> None:
        """E.g. "Alerts (3)"."""
        page = self.pages[key]
        page.title = title
        page.action.setText(title)
        if self.stack.currentWidget() is page.widget:
            self.setWindowTitle(f"{title} — Carwash Console")

    @property
    def current_page(self) -> str | None:
        widget = self.stack.currentWidget()
        for page in self.pages.values():
            if page.widget is widget:
                return page.key
        return None

    # ------------------------------------------------------------------ window state
    def set_full_screen(self, on: bool) -> None:
        if on:
            self.showFullScreen()
        else:
            self.showNormal()
        if self.fullscreen_action.isChecked() != on:
            self.fullscreen_action.setChecked(on)

    def show_status(self, text: str, timeout_ms: int = 8000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def set_summary(self, text: str) -> None:
        """The permanent part of the status bar, e.g. "4 edges, 3 online"."""
        self.status_label.setText(text)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closing.emit()
        super().closeEvent(event)
