"""What every frame source shares: its thread, reconnecting forever, demand, statistics.

A source runs *sessions* (one connection to the camera each) in its own thread. When a session
ends or fails, the source waits an exponential, jittered, capped backoff and starts another,
forever: a camera that is down at start-up or for a day comes back by itself. Errors that
repeat are logged once at WARNING and then at DEBUG.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edge.camera.frame import RawFrame
from edge.config import CameraConfig, redact_url
from edge.errors import SourceError, SourceURLError
from edge.metrics import EdgeMetrics
from fleet_common.logs import QuietLogger

log = logging.getLogger("edge.camera")

FrameSink = Callable[[RawFrame], None]

BACKOFF_START_S = 0.5
# A session that delivered frames for this long resets the backoff to its start.
HEALTHY_SESSION_S = 10.0


class RateMeter:
    """Events per second over the last few seconds; thread-safe enough for statistics."""

    def __init__(self, window_s: float = 5.0) -> None:
        self._window = window_s
        self._marks: deque[tuple[float, int]] = deque()
        self._count = 0

    def tick(self, now: float) -> None:
        self._count += 1
        marks = self._marks
        if not marks or now - marks[-1][0] >= 0.25:
            marks.append((now, self._count))
            while len(marks) > 2 and now - marks[1][0] > self._window:
                marks.popleft()

    def rate(self, now: float) -> float:
        marks = list(self._marks)
        if not marks or now - marks[-1][0] > self._window:
            return 0.0
        t0, c0 = marks[0]
        span = now - t0
        return (self._count - c0) / span if span > 0.5 else 0.0


@dataclass(slots=True)
class SourceStats:
    """Read by the API (``/api/snapshot/info``) and the health check."""

    connected: bool = False
    last_error: str | None = None
    sessions: int = 0
    packets: int = 0
    keyframes: int = 0
    decoded: int = 0
    keyframe_interval_s: float | None = None
    decode_ms: float | None = None
    decode_lag_ms: float | None = None
    full_decode: bool = False
    width: int | None = None
    height: int | None = None
    codec: str | None = None


def backoff_delays(cap_s: float, rng: random.Random) -> Callable[[], float]:
    """A generator of delays: 0.5 s doubling to ``cap_s``, each jittered to 50-100 %."""
    attempt = 0

    def next_delay() -> float:
        nonlocal attempt
        delay = min(cap_s, BACKOFF_START_S * (2**attempt))
        attempt = min(attempt + 1, 30)
        return float(delay * rng.uniform(0.5, 1.0))

    return next_delay


# While hot, an explicit request decodes every frame this long at most: enough to catch up from
# the keyframe and publish one fresh picture, not the config's demand_hold_s of motion.
HOT_DEMAND_HOLD_S = 1.0


class FrameSource(ABC):
    """Base of every source. Subclasses implement :meth:`_session`."""

    scheme: str = "?"

    def __init__(
        self, url: str, config: CameraConfig, sink: FrameSink, metrics: EdgeMetrics
    ) -> None:
        self.url = url
        self.safe_url = redact_url(url)
        self.config = config
        self._sink = sink
        self.metrics = metrics
        self.stats = SourceStats()
        self.in_rate = RateMeter()
        self.decoded_rate = RateMeter()
        self._stop = threading.Event()
        self._demand_until = 0.0
        self._explicit_until = 0.0
        self._demand_event = threading.Event()
        # Set by the temperature guard on the loop, read by the decoder thread (one bool).
        self.hot = False
        self._thread: threading.Thread | None = None
        self._quiet = QuietLogger(log)
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography

    # ------------------------------------------------------------------ control (any thread)
    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run_forever, name=f"camera-{self.scheme}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the session to end and wait for the thread (bounded by the read timeout)."""
        self._stop.set()
        self._demand_event.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_fresh(self, hold_s: float | None = None, *, explicit: bool = True) -> None:
        """A consumer wants fresh frames: decode every frame for ``hold_s`` (config default).

        ``explicit`` is a request for one fresh picture (``?max_age_ms=``); a viewer wanting
        motion (MJPEG) passes False, and that demand is ignored while :attr:`hot`.
        """
        hold = self.config.demand_hold_s if hold_s is None else hold_s
        now = time.monotonic()
        self._demand_until = max(self._demand_until, now + hold)
        if explicit:
            self._explicit_until = max(self._explicit_until, now + min(hold, HOT_DEMAND_HOLD_S))
        self._demand_event.set()

    def demand_active(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self._demand_until

    def explicit_demand_active(self, now: float | None = None) -> bool:
        """An explicit request (not a viewer's) wants fresh frames, for at most a second."""
        return (time.monotonic() if now is None else now) < self._explicit_until

    # ------------------------------------------------------------------ the thread
    def _run_forever(self) -> None:
        next_delay = backoff_delays(self.config.reconnect_max_s, self._rng)
        while not self._stop.is_set():
            started = time.monotonic()
            self.stats.sessions += 1
            try:
                self._session()
                if not self._stop.is_set():
                    raise SourceError("stream ended")  # noqa: TRY301 - same handling as a failure
            except SourceURLError as err:
                self._failed("bad_url", f"{self.safe_url}: {err} (fix the source URL)")
            except SourceError as err:
                self._failed("stream", f"{self.safe_url}: {err}")
            except Exception as err:  # the reader must survive anything a camera can send
                log.exception("unexpected error reading %s", self.safe_url)
                self._failed("internal", f"{self.safe_url}: {type(err).__name__}: {err}")
            finally:
                self.stats.connected = False
            if self._stop.is_set():
                break
            if time.monotonic() - started > HEALTHY_SESSION_S and self.stats.packets:
                next_delay = backoff_delays(self.config.reconnect_max_s, self._rng)
            delay = next_delay()
            self.metrics.reconnects.inc()
            log.debug("reconnecting to %s in %.1f s", self.safe_url, delay)
            self._stop.wait(delay)

    def _failed(self, kind: str, message: str) -> None:
        self.stats.last_error = message
        self.metrics.source_errors.labels(kind).inc()
        self._quiet.failure("camera: %s", message)

    def _connected(self) -> None:
        """Subclasses call this when a session delivers its first frame."""
        self.stats.connected = True
        self.stats.last_error = None
        self._quiet.reset(f"camera: {self.safe_url} is streaming")

    def _received(self, mono: float, *, keyframe: bool) -> None:
        """Count a frame (packet) that arrived from the camera."""
        self.stats.packets += 1
        self.metrics.packets.inc()
        self.in_rate.tick(mono)
        if keyframe:
            self.stats.keyframes += 1
            self.metrics.keyframes.inc()

    def _decoded(self) -> None:
        """Count one decoded picture (published or not: catch-up decodes count too)."""
        self.stats.decoded += 1
        self.decoded_rate.tick(time.monotonic())
        self.metrics.frames_decoded.inc()

    def _emit(self, frame: RawFrame, *, decoded: bool = True) -> None:
        """Hand a picture to the encoder; ``decoded=False`` when already counted."""
        if decoded:
            self._decoded()
        self._sink(frame)

    @abstractmethod
    def _session(self) -> None:
        """Connect, deliver frames until the stream ends or :attr:`stopping`; raise on failure."""
