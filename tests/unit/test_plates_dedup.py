"""Deduplication (edge/plates/dedup.py): the same plate at the same bay within a window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.plates.dedup import MAX_ENTRIES, Deduper, Recent

pytestmark = pytest.mark.unit


def test_the_same_plate_within_the_window_is_the_earlier_read() -> None:
    d = Deduper(120.0)
    assert d.check("AB123CD", 1000.0) is None
    d.remember("AB123CD", 1000.0, 7)
    assert d.check("AB123CD", 1000.0) == Recent("AB123CD", 1000.0, 7)
    assert d.check("ab-123 cd", 1119.9) == Recent("AB123CD", 1000.0, 7)
    assert d.check("AB123CD", 1120.0) is None  # the window is over
    assert len(d) == 0  # and it is forgotten


def test_another_plate_is_not_a_duplicate() -> None:
    d = Deduper(120.0)
    d.remember("AB123CD", 1000.0, 7)
    assert d.check("XY987ZZ", 1001.0) is None
    assert d.check("AB125CE", 1001.0) is None  # two edits


@pytest.mark.parametrize("read", ["AB12CD", "AB1234CD", "AB128CD", "8AB123CD"])
def test_a_plate_one_edit_away_is_the_same_car(read: str) -> None:
    d = Deduper(60.0)
    d.remember("AB123CD", 10.0, 1)
    found = d.check(read, 20.0)
    assert found is not None
    assert found.read_id == 1


def test_a_candidate_equal_to_an_earlier_plate_is_the_same_car() -> None:
    d = Deduper(60.0)
    d.remember("AB123CD", 10.0, 1)
    found = d.check("QQ999QQ", 20.0, candidates=["XX", "ab123cd"])
    assert found is not None
    assert found.read_id == 1


def test_exact_beats_candidate_beats_fuzzy_and_the_latest_fuzzy_wins() -> None:
    d = Deduper(60.0)
    d.remember("AB123CD", 10.0, 1)
    d.remember("AB124CD", 11.0, 2)
    d.remember("KLM4567", 12.0, 3)
    found = d.check("AB123CD", 20.0, candidates=["KLM4567"])
    assert found is not None
    assert found.read_id == 1
    found = d.check("AB129CD", 20.0, candidates=["KLM4567"])
    assert found is not None
    assert found.read_id == 3
    found = d.check("AB129CD", 20.0)  # one edit from both: the latest
    assert found is not None
    assert found.read_id == 2


def test_remembering_again_restarts_the_window() -> None:
    d = Deduper(60.0)
    d.remember("AB123CD", 0.0, 1)
    d.remember("AB123CD", 50.0, 2)
    assert d.check("AB123CD", 100.0) == Recent("AB123CD", 50.0, 2)
    assert len(d) == 1


def test_the_window_is_read_live() -> None:
    d = Deduper(60.0)
    d.remember("AB123CD", 0.0, 1)
    d.window_s = 10.0
    assert d.check("AB123CD", 30.0) is None
    d.remember("AB123CD", 30.0, 2)
    d.window_s = 0.0  # off
    assert d.check("AB123CD", 30.0) is None
    assert len(d) == 0


def test_a_clock_stepping_back_forgets() -> None:
    d = Deduper(60.0)
    d.remember("AB123CD", 1000.0, 1)
    assert d.check("AB123CD", 999.5) is not None  # jitter is tolerated
    assert d.check("AB123CD", 900.0) is None


def test_memory_is_bounded() -> None:
    d = Deduper(1e9)

    def plate(i: int) -> str:  # any two are two edits apart
        return f"{i:04d}X{i:04d}"

    for i in range(MAX_ENTRIES + 50):
        d.remember(plate(i), float(i), i)
    assert len(d) == MAX_ENTRIES
    assert d.check(plate(49), 1e6) is None  # the oldest are dropped
    assert d.check(plate(50), 1e6) == Recent(plate(50), 50.0, 50)
    d.clear()
    assert len(d) == 0


@given(
    st.lists(
        st.tuples(st.sampled_from(["AB1", "AB2", "XY9", "KLM"]), st.floats(0.0, 5.0)),
        max_size=40,
    ),
    st.floats(0.0, 20.0),
)
def test_never_a_read_older_than_the_window(reads: list[tuple[str, float]], window: float) -> None:
    d = Deduper(window, max_entries=3)
    now = 0.0
    for n, (plate, step) in enumerate(reads):
        now += step
        found = d.check(plate, now)
        if found is not None:
            assert 0.0 <= now - found.at < window
        else:
            d.remember(plate, now, n)
        assert len(d) <= 3
