"""One :class:`EdgeClient` per device, with its API key from the credential store.

Presenters ask :meth:`EdgeClients.client_for` before each use rather than keeping a client:
when the device's URL or key changes the pool builds a new client and closes the old one
(calls still running on it end with :class:`EdgeUnreachable`, a follow ends), so the next call
goes to the right place with the right key.
"""

from __future__ import annotations

import asyncio
import logging

from console.services.credentials import Credentials
from console.services.device import Device
from console.services.edge_client import EdgeClient

log = logging.getLogger("console.pool")


class EdgeClients:
    """The console's edge clients by device key. Use on the event loop's thread."""

    def __init__(self, credentials: Credentials, *, timeout_s: float = 5.0) -> None:
        self.credentials = credentials
        self.timeout_s = timeout_s
        self._clients: dict[str, EdgeClient] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._orphans: list[EdgeClient] = []  # replaced with no loop running: closed in aclose()

    def api_key_for(self, device: Device) -> str | None:
        """The stored key: by device key, else by URL (a key entered while the device was
        still known only by its URL keeps working once it is known by its id)."""
        return self.credentials.get(device.key) or self.credentials.get(device.url)

    def client_for(self, device: Device) -> EdgeClient:
        """The device's client, (re)built when its URL or API key changed."""
        api_key = self.api_key_for(device)
        url = device.url.rstrip("/")
        current = self._clients.get(device.key)
        if current is not None:
            if not current.closed and current.base_url == url and current.api_key == api_key:
                return current
            self._close_soon(current)
        client = EdgeClient(url, api_key, timeout_s=self.timeout_s)
        self._clients[device.key] = client
        log.debug("client for %s at %s (%s)", device.key, url, "key" if api_key else "no key")
        return client

    def forget(self, key: str) -> None:
        """Close and drop the client of ``key`` (device removed, or its key deleted)."""
        client = self._clients.pop(key, None)
        if client is not None:
            self._close_soon(client)

    async def aclose(self) -> None:
        """Close every client. The pool can be used again afterwards."""
        clients, self._clients = list(self._clients.values()), {}
        orphans, self._orphans = self._orphans, []
        await asyncio.gather(*(c.aclose() for c in clients + orphans))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _close_soon(self, client: EdgeClient) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._orphans.append(client)
            return
        task = loop.create_task(client.aclose(), name=f"close {client.base_url}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
