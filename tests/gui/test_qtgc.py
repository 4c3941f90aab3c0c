"""Cyclic garbage holding Qt objects is collected on the GUI thread, never in a worker."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any, ClassVar

import pytest
from PySide6.QtCore import QObject, QTimer

from console.qtgc import gui_thread_gc
from tests.gui.conftest import wait_until

pytestmark = [pytest.mark.gui, pytest.mark.asyncio]


class _Cycle:
    """Kept alive only by a reference cycle; with ``qt``, it holds a QObject with a timer."""

    died_in: ClassVar[list[str]] = []

    def __init__(self, *, qt: bool) -> None:
        self.me = self
        if qt:
            self.obj = QObject()
            self.timer = QTimer(self.obj)
            self.timer.start(60_000)

    def __del__(self) -> None:
        _Cycle.died_in.append(threading.current_thread().name)


def _make_garbage_in_a_worker(n: int) -> None:
    for i in range(n):  # plenty of allocations: CPython collects in this thread if it may
        item: dict[str, Any] = {"i": i}
        item["self"] = item


async def test_without_the_guard_cycles_die_in_whichever_thread_allocates() -> None:
    """The hazard (with a plain object: a QObject dying here would be the bug itself)."""
    gc.enable()  # as Python runs by default (the conftest's guard switched it off)
    try:
        _Cycle.died_in.clear()
        _Cycle(qt=False)
        await asyncio.to_thread(_make_garbage_in_a_worker, 200_000)
    finally:
        gc.disable()
    assert _Cycle.died_in
    assert _Cycle.died_in != [threading.main_thread().name]


async def test_with_the_guard_cycles_with_qt_objects_die_on_the_gui_thread() -> None:
    with gui_thread_gc(interval_s=0.05):  # nested in the conftest's: harmless
        assert not gc.isenabled()
        _Cycle.died_in.clear()
        _Cycle(qt=True)
        await asyncio.to_thread(_make_garbage_in_a_worker, 200_000)
        await wait_until(lambda: _Cycle.died_in != [], 5.0, "the GUI-thread collection")
    assert _Cycle.died_in == [threading.main_thread().name]
