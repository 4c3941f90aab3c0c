"""The devices' one state (:mod:`console.services.status`) as Qt signals.

The wall and the alerts presenters report to :attr:`StatusPresenter.states`; the sidebar, the
status bar's count, the wall tiles and the alerts read :meth:`StatusPresenter.state` when
``stateChanged(key)`` says it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, Signal

from console.presenters.base import Presenter
from console.services.status import DeviceState, DeviceStates


class StatusPresenter(Presenter):
    stateChanged = Signal(str, object)  # device key, DeviceState

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.states = DeviceStates(on_change=self._changed)

    def state(self, key: str) -> DeviceState:
        return self.states.state(key)

    def summary(self, keys: Iterable[str]) -> str:
        return self.states.summary(keys)

    def forget(self, key: str) -> None:
        self.states.forget(key)

    def _changed(self, key: str, state: DeviceState) -> None:
        if not self.closed:
            self.stateChanged.emit(key, state)


StateOf = Callable[[str], DeviceState]
