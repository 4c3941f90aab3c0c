"""Logging set-up shared by every program: plain lines for people, JSON lines for machines.

Component loggers are named after the domain (``edge.camera``, ``edge.api``) and use lazy
``%`` formatting. Messages go to stderr, which journald captures on a Pi.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Final

LEVELS: Final = ("debug", "info", "warning", "error", "critical")

_PLAIN_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` and ``exc`` if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "info", *, json_lines: bool = False) -> None:
    """Configure the root logger once, replacing handlers a previous call installed."""
    if level.lower() not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(_PLAIN_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


class QuietLogger:
    """Log a repeating error once at WARNING, then at DEBUG, counting repeats.

    Reconnect loops use it so a camera that is down for a day writes one warning, not 86,400.
    Call :meth:`reset` once things work again so the next failure is reported loudly.
    """

    __slots__ = ("_last", "_logger", "repeats")

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._last: str | None = None
        self.repeats = 0

    def failure(self, msg: str, *args: object) -> None:
        text = msg % args if args else msg
        if text != self._last:
            self._last = text
            self.repeats = 0
            self._logger.warning("%s", text)
        else:
            self.repeats += 1
            self._logger.debug("%s (repeated %d times)", text, self.repeats)

    def reset(self, recovered_msg: str | None = None) -> None:
        if self._last is not None and recovered_msg:
            self._logger.info("%s", recovered_msg)
        self._last = None
        self.repeats = 0
