"""Token bucket, circuit breaker and the 429 wait parser, on a fake clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.plates.throttle import CircuitBreaker, TokenBucket, parse_retry_after
from edge.plates.types import RecognizerUnavailable

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


# ---------------------------------------------------------------------- token bucket
def test_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 3, clock, clock.sleep)
    assert [bucket.try_take(clock.now) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_take(clock.now) == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.try_take(clock.now) == 0.0
    assert bucket.try_take(clock.now) == pytest.approx(0.5)
    clock.now += 10  # a quiet spell refills up to the burst, not beyond
    assert [bucket.try_take(clock.now) for _ in range(4)][-1] == pytest.approx(0.5)


def test_a_defer_stops_everyone_until_then_and_saved_tokens_are_gone() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4.0, 5, clock, clock.sleep)
    bucket.defer(1.0)
    assert bucket.deferred_for() == pytest.approx(1.0)
    clock.now += 0.5
    assert bucket.try_take(clock.now) == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.try_take(clock.now) == 0.0  # one call when the wait is over...
    assert bucket.try_take(clock.now) == pytest.approx(0.25)  # ...then the rate, no burst
    assert bucket.deferred_for() == 0.0


def test_a_shorter_defer_does_not_shorten_a_longer_one() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, 1, clock, clock.sleep)
    bucket.defer(3.0)
    bucket.defer(1.0)
    assert bucket.ready_at(clock.now) == pytest.approx(clock.now + 3.0)


@pytest.mark.asyncio
async def test_acquire_waits_for_a_token() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 1, clock, clock.sleep)
    assert await bucket.acquire(None) == 0.0
    waited = await bucket.acquire(clock.now + 5)
    assert waited == pytest.approx(0.5)
    assert clock.slept == [pytest.approx(0.5)]


@pytest.mark.asyncio
async def test_acquire_refuses_at_once_when_the_wait_passes_the_deadline() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, 1, clock, clock.sleep)
    await bucket.acquire(None)
    bucket.defer(2.0)
    with pytest.raises(RecognizerUnavailable) as refused:
        await bucket.acquire(clock.now + 1.0)
    assert refused.value.reason == "throttled"
    assert refused.value.retry_after_s == pytest.approx(2.0)
    assert clock.slept == []  # no waiting in vain


@pytest.mark.asyncio
async def test_waiters_go_in_arrival_order_and_the_hopeless_are_refused() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, 1, clock, clock.sleep)
    order: list[int] = []

    async def call(i: int, deadline: float | None) -> None:
        await bucket.acquire(deadline)
        order.append(i)

    tasks = [asyncio.create_task(call(i, None)) for i in range(4)]
    # Three are queued at 1 call/s: a fifth with 2 s to spare cannot make it.
    await asyncio.sleep(0)
    with pytest.raises(RecognizerUnavailable):
        await bucket.acquire(clock.now + 2.0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]
    assert clock.now == pytest.approx(1003.0)


def test_configure_follows_a_live_change() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, 4, clock, clock.sleep)
    bucket.configure(8.0, 2)
    assert [bucket.try_take(clock.now) for _ in range(3)][-1] == pytest.approx(1 / 8)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(0.0, 1)


steps = st.lists(
    st.tuples(
        st.floats(0.0, 1.5, allow_nan=False),  # gap before the step
        st.sampled_from(["call", "greedy", "defer"]),
        st.floats(0.0, 2.0, allow_nan=False),  # a defer's seconds
    ),
    min_size=1, max_size=80,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    rate=st.floats(0.2, 20.0, allow_nan=False),
    burst=st.integers(1, 8),
    pattern=steps,
)
def test_no_window_ever_holds_more_than_burst_plus_rate_times_its_length(
    rate: float, burst: int, pattern: list[tuple[float, str, float]]
) -> None:
    """For any call pattern, the calls granted in any window of length T are at most
    ``burst + rate * T``, and none is granted while a defer is in force."""
    clock = FakeClock(0.0)
    bucket = TokenBucket(rate, burst, clock, clock.sleep)
    granted: list[float] = []
    blackouts: list[tuple[float, float]] = []
    for gap, kind, seconds in pattern:
        clock.now += gap
        if kind == "defer":
            bucket.defer(seconds)
            blackouts.append((clock.now, clock.now + seconds))
            continue
        wait = bucket.try_take(clock.now)
        for _ in range(3):  # "greedy": a caller that waits exactly as told, then calls again
            if wait <= 0 or kind != "greedy":
                break
            clock.now += wait
            wait = bucket.try_take(clock.now)
        if wait == 0.0:
            granted.append(clock.now)
    for i in range(len(granted)):
        for j in range(i, len(granted)):
            window = granted[j] - granted[i]
            assert j - i + 1 <= burst + rate * window + 1e-6
    for start, end in blackouts:
        assert not [t for t in granted if start < t < end - 1e-9]


# ---------------------------------------------------------------------- circuit breaker
def test_the_breaker_opens_after_failures_in_a_row() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(3, 30.0, clock)
    breaker.failure()
    breaker.failure()
    breaker.success()  # the count is of failures in a row
    breaker.failure()
    breaker.failure()
    assert breaker.check() is False
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open"
    assert breaker.is_open
    with pytest.raises(RecognizerUnavailable) as refused:
        breaker.check()
    assert refused.value.reason == "circuit_open"
    assert refused.value.retry_after_s == pytest.approx(30.0)
    assert breaker.as_dict()["state"] == "open"


def test_half_open_lets_one_trial_through_then_closes_on_success() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 10.0, clock)
    breaker.failure()
    clock.now += 10.0
    assert breaker.state == "half_open"
    assert breaker.check() is True  # the trial
    with pytest.raises(RecognizerUnavailable):
        breaker.check()  # only one at a time
    breaker.success()
    assert breaker.state == "closed"
    assert breaker.check() is False


def test_a_failed_trial_opens_the_breaker_again() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(2, 10.0, clock)
    breaker.failure()
    breaker.failure()
    clock.now += 11.0
    assert breaker.check() is True
    breaker.failure()
    assert breaker.state == "open"
    assert breaker.opened == 2
    assert breaker.retry_after() == pytest.approx(10.0)


def test_a_trial_without_a_verdict_gives_its_turn_back() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.failure()
    clock.now += 5.0
    assert breaker.check() is True
    breaker.release()  # e.g. the trial was throttled or cancelled
    assert breaker.check() is True  # the next call is the trial


# ---------------------------------------------------------------------- 429 waits
@pytest.mark.parametrize(
    ("detail", "header", "expected"),
    [
        ("Request was throttled. Expected available in 1 second.", None, 1.0),
        ("Request was throttled. Expected available in 29 seconds.", None, 29.0),
        ('{"detail":"Request was throttled. Expected available in 2 seconds."}', None, 2.0),
        ("Request was throttled. Expected available in 3600s.", None, 3600.0),
        ("expected AVAILABLE in 0.5 sec", None, 0.5),
        (None, "3", 3.0),
        ("Expected available in 1 second.", "4", 4.0),  # the longer wins
        ("Request was throttled.", None, None),
        (None, "soon", None),
        (None, None, None),
    ],
)
def test_parse_retry_after(detail: str | None, header: str | None, expected: float | None) -> None:
    assert parse_retry_after(detail, header) == expected


def test_parse_retry_after_reads_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    wait = parse_retry_after(None, format_datetime(when, usegmt=True))
    assert wait is not None
    assert 27 <= wait <= 30
