"""The device page's chart data, pure: bounded ring buffers and samples derived from ``/metrics``.

Counters become rates between two polls: CPU % from ``process_cpu_seconds_total``, the mean
snapshot latency from the request histogram's ``_sum``/``_count``. A counter that goes backwards
(the edge restarted) gives no point for that interval rather than a negative spike.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CPU = "process_cpu_seconds_total"
TEMPERATURE = "carwash_edge_temperature_celsius"
FRAME_AGE = "carwash_edge_frame_age_seconds"
RSS = "carwash_edge_rss_bytes"
_HTTP = "carwash_edge_http_request_duration_seconds"
SNAPSHOT_ROUTE = "/api/snapshot"

#: The series the device page draws: key → (title, unit).
SERIES: dict[str, tuple[str, str]] = {
    "cpu": ("CPU", "%"),
    "temperature": ("Temperature", "°C"),
    "fps_in": ("Frames in", "fps"),
    "fps_decoded": ("Frames decoded", "fps"),
    "frame_age": ("Frame age", "s"),
    "snapshot_latency": ("Snapshot latency (edge)", "ms"),
    "round_trip": ("Snapshot round trip", "ms"),
}


class Ring:
    """The newest ``capacity`` points ``(t, value)`` of one series."""

    __slots__ = ("_points",)

    def __init__(self, capacity: int) -> None:
        self._points: deque[tuple[float, float]] = deque(maxlen=capacity)

    def append(self, t: float, value: float | None) -> None:
        """Add a point; ``None`` or NaN adds a gap (NaN, which pyqtgraph draws as a break)."""
        self._points.append((t, math.nan if value is None else float(value)))

    def __len__(self) -> int:
        return len(self._points)

    @property
    def capacity(self) -> int:
        return self._points.maxlen or 0

    def xs(self) -> list[float]:
        return [p[0] for p in self._points]

    def ys(self) -> list[float]:
        return [p[1] for p in self._points]

    def last(self) -> float | None:
        if not self._points or math.isnan(self._points[-1][1]):
            return None
        return self._points[-1][1]

    def clear(self) -> None:
        self._points.clear()


@dataclass(frozen=True, slots=True)
class Sample:
    """One poll's values; None where the edge has no figure (no thermal zone, first poll...)."""

    t: float
    cpu: float | None = None
    temperature: float | None = None
    fps_in: float | None = None
    fps_decoded: float | None = None
    frame_age: float | None = None
    snapshot_latency: float | None = None
    round_trip: float | None = None

    def values(self) -> dict[str, float | None]:
        return {key: getattr(self, key) for key in SERIES}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def histogram_totals(metrics: Mapping[str, float], name: str, route: str) -> tuple[float, float]:
    """``(sum, count)`` of a request histogram for one route, over every method."""
    total = count = 0.0
    needle = f'route="{route}"'
    for key, value in metrics.items():
        if needle not in key:
            continue
        if key.startswith(name + "_sum{"):
            total += value
        elif key.startswith(name + "_count{"):
            count += value
    return total, count


class Sampler:
    """Turns successive ``metrics()`` answers (and snapshot info figures) into :class:`Sample`."""

    def __init__(self) -> None:
        self._prev_t: float | None = None
        self._prev_cpu: float | None = None
        self._prev_hist: tuple[float, float] | None = None

    def reset(self) -> None:
        self._prev_t = self._prev_cpu = None
        self._prev_hist = None

    def sample(
        self,
        t: float,
        metrics: Mapping[str, float],
        *,
        fps_in: float | None = None,
        fps_decoded: float | None = None,
        frame_age_ms: float | None = None,
        round_trip_ms: float | None = None,
    ) -> Sample:
        cpu_total = _finite(metrics.get(CPU))
        cpu = None
        if cpu_total is not None and self._prev_cpu is not None and self._prev_t is not None:
            dt = t - self._prev_t
            used = cpu_total - self._prev_cpu
            if dt > 0 and used >= 0:
                cpu = 100.0 * used / dt
        hist = histogram_totals(metrics, _HTTP, SNAPSHOT_ROUTE)
        latency = None
        if self._prev_hist is not None:
            d_sum, d_count = hist[0] - self._prev_hist[0], hist[1] - self._prev_hist[1]
            if d_count > 0 and d_sum >= 0:
                latency = 1000.0 * d_sum / d_count
        self._prev_t, self._prev_cpu, self._prev_hist = t, cpu_total, hist
        age = _finite(metrics.get(FRAME_AGE))
        if frame_age_ms is not None:
            age = frame_age_ms / 1000.0
        return Sample(
            t=t,
            cpu=cpu,
            temperature=_finite(metrics.get(TEMPERATURE)),
            fps_in=fps_in,
            fps_decoded=fps_decoded,
            frame_age=age,
            snapshot_latency=latency,
            round_trip=round_trip_ms,
        )


class History:
    """One ring per series in :data:`SERIES`."""

    def __init__(self, capacity: int = 300) -> None:
        self.rings: dict[str, Ring] = {key: Ring(capacity) for key in SERIES}

    def add(self, sample: Sample) -> None:
        for key, value in sample.values().items():
            self.rings[key].append(sample.t, value)

    def clear(self) -> None:
        for ring in self.rings.values():
            ring.clear()

    def keys(self) -> Iterable[str]:
        return self.rings.keys()
