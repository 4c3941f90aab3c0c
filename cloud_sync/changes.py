"""Domain events: every change to tenants, users, keys and devices, and every remote command,
is announced here, inside the transaction that makes it.

The audit log and webhooks (issue C2) subscribe through :class:`ChangeHook`: a hook that writes
audit rows on ``conn`` commits or rolls back with the change itself. Until then the hook does
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
class Change:
    """``kind`` names what happened (``user.added``, ``device.revoked``, ``command.queued``...).

    ``actor`` is a user id, ``device:ID``, or ``cli`` for the command line. ``before`` and
    ``after`` are the subject's public fields (never a password, hash or key)."""

    kind: str
    org_id: str
    actor: str
    subject: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class ChangeHook(Protocol):
    def __call__(self, conn: Connection, change: Change) -> None: ...


def no_hook(conn: Connection, change: Change) -> None:
    """The default: nothing subscribes yet."""
