"""The console's settings over QSettings, with what only Qt stores: the main window's geometry.

Keys, defaults and checks are Qt-free, in :class:`console.services.settings.ConsoleSettings`;
presenters take that type, so they are tested with any store.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

from console.services.settings import ConsoleSettings


class QtConsoleSettings(ConsoleSettings):
    """:class:`ConsoleSettings` in a QSettings (the registry on Windows, an ini file under
    ~/.config on Linux)."""

    def __init__(self, qsettings: QSettings) -> None:
        super().__init__(qsettings)
        self.qsettings = qsettings

    @property
    def window_geometry(self) -> QByteArray | None:
        """The main window's size, position and maximised/full-screen state
        (``QWidget.saveGeometry``) when it last closed; None the first time."""
        value = self.qsettings.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @window_geometry.setter
    def window_geometry(self, geometry: QByteArray) -> None:
        self.qsettings.setValue("window/geometry", geometry)
