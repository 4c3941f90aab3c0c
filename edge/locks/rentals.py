"""Rentals in the local store (table ``rentals``). **Blocking**: call through a worker thread.

The cloud learns of a rental through the outbox row of the ``cart`` event that reports the
return (same transaction as that event); this table is the edge's own record, for the API and
the console. It is capped like the store's other tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import delete, func, insert, select

from edge.locks.state import RentalDone
from edge.store import Store
from edge.store.schema import rentals as rt

MAX_RENTALS: Final = 100_000  # years of a busy site; the oldest go first


@dataclass(frozen=True, slots=True)
class Rental:
    id: int
    cart: int
    unlocked_at: float
    taken_at: float
    returned_at: float
    duration_s: float
    event_id: int | None


def add_rental(store: Store, done: RentalDone, event_id: int | None) -> int:
    values = {
        "cart": done.cart, "unlocked_at": done.unlocked_at, "taken_at": done.taken_at,
        "returned_at": done.returned_at, "duration_s": done.duration_s, "event_id": event_id,
    }  # fmt: skip
    with store.transaction(write=True) as conn:
        rental_id = int(conn.execute(insert(rt).values(**values).returning(rt.c.id)).scalar_one())
        conn.execute(delete(rt).where(rt.c.id <= rental_id - MAX_RENTALS))
    return rental_id


def recent_rentals(store: Store, limit: int = 50, cart: int | None = None) -> list[Rental]:
    """The newest rentals first."""
    query = select(rt).order_by(rt.c.id.desc()).limit(limit)
    if cart is not None:
        query = query.where(rt.c.cart == cart)
    with store.transaction(write=False) as conn:
        rows = conn.execute(query).all()
    return [
        Rental(r.id, r.cart, r.unlocked_at, r.taken_at, r.returned_at, r.duration_s, r.event_id)
        for r in rows
    ]


def rental_count(store: Store) -> int:
    with store.transaction(write=False) as conn:
        return int(conn.execute(select(func.count()).select_from(rt)).scalar_one())
