"""The console's API keys per device, in a small JSON file only the user can read.

``{"version": 1, "keys": {device_key: api_key}}`` in the user's config folder (the app passes
platformdirs' ``user_config_dir``). The file is created with mode 0600 (its folder 0700),
tightened back to 0600 with a warning if someone loosened it, and replaced atomically on every
change, so a crash never leaves half a file. A corrupt or unreadable file raises
:class:`CredentialStoreError` naming the file, and is never overwritten: the app can show the
error and offer :meth:`CredentialStore.move_aside`.

Writes are a few hundred bytes on a user action (entering a key), fine on the loop thread.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path

from console.services.errors import CredentialStoreError
from fleet_common.files import atomic_write_text

log = logging.getLogger("console.credentials")

FORMAT_VERSION = 1
_PRIVATE = 0o600


class CredentialStore:
    """API keys by device key; see the module docstring."""

    def __init__(self, path: Path) -> None:
        """Read ``path`` if it exists. Raises :class:`CredentialStoreError`."""
        self.path = path
        self._keys: dict[str, str] = self._load()

    def get(self, device_key: str) -> str | None:
        return self._keys.get(device_key)

    def set(self, device_key: str, api_key: str) -> None:
        """Store ``api_key`` for ``device_key`` (written at once). Raises
        :class:`CredentialStoreError` when the file cannot be written."""
        if not device_key or not api_key:
            raise ValueError("device key and API key must not be empty")
        if self._keys.get(device_key) == api_key:
            return
        self._save({**self._keys, device_key: api_key})

    def delete(self, device_key: str) -> None:
        """Forget the key of ``device_key`` (written at once)."""
        if device_key in self._keys:
            self._save({k: v for k, v in self._keys.items() if k != device_key})

    def keys(self) -> list[str]:
        """The device keys that have an API key."""
        return sorted(self._keys)

    @staticmethod
    def move_aside(path: Path) -> Path:
        """Rename an unusable credential file to ``NAME.corrupt-TIMESTAMP`` (kept for a person
        to look at) so a new one can be started; returns the new name."""
        target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.rename(target)
        except OSError as err:
            raise CredentialStoreError(path, f"cannot move the file aside: {err}") from err
        log.warning("moved the unusable credential file %s to %s", path, target)
        return target

    # ------------------------------------------------------------------ file
    def _load(self) -> dict[str, str]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise CredentialStoreError(self.path, f"cannot read: {err.strerror or err}") from err
        try:
            self._tighten(fd)
            with os.fdopen(fd, "rb") as fh:
                raw = fh.read()
        except OSError as err:
            raise CredentialStoreError(self.path, f"cannot read: {err.strerror or err}") from err
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise CredentialStoreError(
                self.path, f"not a credential file (corrupt JSON: {err})"
            ) from err
        keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(keys, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in keys.items()
        ):
            raise CredentialStoreError(
                self.path, 'not a credential file (expected {"version": 1, "keys": {...}})'
            )
        if data.get("version") != FORMAT_VERSION:
            raise CredentialStoreError(
                self.path, f"unsupported version {data.get('version')!r} (expected 1)"
            )
        return dict(keys)

    def _tighten(self, fd: int) -> None:
        if os.name == "nt":  # Windows: the per-user profile folder is what protects it
            return
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            log.warning(
                "credential file %s was readable by others (mode %o): set to 600", self.path, mode
            )
            os.fchmod(fd, _PRIVATE)

    def _save(self, keys: dict[str, str]) -> None:
        """Write ``keys``, then keep them: a failed write changes nothing, in memory or on disk."""
        text = json.dumps({"version": FORMAT_VERSION, "keys": dict(sorted(keys.items()))}, indent=2)
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write_text(self.path, text + "\n", mode=_PRIVATE)
        except OSError as err:
            raise CredentialStoreError(self.path, f"cannot write: {err.strerror or err}") from err
        self._keys = keys
