"""Where the console writes: a rotating log file in the platform's log folder (plus stderr,
set up by fleet_common), and crash logs next to it."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path
from typing import Final

from platformdirs import user_config_dir, user_log_dir

APP_NAME: Final = "carwash-console"
LOG_FILE: Final = "console.log"
MAX_BYTES: Final = 2 * 1024 * 1024
BACKUPS: Final = 5

_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def log_dir() -> Path:
    """``%LOCALAPPDATA%\\carwash-console\\Logs`` on Windows, ``$XDG_STATE_HOME/carwash-console/
    log`` (``~/.local/state/...``) on Linux."""
    return Path(user_log_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """Where the credential store lives (``$XDG_CONFIG_HOME/carwash-console`` on Linux)."""
    return Path(user_config_dir(APP_NAME, appauthor=False))


def add_file_log(folder: Path | None = None) -> Path | None:
    """Also log to ``console.log`` (rotated at 2 MiB, 5 kept). Returns its path, or None when
    the folder cannot be made (said on stderr; the console runs on without a file)."""
    folder = folder if folder is not None else log_dir()
    path = folder / LOG_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError as err:
        logging.getLogger("console").warning("no log file in %s: %s", folder, err)
        return None
    handler.setFormatter(logging.Formatter(_FORMAT))
    logging.getLogger().addHandler(handler)
    return path


# Qt messages known to be noise on some platforms: logged at DEBUG only.
QT_NOISE: Final = ("This plugin does not support propagateSizeHints()",)


def qt_message_level(kind: str, message: str) -> int:
    """The logging level for a Qt message of ``kind`` ("QtWarningMsg", ...)."""
    if any(message.startswith(noise) for noise in QT_NOISE):
        return logging.DEBUG
    return {
        "QtDebugMsg": logging.DEBUG,
        "QtInfoMsg": logging.INFO,
        "QtWarningMsg": logging.WARNING,
        "QtCriticalMsg": logging.ERROR,
        "QtFatalMsg": logging.CRITICAL,
    }.get(kind, logging.WARNING)
