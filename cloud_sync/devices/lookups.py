"""Key-cache misses looked up together: every key that misses while a lookup runs goes into the
next one, so N heartbeats of N devices cost a few queries instead of N.

A fleet of 60,000 devices beating every 30 s misses the 5-second key cache on every heartbeat;
one query and one worker-thread hop per heartbeat was most of a heartbeat's cost (bench/fleet).
Event-loop only; the lookup itself runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cloud_sync.devices.keys import DeviceAuth

Found = tuple[DeviceAuth | None, str]  # the device, or None and why (``unknown``/``revoked``)


class KeyLookups:
    def __init__(self, lookup: Callable[[list[str]], dict[str, Found]]) -> None:
        self._lookup = lookup  # blocking: keys → what each names
        self._pending: dict[str, asyncio.Future[Found]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, key: str) -> Found:
        future = self._pending.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._pending[key] = loop.create_future()
            if self._task is None:
                self._task = loop.create_task(self._drain(), name="key-lookups")
        # A caller that gives up (a client gone) must not cancel the others' answer.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                try:
                    found = await asyncio.to_thread(self._lookup, list(batch))
                except Exception as err:  # handed to every waiter, not swallowed
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(err)
                            future.exception()  # retrieved: no warning if every waiter left
                    continue
                for key, future in batch.items():
                    if not future.done():
                        future.set_result(found[key])
        finally:
            self._task = None
