"""The crash handler: an uncaught exception (a Qt slot, the asyncio loop) is written to a crash
log and shown in a dialog that says where that log is. The console carries on when it can.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from fleet_common.version import VERSION

log = logging.getLogger("console.crash")

ShowDialog = Callable[[str, Path | None], None]


def write_crash_log(folder: Path, text: str, now: datetime | None = None) -> Path | None:
    """``crash-YYYYmmdd-HHMMSS.log`` in ``folder``; None when it cannot be written."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    path = folder / f"crash-{stamp}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(f"carwash-console {VERSION} on Python {sys.version.split()[0]}\n{text}\n")
    except OSError as err:
        log.warning("cannot write a crash log in %s: %s", folder, err)
        return None
    return path


class CrashHandler:
    """Install with :meth:`install` (``sys.excepthook``) and :meth:`install_loop`."""

    def __init__(self, folder: Path, show: ShowDialog | None = None) -> None:
        self.folder = folder
        self.show = show
        self.crashes: list[Path | None] = []
        self._previous_hook = sys.excepthook

    def install(self) -> None:
        sys.excepthook = self.excepthook

    def uninstall(self) -> None:
        sys.excepthook = self._previous_hook

    def install_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_exception_handler(self.loop_exception)

    def excepthook(
        self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            self._previous_hook(kind, exc, tb)
            return
        self.crashed("".join(traceback.format_exception(kind, exc, tb)), str(exc) or kind.__name__)

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = str(context.get("message", "asyncio error"))
        if not isinstance(exc, BaseException):
            log.warning("event loop: %s", message)  # no exception: nothing crashed
            return
        text = f"{message}\n" + "".join(traceback.format_exception(exc))
        self.crashed(text, str(exc) or type(exc).__name__)

    def crashed(self, text: str, summary: str) -> None:
        path = write_crash_log(self.folder, text)
        self.crashes.append(path)
        log.critical("unexpected error (crash log %s):\n%s", path, text)
        if self.show is not None and len(self.crashes) == 1:  # one dialog, not one per repeat
            try:
                self.show(summary, path)
            except Exception:  # the handler itself must never raise
                log.exception("cannot show the crash dialog")
