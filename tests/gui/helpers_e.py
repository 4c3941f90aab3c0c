"""Shared bits of the plate feed, device page and alerts GUI tests: the device a directory would
report for a live edge, the real client pool with its keys, a signal waiter armed beforehand."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import SignalInstance

from console.services.credentials import CredentialStore
from console.services.discovery import Device
from console.services.pool import EdgeClients
from tests.gui.conftest import LiveEdge


def device_of(bay: LiveEdge) -> Device:
    """The :class:`Device` a directory reports for ``bay`` added by URL, before its id is known
    (keyed by the URL)."""
    return Device(
        key=bay.url,
        url=bay.url,
        name=bay.name,
        site=bay.edge.config.site,
        source="manual",
        online=True,
    )


def pool_for(tmp_path: Path, keys: dict[Device, str]) -> EdgeClients:
    """The console's real client pool, with ``keys`` stored in a real credential file."""
    store = CredentialStore(tmp_path / "console-credentials.json")
    for device, api_key in keys.items():
        store.set(device.key, api_key)
    return EdgeClients(store, timeout_s=3.0)


class SignalWaiter:
    """``async with SignalWaiter(sig) as got: <trigger>`` → ``got.args``: connected before the
    trigger runs, so an emission during the trigger is not missed."""

    def __init__(self, signal: SignalInstance, timeout_s: float = 10.0) -> None:
        self.signal = signal
        self.timeout_s = timeout_s
        self.args: tuple[Any, ...] = ()
        self._future: asyncio.Future[tuple[Any, ...]] | None = None

    def _fired(self, *args: Any) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_result(args)

    async def __aenter__(self) -> SignalWaiter:
        self._future = asyncio.get_running_loop().create_future()
        self.signal.connect(self._fired)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and self._future is not None:
                self.args = await asyncio.wait_for(self._future, self.timeout_s)
        finally:
            self.signal.disconnect(self._fired)
