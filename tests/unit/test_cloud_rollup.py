"""Rollup arithmetic (cloud_sync/ingest/rollup.py): pure functions, tested exhaustively."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.ingest import rollup
from cloud_sync.reads.plates import decode_cursor, encode_cursor, prefix_upper_bound

pytestmark = pytest.mark.unit

durations = st.floats(min_value=0, max_value=200_000, allow_nan=False)
times = st.floats(min_value=1.6e9, max_value=1.9e9, allow_nan=False)


@given(st.lists(durations, min_size=1, max_size=300), st.sampled_from([0.5, 0.9, 0.95, 0.99]))
@settings(max_examples=300, deadline=None)
def test_percentile_from_histogram_is_in_the_exact_values_slot(
    values: list[float], q: float
) -> None:
    histogram: dict[int, int] = {}
    for value in values:
        slot = rollup.slot_of(value)
        histogram[slot] = histogram.get(slot, 0) + 1
    exact = rollup.exact_percentile(values, q)
    estimate = rollup.percentile(histogram, q)
    assert exact is not None
    assert estimate is not None
    low, high = rollup.slot_range(rollup.slot_of(exact))
    assert low <= estimate <= high
    assert low <= exact <= high or (exact == 0 and low == 0)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["s1", "s2"]),
            times,
            durations,
            st.sampled_from(["plate.read", "cart", "member.recognized", "stream"]),
            st.sampled_from(["motion", "interval", "handshake"]),
        ),
        max_size=200,
    )
)
@settings(max_examples=200, deadline=None)
def test_hours_sum_to_days_and_totals(events: list[tuple[str, float, float, str, str]]) -> None:
    items: list[tuple[str, str, float, dict[str, Any]]] = []
    for site, ts, duration, kind, trigger in events:
        payload: dict[str, Any] = {"trigger": trigger, "plate": "X"} if kind == "plate.read" else {}
        if kind == "cart":
            payload = {"rental": {"duration_s": duration}}
        items.append((site, kind, ts, payload))
    hours = rollup.deltas(items)
    days: dict[tuple[str, int], rollup.Delta] = {}
    for (site, bucket), delta in hours.items():
        assert bucket % 3600 == 0
        days.setdefault((site, rollup.day_bucket(bucket)), rollup.Delta()).add(delta)
    # The same events bucketed by day directly give the same sums.
    direct: dict[tuple[str, int], rollup.Delta] = {}
    for site, kind, ts, payload in items:
        one = rollup.event_delta(kind, payload)
        if one is not None:
            direct.setdefault((site, rollup.day_bucket(ts)), rollup.Delta()).add(one)
    assert days.keys() == direct.keys()
    for key, delta in days.items():
        other = direct[key]
        assert delta.row()["plate_reads"] == other.plate_reads
        assert (delta.vehicles, delta.rentals, delta.durations) == (
            other.vehicles,
            other.rentals,
            other.durations,
        )
        assert math.isclose(delta.rental_total_s, other.rental_total_s, rel_tol=1e-9, abs_tol=1e-6)
    reads = sum(1 for _, _, _, kind, _ in events if kind == "plate.read")
    assert sum(d.plate_reads for d in hours.values()) == reads
    vehicles = sum(1 for *_, kind, trig in events if kind == "plate.read" and trig != "interval")
    assert sum(d.vehicles for d in hours.values()) == vehicles


def test_event_deltas_count_what_they_should() -> None:
    assert rollup.event_delta("stream", {"status": "online"}) is None
    assert rollup.event_delta("cart", {"state": "locked"}) is None
    assert rollup.event_delta("cart", {"rental": {"duration_s": "soon"}}) is None
    assert rollup.event_delta("cart", {"rental": {"duration_s": True}}) is None
    rental = rollup.event_delta("rental", {"duration_s": 45})
    assert rental is not None
    assert (rental.rentals, rental.durations) == (1, {1: 1})
    assert rollup.percentile({}) is None
    assert rollup.percentile({rollup.SLOTS - 1: 3}) == rollup.DURATION_BOUNDS[-1]
    assert rollup.slot_of(30) == 0
    assert rollup.slot_of(30.01) == 1
    assert rollup.slot_of(-5) == 0


@given(st.text(min_size=1, max_size=8), st.text(max_size=8))
@settings(max_examples=300, deadline=None)
def test_prefix_bound_covers_exactly_the_prefix(prefix: str, rest: str) -> None:
    upper = prefix_upper_bound(prefix)
    candidate = prefix + rest
    assert candidate >= prefix
    assert upper is None or candidate < upper


def test_cursor_round_trip() -> None:
    assert decode_cursor(encode_cursor(1.5e9 + 0.25, 42)) == (1.5e9 + 0.25, 42)
