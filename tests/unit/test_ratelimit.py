from __future__ import annotations

import pytest

from edge.api.ratelimit import RateLimiter

pytestmark = pytest.mark.unit


def test_one_noisy_client_does_not_exhaust_another() -> None:
    limiter = RateLimiter(rate=10, burst=5)
    now = 100.0
    allowed = sum(limiter.allow("ip:noisy", now) == 0.0 for _ in range(50))
    assert allowed == 5
    assert limiter.allow("ip:noisy", now) == pytest.approx(0.1)
    assert limiter.allow("ip:quiet", now) == 0.0


def test_tokens_refill_at_the_rate() -> None:
    limiter = RateLimiter(rate=10, burst=2)
    assert limiter.allow("c", 0.0) == 0.0
    assert limiter.allow("c", 0.0) == 0.0
    assert limiter.allow("c", 0.0) > 0
    assert limiter.allow("c", 0.1) == 0.0  # one token back after 1/rate
    assert limiter.allow("c", 0.1) > 0


def test_client_table_is_bounded() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_clients=100)
    for i in range(1000):
        limiter.allow(f"ip:10.0.{i // 256}.{i % 256}", 0.0)
    assert len(limiter._buckets) == 100
