"""Rollup arithmetic: pure functions, no I/O (tested exhaustively in tests/unit).

A rollup row holds one site's hour (``bucket``: the Unix second the UTC hour starts): counts,
the sum of rental durations, stream seconds observed/online, and a fixed histogram of rental
durations (:data:`DURATION_BOUNDS`). Rows only ever add up, so a day, a region or a whole
organisation is the sum of its hours, and the 95th percentile of any sum of rows comes from the
summed histogram, within one bucket of the exact value, without reading raw events.

What counts:
- ``vehicles``: ``plate.read`` events triggered by a vehicle (``motion``, ``handshake``), not
  the periodic ``interval`` reads;
- ``plate_reads``: every ``plate.read``; ``member_recognitions``: every ``member.recognized``;
- ``rentals``: a ``cart`` event carrying a finished ``rental`` (or a ``rental`` event), its
  ``duration_s`` summed and put in the histogram;
- ``observed_s`` / ``online_s``: one heartbeat interval per heartbeat, online when it reported
  the stream ``online`` (cloud_sync/devices/presence.py).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

HOUR: Final = 3600
DAY: Final = 86400
# Upper bounds (seconds) of the duration histogram's slots; the last slot is open-ended.
DURATION_BOUNDS: Final[tuple[float, ...]] = (
    30, 60, 120, 180, 300, 420, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400,
    21600, 43200, 86400,
)  # fmt: skip
SLOTS: Final = len(DURATION_BOUNDS) + 1
VEHICLE_TRIGGERS: Final = frozenset({"motion", "handshake"})
COUNTS: Final = ("vehicles", "plate_reads", "member_recognitions", "rentals")
SUMS: Final = ("rental_total_s", "observed_s", "online_s")


def hour_bucket(ts: float) -> int:
    return int(ts // HOUR) * HOUR


def day_bucket(ts: float) -> int:
    return int(ts // DAY) * DAY


def slot_of(duration_s: float) -> int:
    """The histogram slot of a duration: slot i holds (bound[i-1], bound[i]]."""
    return bisect.bisect_left(DURATION_BOUNDS, max(0.0, duration_s))


def slot_range(slot: int) -> tuple[float, float]:
    """The durations slot ``slot`` holds (its upper bound is inf for the last one)."""
    low = 0.0 if slot == 0 else float(DURATION_BOUNDS[slot - 1])
    high = float(DURATION_BOUNDS[slot]) if slot < len(DURATION_BOUNDS) else math.inf
    return low, high


@dataclass(slots=True)
class Delta:
    """What some events or heartbeats add to one site's hour."""

    vehicles: int = 0
    plate_reads: int = 0
    member_recognitions: int = 0
    rentals: int = 0
    rental_total_s: float = 0.0
    observed_s: float = 0.0
    online_s: float = 0.0
    durations: dict[int, int] = field(default_factory=dict)

    def add(self, other: Delta) -> None:
        for name in (*COUNTS, *SUMS):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for slot, n in other.durations.items():
            self.durations[slot] = self.durations.get(slot, 0) + n

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (*COUNTS, *SUMS)}


def rental_duration(kind: str, payload: Mapping[str, Any]) -> float | None:
    """The duration of a finished rental this event reports, if it reports one."""
    rental = payload.get("rental") if kind == "cart" else payload if kind == "rental" else None
    if not isinstance(rental, Mapping):
        return None
    value = rental.get("duration_s")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(0.0, float(value))


def event_delta(kind: str, payload: Mapping[str, Any]) -> Delta | None:
    """What one event adds to its hour; None for events that add nothing."""
    delta = Delta()
    if kind == "plate.read":
        delta.plate_reads = 1
        delta.vehicles = 1 if payload.get("trigger") in VEHICLE_TRIGGERS else 0
    elif kind == "member.recognized":
        delta.member_recognitions = 1
    else:
        duration = rental_duration(kind, payload)
        if duration is None:
            return None
        delta.rentals = 1
        delta.rental_total_s = duration
        delta.durations[slot_of(duration)] = 1
    return delta


def deltas(
    events: Iterable[tuple[str, str, float, Mapping[str, Any]]],
) -> dict[tuple[str, int], Delta]:
    """(site, kind, ts, payload) of new events → what they add per (site, hour bucket)."""
    out: dict[tuple[str, int], Delta] = {}
    for site_id, kind, ts, payload in events:
        delta = event_delta(kind, payload)
        if delta is not None:
            out.setdefault((site_id, hour_bucket(ts)), Delta()).add(delta)
    return out


def percentile(histogram: Mapping[int, int], q: float = 0.95) -> float | None:
    """The ``q`` quantile (nearest rank) estimated from a histogram: interpolated inside the slot
    that holds that rank, so the exact value lies in the same slot. None when empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for slot in sorted(histogram):
        n = histogram[slot]
        if n <= 0:
            continue
        if seen + n >= rank:
            low, high = slot_range(slot)
            if math.isinf(high):
                return low
            return low + (high - low) * (rank - seen) / n
        seen += n
    raise AssertionError("unreachable: rank <= total")  # pragma: no cover


def exact_percentile(values: Sequence[float], q: float = 0.95) -> float | None:
    """The nearest-rank quantile of raw values (what :func:`percentile` estimates)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]
