"""Passwords hashed with argon2id (argon2-cffi). Hashing costs tens of milliseconds of CPU on
purpose: call from a worker thread, never on the event loop."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cloud_sync.errors import Invalid

MIN_LENGTH = 8
MAX_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class HashCost:
    """argon2 parameters for new hashes (a stored hash keeps its own). Tests use cheap ones."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4


class Passwords:
    def __init__(self, cost: HashCost | None = None) -> None:
        cost = cost or HashCost()
        self._hasher = PasswordHasher(
            time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism
        )
        # Verified when the e-mail is unknown, so the answer takes as long as for a known one.
        self._dummy = self._hasher.hash("not a password of anyone")

    def hash(self, password: str) -> str:
        if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
            raise Invalid(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; None (no such account) takes as long."""
        try:
            ok = self._hasher.verify(stored if stored is not None else self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and stored is not None
