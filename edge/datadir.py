"""The data folder: private to the edge's user, and known to be writable before serving.

It holds the API key hashes, the store (plate reads, events, config versions) and the config
file the API writes: nothing for other local users. A folder the edge creates is ``0700`` and
its files ``0600`` whatever the umask (under systemd, ``StateDirectoryMode`` and ``UMask`` say
the same); a folder that exists already keeps the mode its owner gave it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Final

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) if missing; the folder itself ``0700``. Raises OSError."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=DIR_MODE)
    os.chmod(path, DIR_MODE)  # mkdir's mode is cut by the umask; 0700 is what we mean


def private_file(path: Path) -> None:
    """Create ``path`` empty and ``0600`` if missing, or make an existing one ``0600``.

    For files another library creates (SQLite's database; its ``-wal`` and ``-shm`` files take
    the database file's mode). Raises OSError.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def check_writable(path: Path) -> None:
    """Make the folder if needed and write a file in it; OSError if either fails."""
    ensure_private_dir(path)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: permission denied")
    with tempfile.TemporaryFile(dir=path):  # the real test: root ignores mode bits, RO mounts don't
        pass
