"""Long-polls of ``GET /api/v1/devices/config``: each waits on an event this replica sets when
the device's version in the database differs from the one the request holds.

One loop per replica, not one query per request: it wakes on ``NOTIFY carwash_config``
(PostgreSQL, sent by the transaction that changed a config, whichever replica made it), on a
local change (:meth:`ConfigWatch.kick`), or every ``poll_s``; then one query reads the versions
of every waiting device (on SQLite only once ``max(seq)`` moved). No state beyond the waiting
requests themselves: a replica that restarts loses nothing but its open long-polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from cloud_sync.configs import delivery
from cloud_sync.db import dialect
from cloud_sync.db.engine import Database
from cloud_sync.errors import CloudError
from fleet_common.logs import QuietLogger

log = logging.getLogger("cloud.config")


@dataclass(eq=False, slots=True)
class _Waiter:
    known: int | None  # the version the device holds (its If-None-Match)
    event: asyncio.Event = field(default_factory=asyncio.Event)


class ConfigWatch:
    def __init__(self, db: Database, poll_s: float) -> None:
        self._db = db
        self._poll_s = poll_s
        self._listener = dialect.Listener(db, delivery.CHANNEL)
        self._waiters: dict[str, set[_Waiter]] = {}
        self._kicked = asyncio.Event()
        self._seq: int | None = None
        self._quiet = QuietLogger(log)
        self._closing = False
        self.waiting = 0  # open long-polls (an int: read by /metrics from a worker thread)

    def __len__(self) -> int:
        return self.waiting

    async def wait(self, device_id: str, known: int | None, timeout_s: float) -> bool:
        """Until the device's version differs from ``known`` (True) or ``timeout_s`` (False).
        Register first, then re-read: a change in between is not missed."""
        if self._closing:
            return False
        waiter = _Waiter(known)
        self._waiters.setdefault(device_id, set()).add(waiter)
        self.waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await waiter.event.wait()
            return waiter.event.is_set() and not self._closing
        finally:
            self.waiting -= 1
            waiting = self._waiters.get(device_id)
            if waiting is not None:
                waiting.discard(waiter)
                if not waiting:
                    del self._waiters[device_id]

    def release(self) -> None:
        """The server is shutting down: every open long-poll answers now, as unchanged."""
        self._closing = True
        for waiting in self._waiters.values():
            for waiter in waiting:
                waiter.event.set()

    def kick(self) -> None:
        """A config changed through this replica: check the waiters now (event loop only)."""
        self._kicked.set()

    async def run(self) -> None:
        heard: asyncio.Future[bool] | None = None
        try:
            while True:
                if heard is None:
                    heard = asyncio.ensure_future(
                        asyncio.to_thread(self._listener.wait, self._poll_s)
                    )
                kicked: asyncio.Future[bool] = asyncio.ensure_future(self._kicked.wait())
                await asyncio.wait((heard, kicked), return_when=asyncio.FIRST_COMPLETED)
                kicked.cancel()
                notified = self._kicked.is_set()
                self._kicked.clear()
                if heard.done():
                    notified = heard.result() or notified
                    heard = None
                if self._waiters:
                    await self._wake(notified)
        finally:
            if heard is not None:
                heard.cancel()

    def close(self) -> None:
        self._listener.close()

    async def _wake(self, notified: bool) -> None:
        try:
            found = await asyncio.to_thread(self._versions, notified, sorted(self._waiters))
        except CloudError as err:
            self._quiet.failure("checking config long-polls failed: %s", err)
            return
        self._quiet.reset("checking config long-polls works again")
        for device_id, version in (found or {}).items():
            for waiter in self._waiters.get(device_id, ()):
                if version != waiter.known:
                    waiter.event.set()

    def _versions(self, notified: bool, device_ids: list[str]) -> dict[str, int] | None:
        """The waiting devices' versions, when something may have changed (worker thread)."""
        with self._db.read() as conn:
            seq = delivery.change_seq(conn)
            if not notified and seq == self._seq:
                return None
            self._seq = seq
            return delivery.versions(conn, device_ids)
