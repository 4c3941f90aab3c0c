"""The Plate Recognizer client against a fake Snapshot API on real HTTP (loopback).

Checks the issue's promises: no read is lost to a 429, the rate never exceeds the bucket, a
hang never blocks the event loop, quota exhaustion stops calls with a clear status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from edge.config import PlateCloudConfig
from edge.metrics import EdgeMetrics
from edge.plates.cloud import PlateRecognizerCloud
from edge.plates.types import Picture, RecognizerError, RecognizerUnavailable
from tests.support.fake_platerecognizer import MAX_UPLOAD, Behaviour, FakePlateRecognizer

pytestmark = pytest.mark.integration

CloudFactory = Callable[..., PlateRecognizerCloud]


@pytest.fixture
def fake() -> Iterator[FakePlateRecognizer]:
    with FakePlateRecognizer() as server:
        yield server


@pytest.fixture(scope="module")
def picture() -> Picture:
    img = np.full((360, 640, 3), 90, np.uint8)
    img[250:290, 250:390] = 240  # a white plate-like patch
    return Picture.from_bgr(img, seq=7, captured_at=1_790_000_000.0)


@pytest_asyncio.fixture
async def make_cloud(fake: FakePlateRecognizer) -> AsyncIterator[CloudFactory]:
    made: list[PlateRecognizerCloud] = []

    def factory(metrics: EdgeMetrics | None = None, **overrides: Any) -> PlateRecognizerCloud:
        data: dict[str, Any] = {
            "token": fake.token, "url": fake.url, "statistics_url": fake.statistics_url,
            "rate_per_s": 50.0, "burst": 10, "timeout_s": 2.0, "retries": 2,
            "breaker_failures": 5, "breaker_reset_s": 30.0, "quota_reserve": 50,
        }  # fmt: skip
        data.update(overrides)
        cloud = PlateRecognizerCloud(
            PlateCloudConfig.model_validate(data), metrics=metrics, backoff_s=0.05
        )
        made.append(cloud)
        return cloud

    yield factory
    for cloud in made:
        await cloud.aclose()


def _metrics() -> EdgeMetrics:
    return EdgeMetrics(CollectorRegistry())


def _sample(metrics: EdgeMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value("carwash_edge_" + name, labels or None)
    return 0.0 if value is None else value


def _max_in_window(times: list[float], window: float) -> int:
    """The most requests whose arrivals fit in any closed window of ``window`` seconds."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while t - times[j] > window:
            j += 1
        best = max(best, i - j + 1)
    return best


# ---------------------------------------------------------------------- answers
@pytest.mark.asyncio
async def test_a_read_is_mapped_from_the_documented_answer(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    metrics = _metrics()
    cloud = make_cloud(metrics, regions=["fr", "be"], mmc=True, engine_config='{"mode":"fast"}')
    fake.script(Behaviour.ok("ab-123-cd", "zz999zz"))

    result = await cloud.recognize(picture, camera_id="bay-1", deadline_s=5.0)

    best = result.best
    assert best is not None
    assert best.plate == "AB123CD"
    assert best.text == "ab-123-cd"
    assert best.recognizer == "platerecognizer"
    assert best.region == "fr"
    assert best.score == pytest.approx(0.91)
    assert best.dscore == pytest.approx(0.95)
    assert best.box is not None
    assert best.box.xmin == int(640 * 0.40)
    assert best.vehicle is not None
    assert best.vehicle.type == "Sedan"
    assert [c.plate for c in best.candidates] == ["AB123CD", "AB123C0"]
    assert best.extra["color"] == [{"color": "silver", "score": 0.88}]
    assert [r.plate for r in result.reads] == ["AB123CD", "ZZ999ZZ"]
    assert result.processing_ms == pytest.approx(87.215)
    assert result.raw["results"][0]["plate"] == "ab-123-cd"  # the raw JSON is kept
    assert result.latency_ms > 0

    (sent,) = fake.lookups()
    assert sent.headers["authorization"] == f"Token {fake.token}"
    assert sent.fields["regions"] == ["fr", "be"]  # repeated, as documented
    assert sent.fields["camera_id"] == ["bay-1"]
    assert sent.fields["timestamp"] == ["2026-09-21T14:13:20"]  # UTC, ISO 8601
    assert sent.fields["mmc"] == ["true"]
    assert sent.fields["config"] == ['{"mode":"fast"}']
    assert sent.upload_size == (640, 360)
    assert _sample(metrics, "plate_cloud_requests_total", outcome="ok") == 1
    assert _sample(metrics, "plate_recognize_seconds_count", recognizer="platerecognizer") == 1
    status = cloud.status()
    assert next(iter(status)) == "state"
    assert status["state"] == "ok"
    assert status["quota"] == {
        "total": 2500, "used": 1, "remaining": 2499, "resets_on": "2026-12-01T00:00:00Z"
    }  # fmt: skip


@pytest.mark.asyncio
async def test_no_plate_is_an_empty_recognition(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    metrics = _metrics()
    cloud = make_cloud(metrics)
    fake.script(Behaviour.no_plate())
    result = await cloud.recognize(picture, deadline_s=5.0)
    assert result.reads == ()
    assert result.best is None
    assert _sample(metrics, "plate_cloud_requests_total", outcome="no_plate") == 1


# ---------------------------------------------------------------------- 429 and the rate
@pytest.mark.asyncio
async def test_a_429_delays_the_read_but_does_not_lose_it(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    metrics = _metrics()
    cloud = make_cloud(metrics)
    fake.script(Behaviour.throttled(1), Behaviour.ok("GH456JK"))

    result = await cloud.recognize(picture, deadline_s=5.0)

    assert result.best is not None
    assert result.best.plate == "GH456JK"
    first, second = fake.lookups()
    assert first.status == 429
    assert second.status == 200
    assert second.at - first.at >= 0.98  # "Expected available in 1 second" honoured
    assert _sample(metrics, "plate_cloud_requests_total", outcome="throttled_429") == 1
    assert _sample(metrics, "plate_cloud_wait_seconds_total") >= 0.9


@pytest.mark.asyncio
async def test_ten_queued_reads_all_come_through_a_burst_of_429s(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    cloud = make_cloud(rate_per_s=8.0, burst=2)
    fake.default = Behaviour.ok_from(lambda req: [req.fields["camera_id"][0]])
    fake.script(*[Behaviour.throttled(1)] * 3)

    results = await asyncio.gather(*[
        cloud.recognize(picture, camera_id=f"car{i:03d}", deadline_s=15.0) for i in range(10)
    ])  # fmt: skip

    assert [r.best.plate if r.best else None for r in results] == [f"CAR{i:03d}" for i in range(10)]
    lookups = fake.lookups()
    throttled = [r for r in lookups if r.status == 429]
    assert len(throttled) == 3
    assert len(lookups) == 13
    for hit in throttled:  # once told, nobody called within the second the 429 asked for
        assert hit.answered_at is not None
        told = hit.answered_at + 0.1  # requests already on their way may still arrive
        assert not [r for r in lookups if told < r.at < hit.answered_at + 0.98]


@pytest.mark.asyncio
async def test_concurrent_reads_never_exceed_the_token_bucket(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    rate, burst = 4.0, 1
    cloud = make_cloud(rate_per_s=rate, burst=burst)

    await asyncio.gather(*[cloud.recognize(picture, deadline_s=10.0) for _ in range(8)])

    times = [r.at for r in fake.lookups()]
    assert len(times) == 8
    # Any window of T seconds holds at most burst + rate*T requests. Arrivals are measured at
    # the server: allow 0.1 s of network and scheduling jitter on the window's length.
    jitter = 0.1
    for window in (0.15, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0):
        assert _max_in_window(times, window - jitter) <= burst + rate * window
    assert max(times) - min(times) >= (len(times) - burst) / rate - jitter


# ---------------------------------------------------------------------- failures
@pytest.mark.asyncio
async def test_a_5xx_is_retried(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    metrics = _metrics()
    cloud = make_cloud(metrics)
    fake.script(Behaviour.error(502), Behaviour.ok("LM789NP"))
    result = await cloud.recognize(picture, deadline_s=5.0)
    assert result.best is not None
    assert result.best.plate == "LM789NP"
    assert [r.status for r in fake.lookups()] == [502, 200]
    assert _sample(metrics, "plate_cloud_requests_total", outcome="http_5xx") == 1
    assert cloud.status()["breaker"]["state"] == "closed"


@pytest.mark.asyncio
async def test_5xx_forever_fails_after_the_retries_then_the_breaker_stops_calls(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    metrics = _metrics()
    cloud = make_cloud(metrics, retries=2, breaker_failures=3)
    fake.default = Behaviour.error(500)

    with pytest.raises(RecognizerError) as failed:
        await cloud.recognize(picture, deadline_s=5.0)
    assert failed.value.code == "http_500"
    assert len(fake.lookups()) == 3  # the call and two retries

    with pytest.raises(RecognizerUnavailable) as refused:
        await cloud.recognize(picture, deadline_s=5.0)
    assert refused.value.reason == "circuit_open"
    assert refused.value.retry_after_s
    assert len(fake.lookups()) == 3  # refused without a request
    status = cloud.status()
    assert status["state"] == "circuit_open"
    assert status["breaker"]["state"] == "open"
    assert status["last_error"]["code"] == "http_500"  # the cause, not the refusals
    assert _sample(metrics, "plate_cloud_breaker_open") == 1
    assert _sample(metrics, "plate_cloud_refused_total", reason="circuit_open") == 1


@pytest.mark.asyncio
async def test_a_hung_server_costs_the_timeout_and_never_stalls_the_loop(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    metrics = _metrics()
    timeout_s = 1.0
    cloud = make_cloud(metrics, timeout_s=timeout_s, retries=0)
    fake.default = Behaviour.hang()
    stalls: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            stalls.append(now - last - 0.01)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.monotonic()
    with pytest.raises(RecognizerError) as failed:
        await cloud.recognize(picture, deadline_s=10.0)
    elapsed = time.monotonic() - started
    done.set()
    await tick

    assert failed.value.code == "timeout"
    assert timeout_s - 0.05 <= elapsed <= timeout_s + 0.5
    assert len(stalls) > 50
    assert max(stalls) < 0.1
    assert _sample(metrics, "plate_cloud_requests_total", outcome="timeout") == 1


@pytest.mark.asyncio
async def test_a_hang_within_a_short_deadline_costs_only_the_deadline(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    cloud = make_cloud(timeout_s=5.0, retries=2)
    fake.default = Behaviour.hang()
    started = time.monotonic()
    with pytest.raises(RecognizerError) as failed:
        await cloud.recognize(picture, deadline_s=0.5)
    assert failed.value.code == "timeout"
    assert time.monotonic() - started < 0.9


# ---------------------------------------------------------------------- credits and quota
@pytest.mark.asyncio
async def test_403_stops_calls_with_no_credits(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    metrics = _metrics()
    cloud = make_cloud(metrics)
    fake.default = Behaviour.no_credits()

    with pytest.raises(RecognizerUnavailable) as first:
        await cloud.recognize(picture, deadline_s=5.0)
    assert first.value.reason == "no_credits"
    with pytest.raises(RecognizerUnavailable) as second:
        await cloud.recognize(picture, deadline_s=5.0)
    assert second.value.reason == "no_credits"

    assert len(fake.lookups()) == 1  # nothing more was sent
    assert cloud.status()["state"] == "no_credits"
    assert _sample(metrics, "plate_cloud_requests_total", outcome="no_credits_403") == 1
    assert _sample(metrics, "plate_cloud_refused_total", reason="no_credits") == 1


@pytest.mark.asyncio
async def test_quota_at_the_reserve_sends_nothing(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    metrics = _metrics()
    fake.usage_calls, fake.total_calls = 2450, 2500
    cloud = make_cloud(metrics, quota_reserve=50)

    with pytest.raises(RecognizerUnavailable) as refused:
        await cloud.recognize(picture, deadline_s=5.0)

    assert refused.value.reason == "quota_exhausted"
    assert "50 of 2500 lookups left" in refused.value.message
    assert "2026-12-01" in refused.value.message
    assert fake.lookups() == []  # no request sent
    status = cloud.status()
    assert status["state"] == "quota_exhausted"
    assert status["quota"]["remaining"] == 50
    assert _sample(metrics, "plate_cloud_quota_remaining") == 50
    assert _sample(metrics, "plate_cloud_refused_total", reason="quota_exhausted") == 1


@pytest.mark.asyncio
async def test_monthly_quota_overrides_the_total_and_our_calls_count(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    fake.usage_calls, fake.total_calls = 0, 100_000
    cloud = make_cloud(monthly_quota=52, quota_reserve=50)

    await cloud.recognize(picture, deadline_s=5.0)  # 52 left before, 51 after
    await cloud.recognize(picture, deadline_s=5.0)  # 51 before, 50 after: our count
    with pytest.raises(RecognizerUnavailable) as refused:
        await cloud.recognize(picture, deadline_s=5.0)

    assert refused.value.reason == "quota_exhausted"
    assert len(fake.lookups()) == 2
    assert cloud.status()["quota"] == {
        "total": 52,
        "used": 2,
        "remaining": 50,
        "resets_on": "2026-12-01T00:00:00Z",
    }


# ---------------------------------------------------------------------- size
@pytest.mark.asyncio
async def test_a_4mb_picture_is_scaled_down_and_accepted(
    fake: FakePlateRecognizer, make_cloud: CloudFactory
) -> None:
    metrics = _metrics()
    cloud = make_cloud(metrics)
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    big = await asyncio.to_thread(Picture.from_bgr, noise, quality=97)
    assert len(big.jpeg) > 4_000_000

    result = await cloud.recognize(big, deadline_s=10.0)

    (sent,) = fake.lookups()
    assert sent.status == 200
    assert sent.upload_bytes is not None
    assert sent.upload_bytes <= MAX_UPLOAD
    assert sent.upload_size is not None
    assert sent.upload_size[0] < 2000
    best = result.best
    assert best is not None
    assert best.box is not None
    assert best.box.xmin == pytest.approx(2000 * 0.40, abs=4)  # back in the picture's pixels
    assert _sample(metrics, "plate_cloud_downscaled_total") == 1


@pytest.mark.asyncio
async def test_a_413_scales_down_and_retries_once(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    metrics = _metrics()
    cloud = make_cloud(metrics)
    fake.script(Behaviour.too_large())
    result = await cloud.recognize(picture, deadline_s=5.0)
    assert result.best is not None
    first, second = fake.lookups()
    assert first.status == 413
    assert second.status == 200
    assert second.upload_bytes is not None
    assert first.upload_bytes is not None
    assert second.upload_bytes < first.upload_bytes
    assert _sample(metrics, "plate_cloud_requests_total", outcome="too_large_413") == 1


@pytest.mark.asyncio
async def test_the_token_is_never_logged(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    cloud = make_cloud(retries=1, breaker_failures=2)
    fake.script(Behaviour.throttled(1), Behaviour.error(500), Behaviour.error(503))
    with pytest.raises(RecognizerError):
        await cloud.recognize(picture, deadline_s=5.0)
    other = make_cloud()
    fake.script(Behaviour.no_credits())
    with pytest.raises(RecognizerUnavailable):
        await other.recognize(picture, deadline_s=5.0)

    assert len(caplog.records) > 5
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "403" in text
    assert fake.token not in text
    assert fake.token not in str(cloud.status()) + str(other.status())


@pytest.mark.asyncio
async def test_a_wrong_token_is_an_error_that_counts_towards_the_breaker(
    fake: FakePlateRecognizer, make_cloud: CloudFactory, picture: Picture
) -> None:
    cloud = make_cloud(token="not-the-token", breaker_failures=1)  # noqa: S106
    with pytest.raises(RecognizerError) as failed:
        await cloud.recognize(picture, deadline_s=5.0)
    assert failed.value.code == "http_401"
    assert cloud.status()["state"] == "circuit_open"
    assert cloud.status()["quota_error"] == "statistics not read: HTTP 401"


@pytest.mark.asyncio
async def test_the_fake_refuses_uploads_over_3mb_and_non_jpegs(fake: FakePlateRecognizer) -> None:
    headers = {"Authorization": f"Token {fake.token}"}
    async with httpx.AsyncClient(timeout=10.0) as client:
        big = await client.post(
            fake.url, headers=headers, files={"upload": ("a.jpg", b"\xff\xd8" + bytes(3_100_000))}
        )
        assert big.status_code == 413
        png = await client.post(fake.url, headers=headers, files={"upload": ("a.png", b"\x89PNG")})
        assert png.status_code == 400
