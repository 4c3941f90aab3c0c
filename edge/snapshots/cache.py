"""The snapshot cache: the last N JPEG pictures, published by the encoder thread, read by the API.

Publishing happens on the encoder thread under a lock; readers on the event loop take the
newest snapshot with one attribute read (no lock) and wait for new ones through a future that
:meth:`SnapshotCache.publish` resolves with ``call_soon_threadsafe``. Scaled variants are made
once per snapshot and width, off the loop, and memoised on the snapshot itself.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.metrics import EdgeMetrics
from edge.snapshots.jpeg import scale_jpeg

MAX_VARIANTS_PER_SNAPSHOT = 8


@dataclass(slots=True, eq=False)
class Snapshot:
    """One picture. ``captured_*`` is when its video frame arrived from the camera."""

    seq: int
    captured_at: float  # wall clock (time.time()), for X-Frame-Captured-At
    captured_mono: float  # time.monotonic(), for ages
    jpeg: bytes
    width: int
    height: int
    keyframe: bool
    etag: str
    variants: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # width → (jpeg, height)
    # Response headers that never change for this picture, built on first use by the API.
    fixed_headers: list[tuple[bytes, bytes]] | None = None

    def age_ms(self, now_mono: float | None = None) -> float:
        now = time.monotonic() if now_mono is None else now_mono
        return max(0.0, (now - self.captured_mono) * 1000.0)

    @property
    def nbytes(self) -> int:
        return len(self.jpeg) + sum(len(v[0]) for v in self.variants.values())


class SnapshotCache:
    """Bounded by count and by bytes; the newest snapshot is always kept."""

    def __init__(
        self,
        *,
        history: int,
        max_bytes: int,
        quality: int,
        metrics: EdgeMetrics,
    ) -> None:
        self.history = history
        self.max_bytes = max_bytes
        self.quality = quality
        self._metrics = metrics
        self._lock = threading.Lock()
        self._items: deque[Snapshot] = deque()
        self._bytes = 0
        self._seq = 0
        # A per-process tag in every ETag: sequence numbers restart with the process.
        self._instance = secrets.token_hex(4)
        self.latest: Snapshot | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Future[None] | None = None
        self._pending_variants: dict[tuple[int, int], asyncio.Future[tuple[bytes, int]]] = {}
        self.on_publish: list[Callable[[Snapshot], None]] = []

    # ------------------------------------------------------------------ writer side (any thread)
    def publish(
        self,
        jpeg: bytes,
        width: int,
        height: int,
        *,
        captured_at: float,
        captured_mono: float,
        keyframe: bool,
    ) -> Snapshot:
        with self._lock:
            self._seq += 1
            snap = Snapshot(
                seq=self._seq,
                captured_at=captured_at,
                captured_mono=captured_mono,
                jpeg=jpeg,
                width=width,
                height=height,
                keyframe=keyframe,
                etag=f'"{self._instance}-{self._seq}"',
            )
            self._items.append(snap)
            self._bytes += len(jpeg)
            self._evict_locked()
            self.latest = snap
            nbytes, count = self._bytes, len(self._items)
        self._metrics.snapshots_published.inc()
        self._metrics.cache_bytes.set(nbytes)
        self._metrics.cache_snapshots.set(count)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)
        for callback in self.on_publish:
            callback(snap)
        return snap

    def trim(self) -> int:
        """Keep only the newest snapshot, without its scaled variants; returns the bytes freed.

        The memory guard's lever. Waiters and the newest picture are untouched; a reader that
        holds an older snapshot keeps it alive until it is done with it.
        """
        with self._lock:
            before = self._bytes
            while len(self._items) > 1:
                self._items.popleft()
            if self._items:
                newest = self._items[-1]
                newest.variants.clear()
                self._bytes = len(newest.jpeg)
            else:
                self._bytes = 0
            nbytes, count = self._bytes, len(self._items)
        self._metrics.cache_bytes.set(nbytes)
        self._metrics.cache_snapshots.set(count)
        return before - nbytes

    def _evict_locked(self) -> None:
        while len(self._items) > 1 and (
            len(self._items) > self.history or self._bytes > self.max_bytes
        ):
            old = self._items.popleft()
            self._bytes -= old.nbytes

    # ------------------------------------------------------------------ reader side (event loop)
    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the loop that serves requests; waiters live there."""
        self._loop = loop
        self._changed = loop.create_future()

    def _wake(self) -> None:
        fut = self._changed
        if fut is not None and not fut.done():
            fut.set_result(None)
        if self._loop is not None:
            self._changed = self._loop.create_future()

    def get(self, seq: int) -> Snapshot | None:
        with self._lock:
            for snap in self._items:
                if snap.seq == seq:
                    return snap
        return None

    def snapshots(self) -> list[Snapshot]:
        """Snapshots held, newest first."""
        with self._lock:
            return list(reversed(self._items))

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "snapshots": len(self._items),
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
            }

    async def wait_newer(self, seq: int, within_s: float) -> Snapshot | None:
        """The newest snapshot once its seq exceeds ``seq``; None when ``within_s`` passes.

        A ``seq`` from the future (a client that saw an earlier run of this process) is answered
        at once with the newest snapshot.
        """
        deadline = time.monotonic() + within_s
        while True:
            snap = self.latest
            if snap is not None and (snap.seq > seq or seq > self._seq):
                return snap
            if not await self._wait_change(deadline):
                return None

    async def wait_fresh(self, max_age_ms: float, within_s: float) -> Snapshot | None:
        """The newest snapshot once it is at most ``max_age_ms`` old; None after ``within_s``."""
        deadline = time.monotonic() + within_s
        while True:
            snap = self.latest
            if snap is not None and snap.age_ms() <= max_age_ms:
                return snap
            if not await self._wait_change(deadline):
                return None

    async def _wait_change(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self._changed is None:
            return False
        try:
            async with asyncio.timeout(remaining):  # not wait_for: see console/presenters/wall.py
                await asyncio.shield(self._changed)
        except TimeoutError:
            return False
        return True

    async def variant(self, snap: Snapshot, width: int) -> tuple[bytes, int]:
        """``(jpeg, height)`` of ``snap`` scaled to ``width``; made once, then memoised."""
        if width >= snap.width:
            return snap.jpeg, snap.height
        cached = snap.variants.get(width)
        if cached is not None:
            return cached
        key = (snap.seq, width)
        pending = self._pending_variants.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = loop.create_future()
            self._pending_variants[key] = pending
            try:
                jpeg, _, height = await asyncio.to_thread(
                    scale_jpeg, snap.jpeg, width, quality=self.quality
                )
            except Exception as err:
                pending.set_exception(err)
                pending.exception()  # retrieved here: waiters get it through ``await pending``
                raise
            finally:
                del self._pending_variants[key]
            result = (jpeg, height)
            with self._lock:
                # Memoise a bounded number of widths per picture: a client asking for every
                # width in turn must not grow the cache (the rate limit bounds the CPU side).
                if len(snap.variants) < MAX_VARIANTS_PER_SNAPSHOT:
                    snap.variants[width] = result
                if width in snap.variants and any(s is snap for s in self._items):
                    self._bytes += len(jpeg)
                    self._evict_locked()
                nbytes, count = self._bytes, len(self._items)
            self._metrics.cache_bytes.set(nbytes)  # variants are part of the bound, and evict
            self._metrics.cache_snapshots.set(count)
            self._metrics.variant_encodes.inc()
            pending.set_result(result)
            return result
        return await pending
