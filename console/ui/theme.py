"""Light and dark themes (QPalette on the Fusion style); "system" follows the desktop's colour
scheme and changes with it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from console.services.settings import ThemeMode

_Role = QPalette.ColorRole
_Group = QPalette.ColorGroup


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor(30, 32, 36), QColor(45, 48, 54), QColor(225, 228, 232)
    for role, colour in (
        (_Role.Window, window), (_Role.WindowText, text), (_Role.Base, base),
        (_Role.AlternateBase, QColor(38, 41, 46)), (_Role.ToolTipBase, window),
        (_Role.ToolTipText, text), (_Role.Text, text), (_Role.Button, window),
        (_Role.ButtonText, text), (_Role.BrightText, QColor(255, 80, 80)),
        (_Role.Highlight, QColor(42, 130, 218)), (_Role.HighlightedText, QColor(255, 255, 255)),
        (_Role.Link, QColor(90, 160, 255)), (_Role.PlaceholderText, QColor(140, 144, 150)),
        (_Role.Mid, QColor(70, 74, 80)), (_Role.Dark, QColor(20, 21, 24)),
    ):  # fmt: skip
        p.setColor(role, colour)
    disabled = QColor(120, 124, 130)
    for role in (_Role.WindowText, _Role.Text, _Role.ButtonText):
        p.setColor(_Group.Disabled, role, disabled)
    return p


def light_palette() -> QPalette:
    app = QApplication.instance()
    style = app.style() if isinstance(app, QApplication) else None
    return style.standardPalette() if style is not None else QPalette()


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def resolve(mode: ThemeMode) -> ThemeMode:
    """``"system"`` → what the desktop uses now."""
    if mode == "system":
        return "dark" if system_is_dark() else "light"
    return mode


def apply_theme(app: QApplication, mode: ThemeMode) -> ThemeMode:
    """Apply ``mode``; returns the theme in effect ("light" or "dark")."""
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")  # the one style that honours a palette on every platform
    effective = resolve(mode)
    app.setPalette(dark_palette() if effective == "dark" else light_palette())
    return effective


def next_mode(mode: ThemeMode) -> ThemeMode:
    """Ctrl+T cycles system → light → dark → system."""
    order: tuple[ThemeMode, ...] = ("system", "light", "dark")
    return order[(order.index(mode) + 1) % len(order)]
