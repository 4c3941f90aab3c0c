"""Plate Recognizer's Snapshot API (the cloud, or an on-prem SDK) as a :class:`Recognizer`.

``POST {url}`` with ``Authorization: Token KEY`` and a multipart form: ``upload`` (the JPEG),
``regions`` (repeated), ``camera_id``, ``timestamp`` (UTC, ISO 8601), ``mmc``, ``config``
(JSON text). The answer is mapped by the pure :func:`~edge.plates.cloud_response.map_response`;
the raw JSON is kept.

Around each call, in this order:

- a token that was never set → ``not_configured``; a 403 in the last hour → ``no_credits``
  (lifted early when the statistics show lookups left);
- the month's quota (``GET {statistics_url}``, read at the first call, then every few minutes
  or ~100 calls, counting our own calls in between; ``monthly_quota`` overrides the total):
  at ``quota_reserve`` lookups left or fewer → ``quota_exhausted``, nothing is sent;
- the circuit breaker (failures in a row) → ``circuit_open``;
- pictures over ``max_upload_bytes`` are scaled down first (on a worker thread);
- the token bucket before every request, retries included; a 429 defers the bucket by the wait
  it names and the picture is sent again, until the caller's deadline (a 429 never loses a
  read); 5xx, timeouts and transport errors are retried ``retries`` times with jittered
  exponential back-off; a 413 scales the picture down once more and retries once.

Refusals are :class:`RecognizerUnavailable` (no request sent); failures :class:`RecognizerError`.
The token is never logged nor put in a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from edge.plates.cloud_response import (
    NAME,
    Normalize,
    map_response,
    shrink_jpeg,
    simple_normalize,
)
from edge.plates.throttle import CircuitBreaker, TokenBucket, parse_retry_after
from edge.plates.types import Picture, Recognition, RecognizerError, RecognizerUnavailable
from fleet_common.logs import QuietLogger

if TYPE_CHECKING:
    from edge.config import PlateCloudConfig
    from edge.metrics import EdgeMetrics

__all__ = ["PlateRecognizerCloud"]

log = logging.getLogger("edge.plates.cloud")

QUOTA_REFRESH_S = 300.0  # statistics re-read at most this often...
QUOTA_REFRESH_CALLS = 100  # ...or after this many of our own calls
QUOTA_RETRY_S = 60.0  # after a failed statistics read
NO_CREDITS_PAUSE_S = 3600.0  # a 403 stops calls this long (unless the statistics say otherwise)
DEFAULT_DEADLINE_S = 60.0  # when the caller gives none
BACKOFF_MAX_S = 5.0


@dataclass
class _Upload:
    jpeg: bytes
    scale: float  # sent size / picture size


# ---------------------------------------------------------------------- the quota
@dataclass
class _Quota:
    total: int | None  # lookups per period (None: unknown, no limit applied)
    used: int  # as read from the statistics (0 when never read)
    resets_on: str | None
    read_at: float  # monotonic time of the read (-inf: never)
    local_calls: int = 0  # our lookups since then

    @property
    def remaining(self) -> int | None:
        return None if self.total is None else self.total - self.used - self.local_calls

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total, "used": self.used + self.local_calls,
            "remaining": self.remaining, "resets_on": self.resets_on,
        }  # fmt: skip


class PlateRecognizerCloud:
    """The Snapshot API client (see the module docstring). ``config`` is read at each call
    (the live config edits it in place). ``normalize`` turns the cloud's text into a plate
    (the service passes ``fit_plate`` with the site's formats). ``transport``, ``clock``,
    ``backoff_s`` and ``rng`` are for tests."""

    name = NAME

    def __init__(
        self,
        config: PlateCloudConfig,
        *,
        normalize: Normalize = simple_normalize,
        metrics: EdgeMetrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        backoff_s: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._normalize = normalize
        self._metrics = metrics
        self._clock = clock
        self._backoff_s = backoff_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._bucket = TokenBucket(config.rate_per_s, config.burst, clock)
        self._breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_s, clock)
        self._client = httpx.AsyncClient(
            transport=transport, timeout=config.timeout_s, follow_redirects=False,
            headers={"User-Agent": "carwash-edge"},
        )  # fmt: skip
        self._quota: _Quota | None = None
        self._quota_lock = asyncio.Lock()
        self._quota_task: asyncio.Task[None] | None = None
        self._quota_error: str | None = None
        self._quota_next_try = -math.inf
        self._no_credits_at: float | None = None
        self._last_error: dict[str, Any] | None = None
        self._calls = 0  # lookups answered 200 since start
        self._quiet = QuietLogger(log)
        self._closed = False

    # ------------------------------------------------------------------ the Recognizer API
    async def recognize(
        self, picture: Picture, *, camera_id: str = "", deadline_s: float | None = None
    ) -> Recognition:
        """Read ``picture`` with Plate Recognizer within ``deadline_s`` (rate-limit waits, 429s
        and retries included; 60 s when None). Raises :class:`RecognizerUnavailable`
        (``not_configured``, ``no_credits``, ``quota_exhausted``, ``circuit_open``,
        ``throttled``) or :class:`RecognizerError` (``timeout``, ``unreachable``, ``http_NNN``,
        ``too_large``, ``bad_response``, ``bad_image``)."""
        started = self._clock()
        deadline = started + (DEFAULT_DEADLINE_S if deadline_s is None else deadline_s)
        self._follow_config()
        try:
            self._refuse_early()
            await self._refresh_quota_if_due(deadline)
            self._refuse_no_credits(self._clock())
            self._refuse_quota()
            trial = self._breaker.check()
        except RecognizerUnavailable as err:
            self._count_refusal(err)
            raise
        try:
            upload = await self._fit(picture, self.config.max_upload_bytes)
            body, upload = await self._exchange(picture, upload, camera_id, deadline)
            elapsed = self._clock() - started
            result = map_response(
                body, normalize=self._normalize, latency_ms=elapsed * 1000.0, scale=upload.scale
            )
        except RecognizerUnavailable as err:
            if err.reason != "no_credits":  # that one answers a request (a 403), not a refusal
                self._count_refusal(err)
            self._note_error(err)
            raise
        except RecognizerError as err:
            self._note_error(err)
            raise
        finally:
            if trial:
                self._breaker.release()  # no-op once success()/failure() gave the verdict
            self._set_breaker_gauge()
        if self._metrics is not None:
            self._metrics.plate_recognize_seconds.labels(recognizer=NAME).observe(elapsed)
        return result

    def status(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "state": self._state(now),
            "quota": None if self._quota is None else self._quota.as_dict(),
            "breaker": self._breaker.as_dict(),
            "last_error": self._last_error,
            "rate_per_s": self.config.rate_per_s,
            "burst": self.config.burst,
            "throttled_for_s": round(self._bucket.deferred_for(), 2),
            "calls": self._calls,
            "quota_error": self._quota_error,
        }

    async def aclose(self) -> None:
        self._closed = True
        task, self._quota_task = self._quota_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()

    # ------------------------------------------------------------------ the quota
    async def refresh_quota(self) -> dict[str, Any] | None:
        """Read the month's usage from ``statistics_url`` now (``monthly_quota`` overrides the
        total). Returns the quota (None when unknown); raises :class:`RecognizerError` when the
        statistics cannot be read."""
        async with self._quota_lock:
            await self._read_statistics()
        return None if self._quota is None else self._quota.as_dict()

    async def _read_statistics(self) -> None:
        cfg = self.config
        now = self._clock()
        total_override = cfg.monthly_quota
        if cfg.statistics_url is None or cfg.token is None:
            if self._quota is None:  # our own count only
                self._quota = _Quota(total_override, 0, None, now)
            else:
                self._quota.total = total_override
                self._quota.read_at = now
            self._after_quota_read(now)
            return
        headers = {"Authorization": f"Token {cfg.token.get_secret_value()}"}
        self._quota_next_try = now + QUOTA_RETRY_S
        try:
            async with asyncio.timeout(cfg.timeout_s):
                resp = await self._client.get(cfg.statistics_url, headers=headers)
        except (TimeoutError, httpx.HTTPError) as err:
            self._quota_error = f"statistics not read: {type(err).__name__}"
            raise RecognizerError("statistics_failed", self._quota_error) from err
        if resp.status_code != 200:
            self._quota_error = f"statistics not read: HTTP {resp.status_code}"
            raise RecognizerError("statistics_failed", self._quota_error)
        try:
            data = resp.json()
            usage = data["usage"]
            used = int(usage["calls"])
            total = int(data["total_calls"]) if data.get("total_calls") is not None else None
            resets_on = usage.get("resets_on")
        except (ValueError, KeyError, TypeError) as err:
            self._quota_error = "statistics not as documented"
            raise RecognizerError("statistics_failed", self._quota_error) from err
        self._quota = _Quota(
            total_override if total_override is not None else total, used,
            None if resets_on is None else str(resets_on), now,
        )  # fmt: skip
        self._quota_error = None
        self._after_quota_read(now)

    def _after_quota_read(self, now: float) -> None:
        quota = self._quota
        assert quota is not None  # noqa: S101 - set by the caller
        remaining = quota.remaining
        if self._metrics is not None:
            value = float("nan") if remaining is None else float(remaining)
            self._metrics.plate_cloud_quota_remaining.set(value)
        lifted = remaining is not None and remaining > self.config.quota_reserve
        if self._no_credits_at is not None and lifted:
            log.info("plates: Plate Recognizer shows %s lookups left; calls resume", remaining)
            self._no_credits_at = None

    def _quota_due(self, now: float) -> bool:
        quota = self._quota
        if now < self._quota_next_try:
            return False
        if quota is None:
            return True
        if quota.resets_on is not None and _past(quota.resets_on):
            return True
        return now - quota.read_at >= QUOTA_REFRESH_S or quota.local_calls >= QUOTA_REFRESH_CALLS

    async def _refresh_quota_if_due(self, deadline: float) -> None:
        if not self._quota_due(self._clock()):
            return
        if self._quota is None:  # the first read decides whether we may call at all
            await self._refresh_quietly(deadline)
        elif self._quota_task is None or self._quota_task.done():  # later ones: beside the call
            self._quota_task = asyncio.get_running_loop().create_task(
                self._refresh_quietly(None), name="plates-cloud-quota"
            )

    async def _refresh_quietly(self, deadline: float | None) -> None:
        try:
            async with self._quota_lock:
                if not self._quota_due(self._clock()):
                    return  # read by another call meanwhile
                if deadline is None:
                    await self._read_statistics()
                else:
                    async with asyncio.timeout(max(0.0, deadline - self._clock())):
                        await self._read_statistics()
        except (RecognizerError, TimeoutError) as err:
            message = err.message if isinstance(err, RecognizerError) else "statistics timed out"
            self._quiet.failure("plates: Plate Recognizer quota unknown (%s)", message)

    def _refuse_quota(self) -> None:
        quota = self._quota
        if quota is None or quota.remaining is None:
            return
        reserve = self.config.quota_reserve
        remaining = quota.remaining
        if remaining > reserve:
            return
        until = f"until {quota.resets_on}" if quota.resets_on else "until the quota is raised"
        raise RecognizerUnavailable(
            "quota_exhausted",
            f"Plate Recognizer quota used up: {max(remaining, 0)} of {quota.total} lookups left"
            f" this month and {reserve} are kept in reserve; no calls {until}",
            retry_after_s=_seconds_until(quota.resets_on) or QUOTA_REFRESH_S,
        )

    def _count_call(self) -> None:
        self._calls += 1
        if self._quota is not None:
            self._quota.local_calls += 1
            if self._metrics is not None and self._quota.remaining is not None:
                self._metrics.plate_cloud_quota_remaining.set(float(self._quota.remaining))

    # ------------------------------------------------------------------ refusals
    def _refuse_early(self) -> None:
        if self._closed:
            raise RecognizerError("closed", "the Plate Recognizer client is closed")
        if self.config.token is None:
            raise RecognizerUnavailable("not_configured", "no Plate Recognizer token is set")

    def _refuse_no_credits(self, now: float) -> None:
        """After a 403: refuse for an hour, unless the statistics read since show lookups."""
        if self._no_credits_at is not None:
            left = self._no_credits_at + NO_CREDITS_PAUSE_S - now
            if left > 0:
                raise RecognizerUnavailable(
                    "no_credits",
                    "Plate Recognizer answered 403 (no lookups left on the account, or the"
                    f" token was refused); calls paused for {left / 60:.0f} min",
                    retry_after_s=round(left, 1),
                )
            self._no_credits_at = None

    def _state(self, now: float) -> str:
        if self.config.token is None:
            return "not_configured"
        if self._no_credits_at is not None and now - self._no_credits_at < NO_CREDITS_PAUSE_S:
            return "no_credits"
        try:
            self._refuse_quota()
        except RecognizerUnavailable:
            return "quota_exhausted"
        if self._breaker.state != "closed":
            return "circuit_open"
        if self._bucket.deferred_for() > 0:
            return "throttled"
        return "ok"

    # ------------------------------------------------------------------ the exchange
    async def _exchange(
        self, picture: Picture, upload: _Upload, camera_id: str, deadline: float
    ) -> tuple[Any, _Upload]:
        """Send until an answer, a final error, or the deadline. Returns (JSON body, upload)."""
        failures = 0
        shrunk_for_413 = False
        while True:
            waited = await self._bucket.acquire(deadline)
            if waited > 0 and self._metrics is not None:
                self._metrics.plate_cloud_wait_seconds.inc(waited)
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise RecognizerError("timeout", "no time left for Plate Recognizer")
            try:
                resp = await self._post(picture, upload, camera_id, remaining)
            except RecognizerUnavailable:
                raise
            except RecognizerError as err:  # timeout or transport: retry
                failures = await self._failed(err, failures, deadline)
                continue
            status = resp.status_code
            if status in (200, 201):
                try:
                    body = resp.json()
                except ValueError:
                    body = None
                results = body.get("results") if isinstance(body, dict) else None
                if not isinstance(results, list):
                    self._outcome("bad_response")
                    self._breaker.failure()
                    raise RecognizerError(
                        "bad_response", "Plate Recognizer's answer is not the documented JSON"
                    )
                self._outcome("ok" if results else "no_plate")
                self._breaker.success()
                self._quiet.reset("plates: Plate Recognizer answers again")
                self._count_call()
                return body, upload
            if status == 429:
                wait = parse_retry_after(_detail(resp), resp.headers.get("Retry-After"))
                wait = 1.0 if wait is None else wait
                self._outcome("throttled_429")
                log.debug("plates: Plate Recognizer throttled us; next call in %.1f s", wait)
                self._bucket.defer(wait)
                continue  # the bucket waits (or refuses when past the deadline)
            if status == 403:
                self._outcome("no_credits_403")
                self._no_credits_at = self._clock()
                log.warning(
                    "plates: Plate Recognizer answered 403 (no lookups left or token refused);"
                    " cloud calls stop for %.0f min or until the statistics show lookups left",
                    NO_CREDITS_PAUSE_S / 60,
                )
                raise RecognizerUnavailable(
                    "no_credits", f"Plate Recognizer refused the lookup (403): {_detail(resp)}",
                    retry_after_s=NO_CREDITS_PAUSE_S,
                )  # fmt: skip
            if status == 413:
                self._outcome("too_large_413")
                if shrunk_for_413:
                    raise RecognizerError("too_large", "Plate Recognizer refused the picture (413)")
                shrunk_for_413 = True
                upload = await self._fit(picture, max(len(upload.jpeg) // 2, 1000), force=True)
                continue
            if status >= 500:
                self._outcome("http_5xx")
                failed = RecognizerError(f"http_{status}", f"Plate Recognizer answered {status}")
                failures = await self._failed(failed, failures, deadline)
                continue
            self._outcome("http_error")
            if status != 400:  # 400: this picture; 401, 404...: the setup (count towards breaker)
                self._breaker.failure()
            raise RecognizerError(
                f"http_{status}", f"Plate Recognizer answered {status}: {_detail(resp)}"
            )

    async def _post(
        self, picture: Picture, upload: _Upload, camera_id: str, remaining: float
    ) -> httpx.Response:
        cfg = self.config
        token = cfg.token
        if token is None:
            raise RecognizerUnavailable("not_configured", "no Plate Recognizer token is set")
        data: dict[str, Any] = {}
        if cfg.regions:
            data["regions"] = list(cfg.regions)  # repeated fields
        if camera_id:
            data["camera_id"] = camera_id
        if picture.captured_at > 0:
            when = datetime.fromtimestamp(picture.captured_at, UTC)
            data["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S")
        if cfg.mmc:
            data["mmc"] = "true"
        if cfg.engine_config:
            data["config"] = cfg.engine_config
        files = {"upload": ("snapshot.jpg", upload.jpeg, "image/jpeg")}
        headers = {"Authorization": f"Token {token.get_secret_value()}"}
        budget = min(cfg.timeout_s, remaining)
        try:
            async with asyncio.timeout(budget):  # the whole exchange, however the server trickles
                return await self._client.post(
                    cfg.url, data=data, files=files, headers=headers, timeout=budget
                )
        except (TimeoutError, httpx.TimeoutException):
            self._outcome("timeout")
            raise RecognizerError(
                "timeout", f"Plate Recognizer did not answer within {budget:.1f} s"
            ) from None
        except httpx.HTTPError as err:
            self._outcome("http_error")
            raise RecognizerError(
                "unreachable", f"Plate Recognizer unreachable: {type(err).__name__}"
            ) from err

    async def _failed(self, err: RecognizerError, failures: int, deadline: float) -> int:
        """A retryable failure: count it, then back off or raise ``err``."""
        self._breaker.failure()
        self._quiet.failure("plates: Plate Recognizer: %s", err.message)
        failures += 1
        if failures > self.config.retries or self._breaker.is_open:
            raise err
        pause = min(BACKOFF_MAX_S, self._backoff_s * 2 ** (failures - 1))
        pause *= self._rng.uniform(0.5, 1.5)
        if self._clock() + pause >= deadline:
            raise err
        await asyncio.sleep(pause)
        return failures

    async def _fit(self, picture: Picture, max_bytes: int, *, force: bool = False) -> _Upload:
        """The picture as sent: itself, or scaled down under ``max_bytes`` (worker thread)."""
        if len(picture.jpeg) <= max_bytes and not force:
            return _Upload(picture.jpeg, 1.0)

        def work() -> _Upload:
            jpeg, scale = shrink_jpeg(picture.bgr(), len(picture.jpeg), max_bytes)
            return _Upload(jpeg, scale)

        upload = await asyncio.to_thread(work)
        if self._metrics is not None:
            self._metrics.plate_cloud_downscaled.inc()
        log.debug(
            "plates: picture of %d bytes scaled by %.2f to %d bytes for Plate Recognizer",
            len(picture.jpeg), upload.scale, len(upload.jpeg),
        )  # fmt: skip
        return upload

    # ------------------------------------------------------------------ bookkeeping
    def _follow_config(self) -> None:
        cfg = self.config
        self._bucket.configure(cfg.rate_per_s, cfg.burst)
        self._breaker.configure(cfg.breaker_failures, cfg.breaker_reset_s)

    def _outcome(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.plate_cloud_requests.labels(outcome=outcome).inc()

    def _count_refusal(self, err: RecognizerUnavailable) -> None:
        if self._metrics is not None:
            self._metrics.plate_cloud_refused.labels(reason=err.reason).inc()

    def _note_error(self, err: RecognizerError) -> None:
        self._last_error = {
            "code": err.code, "message": err.message,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }  # fmt: skip

    def _set_breaker_gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.plate_cloud_breaker_open.set(1.0 if self._breaker.is_open else 0.0)


def _detail(resp: httpx.Response) -> str:
    """The error's ``detail`` (Django REST framework's field), or the start of the body."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])[:200]
    return json.dumps(data)[:200]


def _parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _past(text: str) -> bool:
    when = _parse_time(text)
    return when is not None and when <= datetime.now(UTC)


def _seconds_until(text: str | None) -> float | None:
    when = None if text is None else _parse_time(text)
    return None if when is None else max(0.0, (when - datetime.now(UTC)).total_seconds())
