"""Python's cyclic garbage collector on the GUI thread only.

CPython runs a collection in whichever thread happens to allocate when a threshold is crossed:
in a console that is often a JPEG-decoding worker. A Qt object that dies in such a collection is
destroyed off its thread ("QObject::~QObject: Timers cannot be stopped from another thread", and
at worst a crash in Qt's event processing). :func:`gui_thread_gc` switches automatic collection
off and collects from a timer on the GUI thread instead (pyqtgraph's ``GarbageCollector``, which
does the same generational checks CPython would).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gui_thread_gc"]


@contextmanager
def gui_thread_gc(interval_s: float = 1.0) -> Iterator[None]:
    """Inside: no automatic collection; the GUI thread collects every ``interval_s`` as needed.

    Needs the QApplication. On the way out: a full collection here, and automatic collection
    back as it was.
    """
    from pyqtgraph.util.garbage_collector import (  # type: ignore[import-untyped]
        GarbageCollector,
    )

    was_enabled = gc.isenabled()
    collector = GarbageCollector(interval=interval_s)  # disables automatic collection
    try:
        yield
    finally:
        collector.timer.stop()
        gc.collect()
        if was_enabled:
            gc.enable()
