"""Keeping to Plate Recognizer's limits: a token bucket, a circuit breaker, the 429 wait.

Pure: no HTTP; the clock (and the bucket's sleep) are injected so tests run on fake time.

- :class:`TokenBucket` — at most ``burst + rate * T`` calls in any window of ``T`` seconds;
  :meth:`~TokenBucket.defer` honours a 429 ("nobody calls before then"). Waiters queue in
  arrival order; one whose deadline the wait would pass is refused at once.
- :class:`CircuitBreaker` — closed → open after ``failures`` failures in a row → after
  ``reset_s`` one trial call (half-open) → closed on its success, open again on its failure.
- :func:`parse_retry_after` — the wait a 429 asks for: the body's ``Expected available in N
  second(s)`` (Django REST framework's wording, which Plate Recognizer uses) or ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from edge.plates.types import RecognizerUnavailable

__all__ = ["BreakerState", "CircuitBreaker", "TokenBucket", "parse_retry_after"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
BreakerState = Literal["closed", "open", "half_open"]


class TokenBucket:
    """``rate_per_s`` calls per second on average, ``burst`` at once after a quiet spell.

    The bucket holds up to ``burst`` tokens, refilled at ``rate_per_s``; a call takes one.
    :meth:`defer` (a 429) forbids calls until the given time and leaves at most one token for
    that moment, so the server's "available in N s" is honoured and the rate resumes after it.
    """

    def __init__(
        self, rate_per_s: float, burst: int, clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:  # fmt: skip
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate_per_s > 0 and burst >= 1")
        self.rate = float(rate_per_s)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._not_before = -math.inf
        self._lock = asyncio.Lock()  # waiters in arrival order
        self._queued = 0

    def configure(self, rate_per_s: float, burst: int) -> None:
        """Follow a live config change; tokens in hand are kept (capped at the new burst)."""
        if (rate_per_s, burst) == (self.rate, self.burst):
            return
        self._refill(self._clock())
        self.rate, self.burst = float(rate_per_s), int(burst)
        self._tokens = min(self._tokens, float(self.burst))

    # ------------------------------------------------------------------ pure part
    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def ready_at(self, now: float) -> float:
        """When the next call may go (``<= now``: at once)."""
        self._refill(now)
        at = self._updated + max(0.0, (1.0 - self._tokens) / self.rate)
        return max(at, self._not_before)

    def try_take(self, now: float) -> float:
        """Take a token if one is there (returns 0.0), else the seconds until one is."""
        wait = self.ready_at(now) - now
        if wait > 0:
            return wait
        self._tokens -= 1.0
        return 0.0

    def defer(self, seconds: float) -> None:
        """Nobody may call for ``seconds`` from now (a 429's "available in N s")."""
        now = self._clock()
        until = now + max(0.0, seconds)
        if until <= self._not_before:
            return
        self._not_before = until
        self._refill(now)
        if until > self._updated:
            # The tokens the wait earns, but no saving up: at most one call at ``until``,
            # then the rate.
            self._tokens = min(1.0, self._tokens + (until - self._updated) * self.rate)
            self._updated = until

    def deferred_for(self) -> float:
        """Seconds left of a :meth:`defer` (0.0 when none is in force)."""
        return max(0.0, self._not_before - self._clock())

    # ------------------------------------------------------------------ waiting
    async def acquire(self, deadline: float | None = None) -> float:
        """Wait for a token; returns the seconds waited. ``deadline`` is a time on the bucket's
        clock: when the wait would pass it, raise :class:`RecognizerUnavailable` ``throttled``
        at once (no waiting in vain)."""
        started = self._clock()
        self._refuse_if_hopeless(started, deadline)
        self._queued += 1
        try:
            if deadline is None:
                await self._lock.acquire()
            else:
                try:
                    async with asyncio.timeout(max(0.0, deadline - self._clock())):
                        await self._lock.acquire()
                except TimeoutError:
                    raise _throttled(0.0, "no turn came before the deadline") from None
        finally:
            self._queued -= 1
        try:
            while True:
                now = self._clock()
                wait = self.try_take(now)
                if wait <= 0:
                    return now - started
                if deadline is not None and now + wait > deadline:
                    raise _throttled(wait, f"the rate limit needs {wait:.2f} s more")
                await self._sleep(wait)
        finally:
            self._lock.release()

    def _refuse_if_hopeless(self, now: float, deadline: float | None) -> None:
        if deadline is None:
            return
        # Those ahead go first: the next free slot is the one waiting for it (if any), and
        # each after it needs 1/rate more, this call included.
        ahead = self._queued + (1 if self._lock.locked() else 0)
        expected = max(0.0, self.ready_at(now) - now) + ahead / self.rate
        if now + expected > deadline:
            raise _throttled(expected, f"{self._queued} call(s) wait before this one")


def _throttled(wait: float, why: str) -> RecognizerUnavailable:
    return RecognizerUnavailable(
        "throttled", f"Plate Recognizer's rate limit leaves no time before the deadline ({why})",
        retry_after_s=round(wait, 3),
    )  # fmt: skip


class CircuitBreaker:
    """Stop calling a failing service for a while, then try it with one call.

    :meth:`check` before a call (raises :class:`RecognizerUnavailable` ``circuit_open`` when
    open; returns True when this call is the half-open trial), then :meth:`success` or
    :meth:`failure`; a trial call that ends with neither (a 429, a cancellation) gives its turn
    back with :meth:`release`.
    """

    def __init__(self, failures: int, reset_s: float, clock: Clock = time.monotonic) -> None:
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self._state: BreakerState = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial = False
        self.opened = 0  # times it opened (status, tests)

    def configure(self, failures: int, reset_s: float) -> None:
        self.failures, self.reset_s = failures, reset_s

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_s:
            return "half_open"  # a trial call may go
        return self._state

    def retry_after(self) -> float | None:
        if self._state == "closed":
            return None
        if self._state == "half_open":  # a trial is under way: ask again soon
            return 1.0
        return max(0.0, self._opened_at + self.reset_s - self._clock())

    def check(self) -> bool:
        """May a call go now? Raises when not; True when the call is the half-open trial."""
        if self._state == "closed":
            return False
        if self._state == "open" and self.state == "half_open":
            self._state = "half_open"
            self._trial = True
            return True
        wait = self.retry_after()
        why = (
            "a trial call is under way" if self._state == "half_open"
            else f"{self._consecutive} failures in a row"
        )  # fmt: skip
        raise RecognizerUnavailable(
            "circuit_open", f"Plate Recognizer calls are paused ({why}); retry in {wait:.0f} s",
            retry_after_s=wait,
        )  # fmt: skip

    def success(self) -> None:
        self._state = "closed"
        self._consecutive = 0
        self._trial = False

    def failure(self) -> None:
        self._consecutive += 1
        if self._state == "half_open" or self._consecutive >= self.failures:
            if self._state != "open":
                self.opened += 1
            self._state = "open"
            self._opened_at = self._clock()
        self._trial = False

    def release(self) -> None:
        """The trial call ended with no verdict: let the next call be the trial."""
        if self._state == "half_open" and self._trial:
            self._trial = False
            self._state = "open"  # still past reset_s: the next check() is the trial

    @property
    def is_open(self) -> bool:
        return self._state != "closed"

    def as_dict(self) -> dict[str, Any]:
        wait = self.retry_after()
        return {
            "state": self.state,
            "consecutive_failures": self._consecutive,
            "retry_after_s": None if wait is None else round(wait, 1),
            "opened": self.opened,
        }


_AVAILABLE_IN = re.compile(
    r"available\s+in\s+(\d+(?:\.\d+)?)\s*(?:s\b|secs?\b|seconds?\b)", re.IGNORECASE
)


def parse_retry_after(detail: str | None, retry_after: str | None = None) -> float | None:
    """Seconds a 429 asks to wait: from ``Expected available in N second(s)`` in the body
    (``detail``, raw text or the ``detail`` field) and/or a ``Retry-After`` header (seconds or
    an HTTP date); the longer of the two, None when neither says."""
    found: list[float] = []
    if detail:
        match = _AVAILABLE_IN.search(detail)
        if match:
            found.append(float(match.group(1)))
    if retry_after:
        value = retry_after.strip()
        try:
            found.append(max(0.0, float(value)))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None and when.tzinfo is not None:
                found.append(max(0.0, when.timestamp() - time.time()))
    return max(found) if found else None
