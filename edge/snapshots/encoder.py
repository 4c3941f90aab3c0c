"""The encoder thread: takes the newest decoded frame from a one-slot mailbox and publishes it.

A slot, not a queue: when frames are decoded faster than they can be encoded (a slow Pi during
full decoding), older ones are replaced rather than piling up, so memory stays flat and the
published picture is always the newest one.
"""

from __future__ import annotations

import logging
import threading
import time

from edge.camera.frame import RawFrame
from edge.metrics import EdgeMetrics
from edge.snapshots.cache import SnapshotCache
from edge.snapshots.jpeg import ImageError, encode_frame

log = logging.getLogger("edge.snapshots")


class Encoder:
    """Owns one thread; ``submit`` may be called from any thread and never blocks."""

    def __init__(self, cache: SnapshotCache, metrics: EdgeMetrics, *, quality: int) -> None:
        self._cache = cache
        self._metrics = metrics
        self.quality = quality
        self._slot: RawFrame | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="snapshot-encoder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, frame: RawFrame) -> None:
        with self._cond:
            if self._slot is not None:
                self._metrics.frames_skipped.inc()
            self._slot = frame
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._slot is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                frame, self._slot = self._slot, None
            assert frame is not None  # noqa: S101 - guarded by the wait loop above
            started = time.perf_counter()
            try:
                jpeg, width, height = encode_frame(frame.image, quality=self.quality)
            except (ImageError, ValueError) as err:
                log.warning("dropping a frame that cannot be encoded: %s", err)
                continue
            self._metrics.encode_seconds.observe(time.perf_counter() - started)
            self._cache.publish(
                jpeg,
                width,
                height,
                captured_at=frame.captured_at,
                captured_mono=frame.captured_mono,
                keyframe=frame.keyframe,
            )
