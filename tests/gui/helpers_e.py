"""Shared bits of the plate feed, device page and alerts GUI tests: the device a directory would
report for a live edge, the real client pool with its keys, a signal waiter armed beforehand,
plate reads emitted through an edge's own event log."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import SignalInstance

from console.models.plate_rows import PLATE_READ, normalise_plate
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


_read_ids = itertools.count(10**6)  # far from the ids of reads an edge stores itself


def plate_read_payload(
    text: str,
    *,
    snapshot_seq: int,
    member: dict[str, Any] | None = None,
    score: float = 0.93,
    crop: bool = True,
) -> dict[str, Any]:
    """A ``plate.read`` payload as the edge's plate service emits it (the P1 contract): the
    plate normalised from ``text``; ``member`` completed with an id, status and match."""
    plate = normalise_plate(text)
    read_id = next(_read_ids)  # the edge's ids are integers
    if member is not None:
        member = {"id": f"m-{plate.lower()}", "status": "active", "match": "exact", **member}
    return {
        "id": read_id, "plate": plate, "text": text, "score": score, "dscore": score,
        "recognizer": "test", "trigger": "interval", "snapshot_seq": snapshot_seq,
        "captured_at": datetime.now(UTC).isoformat(timespec="milliseconds"), "box": None,
        "region": "", "vehicle": None, "candidates": [{"plate": plate, "score": score}],
        "member": member, "latency_ms": 12,
        "crop_url": f"/api/plates/{read_id}/crop.jpg" if crop else None,
    }  # fmt: skip


async def emit_plate_read(
    bay: LiveEdge,
    text: str,
    *,
    member: dict[str, Any] | None = None,
    seq: int | None = None,
    score: float = 0.93,
    crop: bool = True,
) -> int:
    """Emit a read of ``text`` at ``bay`` through its event log (and so its SSE route), of its
    newest picture unless ``seq`` is given; returns the event id. (Until the plate service
    lands: then tests switch to real reads.)"""
    if seq is None:
        latest = bay.edge.cache.latest
        seq = latest.seq if latest is not None else 0
    payload = plate_read_payload(text, snapshot_seq=seq, member=member, score=score, crop=crop)
    return await bay.edge.events.emit(PLATE_READ, payload)
