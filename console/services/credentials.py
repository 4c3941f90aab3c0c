"""The console's API keys per device: in the OS keyring when there is one, else in a small JSON
file only the user can read. :func:`open_credentials` chooses; never both.

**Keyring** (:class:`KeyringCredentialStore`; the optional ``keyring`` package): one entry per
device (service ``carwash-console``, user name the device key) in the Secret Service (GNOME
Keyring, KWallet), the macOS Keychain or the Windows Credential Manager. A keyring cannot list
its entries, so the device keys (not secret) are listed in ``credentials-keyring.json`` beside
where the file would be; the keys are read once, when the store opens (a keyring call blocks,
and may ask the user to unlock the keyring: at start-up, not on every poll). Keys found in the
file are moved into the keyring and the file is deleted; with the keyring switched off
(``use_keyring=False``: the app's ``CARWASH_CONSOLE_KEYRING=0``) they are moved back.

**File** (:class:`CredentialStore`):
``{"version": 1, "keys": {device_key: api_key}}`` in the user's config folder (the app passes
platformdirs' ``user_config_dir``). The file is created with mode 0600 (its folder 0700),
tightened back to 0600 with a warning if someone loosened it, and replaced atomically on every
change, so a crash never leaves half a file. A corrupt or unreadable file raises
:class:`CredentialStoreError` naming the file, and is never overwritten: the app can show the
error and offer :meth:`CredentialStore.move_aside`.

Writes are a few hundred bytes on a user action (entering a key), fine on the loop thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

from console.services.errors import CredentialStoreError
from fleet_common.files import atomic_write_text

log = logging.getLogger("console.credentials")

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

FORMAT_VERSION = 1
_PRIVATE = 0o600
KEYRING_SERVICE: Final = "carwash-console"
KEYRING_INDEX: Final = "credentials-keyring.json"
T = TypeVar("T")


class Credentials(Protocol):
    """What the console needs of a credential store (either kind)."""

    def get(self, device_key: str) -> str | None: ...
    def set(self, device_key: str, api_key: str) -> None: ...
    def delete(self, device_key: str) -> None: ...
    def keys(self) -> list[str]: ...
    def items(self) -> list[tuple[str, str]]: ...


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

    def items(self) -> list[tuple[str, str]]:
        """(device key, API key), by device key."""
        return sorted(self._keys.items())

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
        _write_private(self.path, {"version": FORMAT_VERSION, "keys": dict(sorted(keys.items()))})
        self._keys = keys


def _write_private(path: Path, data: object) -> None:
    """``data`` as JSON at ``path``, atomically, mode 0600 (its folder made 0700)."""
    text = json.dumps(data, indent=2)
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write_text(path, text + "\n", mode=_PRIVATE)
    except OSError as err:
        raise CredentialStoreError(path, f"cannot write: {err.strerror or err}") from err


# ---------------------------------------------------------------------- OS keyring
class KeyringCredentialStore:
    """API keys by device key in an OS keyring; see the module docstring."""

    def __init__(
        self, backend: KeyringBackend, index_path: Path, service: str = KEYRING_SERVICE
    ) -> None:
        """Read the index and every key it lists. Raises :class:`CredentialStoreError`."""
        self.backend = backend
        self.path = index_path
        self.service = service
        listed = self._load_index()
        self._keys: dict[str, str] = {}
        for device_key in listed:
            api_key = self._call("read", backend.get_password, service, device_key)
            if api_key:
                self._keys[device_key] = api_key
        if len(self._keys) != len(listed):  # removed by hand in the keyring's own program
            self._save_index(self._keys)

    def __repr__(self) -> str:
        return f"<KeyringCredentialStore {type(self.backend).__name__}, {len(self._keys)} keys>"

    def get(self, device_key: str) -> str | None:
        return self._keys.get(device_key)

    def set(self, device_key: str, api_key: str) -> None:
        """Store ``api_key`` in the keyring (at once). Raises :class:`CredentialStoreError`."""
        if not device_key or not api_key:
            raise ValueError("device key and API key must not be empty")
        if self._keys.get(device_key) == api_key:
            return
        self._call("write", self.backend.set_password, self.service, device_key, api_key)
        keys = {**self._keys, device_key: api_key}
        if device_key not in self._keys:
            self._save_index(keys)
        self._keys = keys

    def delete(self, device_key: str) -> None:
        if device_key not in self._keys:
            return
        from keyring.errors import PasswordDeleteError

        try:
            self._call("delete", self.backend.delete_password, self.service, device_key)
        except CredentialStoreError as err:
            if not isinstance(err.__cause__, PasswordDeleteError):  # gone already: fine
                raise
        keys = {k: v for k, v in self._keys.items() if k != device_key}
        self._save_index(keys)
        self._keys = keys

    def keys(self) -> list[str]:
        return sorted(self._keys)

    def items(self) -> list[tuple[str, str]]:
        return sorted(self._keys.items())

    def _call(self, what: str, fn: Callable[..., T], *args: str) -> T:
        from keyring.errors import KeyringError

        try:
            return fn(*args)
        except KeyringError as err:
            raise CredentialStoreError(
                self.path, f"the OS keyring failed to {what} an API key: {err}"
            ) from err

    def _load_index(self) -> list[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise CredentialStoreError(self.path, f"unreadable keyring index: {err}") from err
        devices = data.get("devices") if isinstance(data, dict) else None
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise CredentialStoreError(
                self.path, 'not a keyring index (expected {"version": 1, "devices": [...]})'
            )
        return list(devices)

    def _save_index(self, keys: dict[str, str]) -> None:
        index = {"version": FORMAT_VERSION, "service": self.service, "devices": sorted(keys)}
        _write_private(self.path, index)

    def remove_all(self) -> None:
        """Delete every key from the keyring, then the index (moving back to the file)."""
        for device_key in self.keys():
            self.delete(device_key)
        self.path.unlink(missing_ok=True)


def usable_keyring(environ: Mapping[str, str] = os.environ) -> KeyringBackend | None:
    """The OS keyring if there is a real one: not ``keyring``'s fail or null backends, nor a
    chainer with nothing to chain, nor one below priority 1 (keyrings.alt's plain-text file,
    no better than ours, and its encrypted one, which asks for a password on stdin). None when
    the ``keyring`` package is not installed."""
    if (
        sys.platform.startswith("linux")
        and not environ.get("DBUS_SESSION_BUS_ADDRESS")
        and not environ.get("PYTHON_KEYRING_BACKEND")
    ):
        # Linux's keyrings (Secret Service, KWallet) are reached over the session bus, found
        # by this variable: without it there is none, and importing keyring to learn so costs
        # a few hundred milliseconds of start-up (a site PC kiosk, an SSH session, CI).
        return None
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
        priority = float(backend.priority)
    except Exception as err:  # a broken backend plugin must not stop the console
        log.warning("no OS keyring: %s", err)
        return None
    if isinstance(backend, fail.Keyring) or priority < 1:
        log.debug("no usable OS keyring (%s, priority %s)", type(backend).__name__, priority)
        return None
    return backend


def open_credentials(path: Path, *, use_keyring: bool = True) -> Credentials:
    """The store to use: the OS keyring when ``use_keyring`` and :func:`usable_keyring` finds
    one (keys found in the file at ``path`` are moved into it), else the file at ``path`` (keys
    left in the keyring by an earlier run are moved back when the keyring can still be read).
    Raises :class:`CredentialStoreError` (e.g. a corrupt file, which is left as it is)."""
    index = path.with_name(KEYRING_INDEX)
    backend = usable_keyring() if use_keyring or index.exists() else None
    if backend is None:
        if index.exists():
            log.warning(
                "API keys listed in %s are in an OS keyring that is not available now; they"
                " must be entered again (or the keyring restored)", index,
            )  # fmt: skip
        return CredentialStore(path)
    try:
        store = KeyringCredentialStore(backend, index)
    except CredentialStoreError as err:
        from keyring.errors import KeyringError

        if not isinstance(err.__cause__, KeyringError):  # e.g. a corrupt index
            raise
        # Locked, or the unlock prompt was dismissed: this run works without the keys (the
        # user is told by the pages), none are lost, and a key entered now goes to the file.
        log.warning("%s; API keys go to %s for now", err.message, path)
        return CredentialStore(path)
    if not use_keyring:
        return _move_to_file(store, path)
    if path.exists():
        file = CredentialStore(path)
        moved: list[str] = []
        try:
            for device_key, api_key in file.items():
                store.set(device_key, api_key)
                moved.append(device_key)
        except CredentialStoreError as err:
            log.warning("keeping the API keys in %s: %s", path, err)
            for device_key in moved:  # never both: undo what got into the keyring
                with contextlib.suppress(CredentialStoreError):
                    store.delete(device_key)
            return file
        try:
            path.unlink()
        except OSError as err:
            log.warning("the API keys are in the OS keyring now, but %s could not be deleted"
                        " (%s): delete it by hand", path, err.strerror or err)  # fmt: skip
        log.info("moved %d API keys from %s into the OS keyring", len(moved), path)
    log.info("API keys in the OS keyring (%s)", type(backend).__name__)
    return store


def _move_to_file(store: KeyringCredentialStore, path: Path) -> CredentialStore:
    file = CredentialStore(path)
    for device_key, api_key in store.items():
        file.set(device_key, api_key)
    count = len(store.items())
    store.remove_all()
    log.info("the OS keyring is switched off: moved %d API keys into %s", count, path)
    return file
