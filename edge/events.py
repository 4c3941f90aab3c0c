"""The edge's event log: facts written to the store, then handed to live subscribers (SSE).

:meth:`EventLog.emit` writes one event through the store in a worker thread (never on the loop),
then wakes the subscribers. Emits are serialised, so ids reach subscribers in increasing order.

A subscriber's queue is bounded. One that falls behind (a slow SSE client) is not given more
memory: its queue is dropped and it reads on from the store by id, from the last event it got,
and then goes live again. Nothing is lost, nothing is sent twice, and memory stays bounded.

Without a store (a store that could not be opened, or in-process tests that start an edge
synchronously) the log keeps the newest events in a bounded ring in memory instead. When a store
write fails the event still reaches live subscribers, with id 0 (not resumable), and the failure
is logged once and counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from types import TracebackType
from typing import Any, Final, Self

from edge.errors import StoreError
from edge.metrics import EdgeMetrics
from edge.store import Event, Store
from fleet_common.logs import QuietLogger
from fleet_common.wire.events import EventPayload, OutboxTopic, dump_payload, kind_of

log = logging.getLogger("edge.events")

SUBSCRIBER_QUEUE: Final = 256  # events a subscriber may lag behind before it reads the store
MEMORY_RING: Final = 1000  # events kept in memory when there is no store
PAGE: Final = 100  # events per store read when a subscriber catches up

Kinds = frozenset[str] | None


def _wanted(kinds: Kinds, kind: str) -> bool:
    return kinds is None or kind in kinds


def parse_kinds(text: str | None) -> Kinds:
    """``"plate,stream"`` → ``{"plate", "stream"}``; empty or None → every kind."""
    if not text:
        return None
    kinds = frozenset(k.strip() for k in text.split(",") if k.strip())
    return kinds or None


class EventLog:
    """Events of one edge. Use on the event loop only (emit, subscribe, read)."""

    def __init__(
        self,
        store: Store | None = None,
        metrics: EdgeMetrics | None = None,
        *,
        queue_size: int = SUBSCRIBER_QUEUE,
        memory_ring: int = MEMORY_RING,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self.queue_size = queue_size
        self._ring: deque[Event] = deque(maxlen=memory_ring)
        self._subscribers: set[Subscription] = set()
        self._write_lock = asyncio.Lock()
        self._pending: set[asyncio.Task[int]] = set()
        self._quiet = QuietLogger(log)
        self.last_id = 0  # newest id handed out (stored or in the ring)
        self.store_failure: str | None = None  # why the last store write failed, if it did
        self.closed = False

    # ------------------------------------------------------------------ wiring
    async def attach_store(self, store: Store) -> None:
        """Write to ``store`` from now on; ids continue from its newest event."""
        self._store = store
        self.last_id = max(self.last_id, await asyncio.to_thread(store.latest_event_id))

    @property
    def store(self) -> Store | None:
        return self._store

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def end_subscriptions(self) -> None:
        """End every live subscription (their SSE responses finish): the server is stopping."""
        for sub in list(self._subscribers):
            sub._end()

    async def aclose(self, drain_timeout_s: float = 5.0) -> None:
        """Let pending :meth:`emit_soon` writes finish, end every subscription, stop writing.

        Call before the store is closed: afterwards emits are dropped (logged at debug).
        """
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=drain_timeout_s)
        self.end_subscriptions()
        async with self._write_lock:  # an emit in progress finishes first
            self.closed = True
            self._store = None

    # ------------------------------------------------------------------ writing
    async def emit(
        self, kind: str, payload: Mapping[str, Any], outbox_topic: str | None = None
    ) -> int:
        """Record an event and wake the subscribers; returns its id (0 if it was not stored).

        With ``outbox_topic`` its outbox row (for the cloud) is written in the same transaction.
        """

        def write(store: Store) -> int:
            return store.add_event(kind, payload, outbox_topic=outbox_topic)

        return await self.emit_written(kind, write, payload)

    async def publish(self, payload: EventPayload, outbox_topic: OutboxTopic | None = None) -> int:
        """:meth:`emit` of a typed payload: its kind and its JSON come from the model
        (:mod:`fleet_common.wire.events`), so every payload has the shape its readers parse."""
        return await self.emit(kind_of(payload), dump_payload(payload), outbox_topic)

    def publish_soon(self, payload: EventPayload, outbox_topic: OutboxTopic | None = None) -> None:
        """:meth:`publish` from synchronous code on the loop (callbacks); :meth:`aclose` waits."""
        self.emit_soon(kind_of(payload), dump_payload(payload), outbox_topic)

    async def emit_written(
        self, kind: str, write: Callable[[Store], int], payload: Mapping[str, Any]
    ) -> int:
        """Like :meth:`emit`, the event written by ``write(store)`` in a worker thread: it writes
        its own rows and the event in one transaction (:meth:`Store.writing`,
        :meth:`Store.add_event_in`) and returns the event id. Without a store, or when the store
        fails, ``payload`` goes to the live subscribers only (id 0 on failure), like :meth:`emit`.
        """
        async with self._write_lock:
            if self.closed:
                log.debug("event log closed: %s event not recorded: %s", kind, payload)
                return 0
            ts = time.time()
            store = self._store
            if store is None:
                self.last_id += 1
                event = Event(self.last_id, ts, kind, dict(payload))
                self._ring.append(event)
            else:
                try:
                    stored = await asyncio.to_thread(_write_and_read, store, write)
                except StoreError as err:
                    # The first line only: SQLAlchemy appends the statement and its parameters,
                    # which differ every time and would defeat the quiet logger.
                    reason = self.store_failure = str(err).splitlines()[0]
                    self._quiet.failure("events: cannot store events: %s", reason)
                    if self._metrics is not None:
                        self._metrics.event_store_errors.inc()
                    event = Event(0, ts, kind, dict(payload))
                else:
                    self._quiet.reset("events: storing events again")
                    self.store_failure = None
                    self.last_id = max(self.last_id, stored.id)
                    event = stored
            if self._metrics is not None:
                self._metrics.events.labels(kind).inc()
            for sub in self._subscribers:
                sub._put(event)
            return event.id

    def emit_soon(
        self, kind: str, payload: Mapping[str, Any], outbox_topic: str | None = None
    ) -> None:
        """:meth:`emit` from synchronous code on the loop (callbacks); :meth:`aclose` waits."""
        task = asyncio.get_running_loop().create_task(self.emit(kind, payload, outbox_topic))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # ------------------------------------------------------------------ reading
    async def recent(self, limit: int = 50, kinds: Collection[str] | None = None) -> list[Event]:
        """The newest ``limit`` events (of ``kinds``), newest first."""
        wanted = frozenset(kinds) if kinds else None
        store = self._store
        if store is None:
            return [e for e in reversed(self._ring) if _wanted(wanted, e.kind)][:limit]
        return await asyncio.to_thread(_recent_from_store, store, limit, wanted)

    async def after(
        self, event_id: int, limit: int = 100, kinds: Collection[str] | None = None
    ) -> list[Event]:
        """Events with an id above ``event_id`` (of ``kinds``), oldest first."""
        events, _ = await self._page(event_id, limit, frozenset(kinds) if kinds else None)
        return events

    async def _page(self, event_id: int, limit: int, kinds: Kinds) -> tuple[list[Event], int]:
        """Up to ``limit`` wanted events after ``event_id`` and the id scanned up to (-1: end)."""
        store = self._store
        if store is None:
            found = [e for e in self._ring if e.id > event_id and _wanted(kinds, e.kind)]
            return found[:limit], (found[limit - 1].id if len(found) > limit else -1)
        return await asyncio.to_thread(_page_from_store, store, event_id, limit, kinds)

    def subscribe(
        self, after: int | None = None, kinds: Collection[str] | None = None
    ) -> Subscription:
        """Live events (of ``kinds``); with ``after``, first the stored ones with a higher id.

        Use as a context manager, or call :meth:`Subscription.close` when done.
        """
        sub = Subscription(self, after, frozenset(kinds) if kinds else None, self.queue_size)
        self._subscribers.add(sub)
        if self._metrics is not None:
            self._metrics.event_subscribers.inc()
        if self.closed:
            sub._end()
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.discard(sub)
            if self._metrics is not None:
                self._metrics.event_subscribers.dec()

    def _resumed(self) -> None:
        if self._metrics is not None:
            self._metrics.sse_resumes.inc()


class Subscription:
    """One subscriber's view: stored events first (if asked), then live ones, in id order.

    :meth:`get` is safe to time out or cancel: all state lives here, not in a generator frame.
    """

    def __init__(self, log: EventLog, after: int | None, kinds: Kinds, queue_size: int) -> None:
        self._log = log
        self.kinds = kinds
        self._queue: deque[Event] = deque()
        self._queue_size = queue_size
        self._wakeup = asyncio.Event()
        self._backlog: deque[Event] = deque()
        # Highest id read or skipped: live events at or below it were already given. An id from
        # the future (a store that was moved aside) counts as "now", or nothing would come.
        self.position = log.last_id if after is None else min(after, log.last_id)
        self._catching_up = after is not None
        self.overflowed = False
        self.closed = False

    # ------------------------------------------------------------------ producer side (loop)
    def _put(self, event: Event) -> None:
        if self.closed or self.overflowed or not _wanted(self.kinds, event.kind):
            return
        if len(self._queue) >= self._queue_size:
            # Too slow: forget the queue and read on from the store (see get()).
            self.overflowed = True
            self._queue.clear()
        else:
            self._queue.append(event)
        self._wakeup.set()

    def _end(self) -> None:
        self.closed = True
        self._wakeup.set()

    # ------------------------------------------------------------------ consumer side
    async def get(self) -> Event | None:
        """The next event, or None once closed. Safe to cancel (e.g. ``asyncio.timeout``)."""
        while True:
            if self._backlog:
                return self._backlog.popleft()
            if self.closed and (self._catching_up or self.overflowed or not self._queue):
                return None  # what is queued is still given: it follows on without a gap
            if self._catching_up:
                events, scanned = await self._log._page(self.position, PAGE, self.kinds)
                self._backlog.extend(events)
                if scanned == -1:  # the end of what is stored: live from here
                    self._catching_up = False
                    if events:
                        self.position = max(self.position, events[-1].id)
                else:
                    self.position = scanned
                continue
            if self._queue:
                event = self._queue.popleft()
                if event.id == 0:  # not stored: live only, never a resume position
                    return event
                if event.id <= self.position:
                    continue  # already read from the store
                self.position = event.id
                return event
            if self.overflowed:
                log.debug("events: subscriber fell behind at id %d: reading the store",
                          self.position)  # fmt: skip
                self._log._resumed()
                self.overflowed, self._catching_up = False, True
                continue
            self._wakeup.clear()
            await self._wakeup.wait()

    def close(self) -> None:
        self._end()
        self._log._unsubscribe(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event


# ---------------------------------------------------------------------- store calls (threads)
def _write_and_read(store: Store, write: Callable[[Store], int]) -> Event:
    """Write the event and read it back: live subscribers get exactly what a resume reads
    (the store's timestamp, the payload as JSON gives it back)."""
    event_id = write(store)
    (event,) = store.events_after(event_id - 1, 1)
    return event


def _page_from_store(
    store: Store, event_id: int, limit: int, kinds: Kinds
) -> tuple[list[Event], int]:
    """Read pages until ``limit`` wanted events or the end; ids scanned up to, -1 at the end."""
    found: list[Event] = []
    position = event_id
    while len(found) < limit:
        rows = store.events_after(position, PAGE)
        for row in rows:
            position = row.id
            if _wanted(kinds, row.kind):
                found.append(row)
                if len(found) == limit:
                    return found, position
        if len(rows) < PAGE:
            return found, -1
    return found, position


def _recent_from_store(store: Store, limit: int, kinds: Kinds) -> list[Event]:
    """Newest first, reading back in windows (event ids are gap-free up to pruning)."""
    newest = store.latest_event_id()
    found: list[Event] = []
    high = newest
    window = max(limit, PAGE)
    while high > 0 and len(found) < limit:
        low = max(0, high - window)
        # Ids above ``low``; the oldest may lie above ``high`` if the window was pruned.
        rows = [r for r in store.events_after(low, high - low) if r.id <= high]
        found.extend(r for r in reversed(rows) if _wanted(kinds, r.kind))
        if not rows or rows[0].id > low + 1:
            break  # below this the old events were pruned
        high = low
        window = min(window * 2, 10_000)
    return found[:limit]
