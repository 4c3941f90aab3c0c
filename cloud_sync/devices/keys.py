"""Device keys: ``cwd_<device id>_<secret>``, stored as SHA-256, compared in constant time.

:class:`KeyCache` lets a heartbeat authenticate without a database round trip: a verified key
is trusted for ``ttl_s`` seconds (so a revocation through another replica takes effect within
that time; through this one, at once). Unknown keys are remembered briefly too, so garbage
keys cannot make every request a database query. Losing the cache costs one lookup per device.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

PREFIX: Final = "cwd_"
TOKEN_PREFIX: Final = "cwe_"  # noqa: S105 - a prefix


@dataclass(frozen=True, slots=True)
class DeviceAuth:
    """An authenticated device: what a device route needs, no more."""

    device_id: str
    org_id: str
    site_id: str


def new_key(device_id: str) -> tuple[str, str]:
    """A new device key and the hash that is stored."""
    key = f"{PREFIX}{device_id}_{secrets.token_urlsafe(32)}"
    return key, key_hash(key)


def new_enrolment_token() -> tuple[str, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    return token, key_hash(token)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def device_of(key: str) -> str | None:
    """The device id a key names, None for something that is not a device key."""
    if not key.startswith(PREFIX):
        return None
    device_id, sep, secret = key[len(PREFIX) :].partition("_")
    return device_id if sep and secret and len(device_id) == 32 else None


def matches(stored_hash: str, key: str) -> bool:
    return hmac.compare_digest(stored_hash.encode(), key_hash(key).encode())


class KeyCache:
    """Key hash → :class:`DeviceAuth` (or None: unknown/revoked) for ``ttl_s``; thread-safe."""

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 200_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, DeviceAuth | None, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str, now: float | None = None) -> tuple[bool, DeviceAuth | None, str]:
        """(hit, device or None, why None: ``unknown`` or ``revoked``)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None or entry[0] < now:
                return False, None, ""
            return True, entry[1], entry[2]

    def put(
        self, digest: str, device: DeviceAuth | None, why: str = "", now: float | None = None
    ) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._entries[digest] = (now + self.ttl_s, device, why)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget_device(self, device_id: str) -> None:
        """Drop every entry of ``device_id`` (revoked or rotated through this replica)."""
        with self._lock:
            stale = [
                d for d, (_, dev, _) in self._entries.items() if dev and dev.device_id == device_id
            ]
            for digest in stale:
                del self._entries[digest]
