"""From outbox rows to ingest batches: the mapping (pure) and the store calls (blocking).

One outbox row is one :class:`fleet_common.wire.cloud.IngestEvent`: ``key`` its idempotency key
(the cloud stores each (device, key) once), ``seq`` its id, ``kind`` the event's kind, ``topic``,
``ts`` its ``created_at`` and ``payload``. A row whose kind the cloud does not take (not one of
:data:`EVENT_KINDS`, or unknown: a row written before the outbox kept kinds, whose event was
pruned since) can never be sent: it is marked rejected (kept, with the reason) instead of
blocking the rows behind it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final, get_args

from edge.store import OutboxItem, Store
from edge.sync.client import encode_batch
from fleet_common.timefmt import rfc3339
from fleet_common.wire.cloud import MAX_KEY, EventKind

log = logging.getLogger("edge.sync")

EVENT_KINDS: Final = frozenset(get_args(EventKind))
MAX_TOPIC: Final = 40


def to_wire(item: OutboxItem) -> dict[str, Any]:
    """The ingest event of one row (its kind must be one of :data:`EVENT_KINDS`)."""
    return {
        "key": item.idempotency_key, "seq": item.id, "kind": item.kind,
        "topic": item.topic[:MAX_TOPIC], "ts": rfc3339(item.created_at), "payload": item.payload,
    }  # fmt: skip


def unsendable(item: OutboxItem) -> str | None:
    """Why the cloud could never take this row as it is, or None."""
    if item.kind not in EVENT_KINDS:
        what = "unknown" if item.kind is None else repr(item.kind)
        return f"event kind {what} is not one the cloud takes"
    payload: object = item.payload  # JSON from the file: typed a dict, checked all the same
    if not isinstance(payload, dict):
        return "the payload is not a JSON object"
    if not 0 < len(item.idempotency_key) <= MAX_KEY:
        return "the idempotency key is empty or too long"
    return None


@dataclass(frozen=True, slots=True)
class Batch:
    items: list[OutboxItem]  # to send, oldest first
    body: bytes  # gzipped ingest body of ``items`` (empty when there are none)
    rejected: dict[str, int] = field(default_factory=dict)  # rows set aside now, by reason
    pending: int = 0  # rows still to send (this batch included)
    refused: int = 0  # rows rejected so far

    @property
    def ids(self) -> list[int]:
        return [i.id for i in self.items]


def next_batch(store: Store, limit: int) -> Batch:
    """The oldest sendable rows (up to ``limit``) as a gzipped body. Rows that can never be sent
    are marked rejected on the way. Blocking: call from a worker thread."""
    rows = store.outbox_pending(limit)
    sendable: list[OutboxItem] = []
    rejected: dict[str, list[int]] = {}
    for row in rows:
        why = unsendable(row)
        if why is None:
            sendable.append(row)
        else:
            rejected.setdefault(why, []).append(row.id)
    for why, ids in rejected.items():
        log.warning("sync: %d outbox rows set aside, never sent: %s", len(ids), why)
        store.outbox_reject(ids, why)
    body = encode_batch([to_wire(i) for i in sendable]) if sendable else b""
    pending, refused = store.outbox_counts()
    return Batch(sendable, body, {w: len(ids) for w, ids in rejected.items()}, pending, refused)


def acknowledge(store: Store, ids: list[int]) -> tuple[int, int]:
    """The cloud has these rows: delete them; the counts afterwards. Blocking."""
    store.outbox_ack(ids)
    return store.outbox_counts()
