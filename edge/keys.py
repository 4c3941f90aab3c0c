"""API keys: random tokens with a role, stored hashed in a small JSON file in the data folder.

A key reads ``cwe_<id>_<secret>``. The id (8 hex digits) finds the entry; the SHA-256 of the whole
key is compared with :func:`hmac.compare_digest`. Keys are 256-bit random, so a fast hash is the
right one (a password hash such as argon2 protects low-entropy secrets and would cost
milliseconds on every request). The file is re-read when it changes, so keys created or revoked
with ``carwash-edge keys`` apply to a running edge within a second.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from edge.datadir import FILE_MODE, ensure_private_dir
from edge.errors import KeyStoreError
from fleet_common.files import atomic_write_text

Role = Literal["viewer", "operator", "admin"]
ROLES: Final[tuple[Role, ...]] = ("viewer", "operator", "admin")
ROLE_RANK: Final[dict[str, int]] = {role: rank for rank, role in enumerate(ROLES)}
KEY_PREFIX: Final = "cwe_"
KEYS_FILE: Final = "api_keys.json"
_RELOAD_CHECK_S: Final = 1.0
_VERIFIED_CACHE_SIZE: Final = 1024
# Compared against when the id is unknown, so a miss costs the same as a wrong secret.
_DUMMY_HASH: Final = hashlib.sha256(b"carwash-no-such-key").hexdigest()


@dataclass(frozen=True, slots=True)
class KeyEntry:
    id: str
    role: Role
    hash: str
    label: str
    created_at: str


def role_allows(have: str, need: str) -> bool:
    return ROLE_RANK[have] >= ROLE_RANK[need]


def _parse_entry(item: dict[str, str]) -> KeyEntry:
    entry = KeyEntry(**item)  # type: ignore[arg-type]
    if entry.role not in ROLES:
        raise ValueError(f"unknown role {entry.role!r}")
    return entry


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    """The key file of one data folder. Thread-safe; verification does no I/O but a ``stat``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, KeyEntry] = {}
        self._mtime_ns: int | None = None
        self._next_check = 0.0
        # Keys verified since the file was last read: skips hashing on the hot path. Looked up
        # by the whole key (Python's string hash is randomised per process, so the lookup time
        # tells an attacker nothing); cleared whenever the file changes, so revocation holds.
        self._verified: dict[str, KeyEntry] = {}
        self._load()

    @classmethod
    def in_dir(cls, data_dir: Path) -> KeyStore:
        return cls(data_dir / KEYS_FILE)

    # ------------------------------------------------------------------ reading
    def _load(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._entries, self._mtime_ns, self._verified = {}, None, {}
            return
        except OSError as err:
            raise KeyStoreError(f"cannot read {self.path}: {err}") from err
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            entries = {entry.id: entry for entry in map(_parse_entry, raw["keys"])}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise KeyStoreError(f"{self.path} is not a valid key file: {err}") from err
        self._entries, self._mtime_ns = entries, stat.st_mtime_ns
        self._verified = {}

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + _RELOAD_CHECK_S
        try:
            mtime: int | None = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        except OSError:
            return  # keep the keys we have
        if mtime != self._mtime_ns:
            try:
                self._load()
            except KeyStoreError:
                return  # a half-edited file by hand: keep the last good keys

    def verify(self, key: str) -> KeyEntry | None:
        """The entry of a valid key, else None. Constant time in the secret."""
        with self._lock:
            self._maybe_reload()
            entries, verified = self._entries, self._verified
        known = verified.get(key)
        if known is not None:
            return known
        entry = None
        if key.startswith(KEY_PREFIX):
            entry = entries.get(key[len(KEY_PREFIX) : len(KEY_PREFIX) + 8])
        expected = entry.hash if entry is not None else _DUMMY_HASH
        if hmac.compare_digest(_hash(key), expected) and entry is not None:
            if len(verified) < _VERIFIED_CACHE_SIZE:
                verified[key] = entry
            return entry
        return None

    def list(self) -> list[KeyEntry]:
        with self._lock:
            self._load()
            return sorted(self._entries.values(), key=lambda e: e.created_at)

    # ------------------------------------------------------------------ writing (CLI, admin API)
    def create(self, role: Role, label: str = "") -> tuple[str, KeyEntry]:
        """Make a key; returns ``(key, entry)``. The key itself is never stored."""
        if role not in ROLES:
            raise KeyStoreError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        with self._lock:
            self._load()
            key_id = secrets.token_hex(4)
            while key_id in self._entries:
                key_id = secrets.token_hex(4)
            key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            entry = KeyEntry(
                id=key_id,
                role=role,
                hash=_hash(key),
                label=label,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            self._write({**self._entries, key_id: entry})
            return key, entry

    def revoke(self, key_id: str) -> KeyEntry:
        with self._lock:
            self._load()
            entry = self._entries.get(key_id)
            if entry is None:
                raise KeyStoreError(f"no key with id {key_id!r}")
            self._write({k: v for k, v in self._entries.items() if k != key_id})
            return entry

    def _write(self, entries: dict[str, KeyEntry]) -> None:
        payload = json.dumps(
            {"version": 1, "keys": [asdict(e) for e in entries.values()]}, indent=2
        )
        try:
            ensure_private_dir(self.path.parent)  # `keys create` may be the first to make it
            atomic_write_text(self.path, payload, mode=FILE_MODE)
            self._mtime_ns = self.path.stat().st_mtime_ns
        except OSError as err:
            raise KeyStoreError(f"cannot write {self.path}: {err}") from err
        self._entries, self._verified = entries, {}
