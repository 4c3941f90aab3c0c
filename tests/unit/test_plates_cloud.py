"""Plate Recognizer: the pure response mapping, and the client on an in-process transport."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio

from edge.config import PlateCloudConfig
from edge.plates import cloud as cloud_module
from edge.plates.cloud import PlateRecognizerCloud
from edge.plates.cloud_response import map_response, shrink_jpeg, simple_normalize
from edge.plates.types import Box, Picture, RecognizerError, RecognizerUnavailable

pytestmark = pytest.mark.unit

# The documented answer's shape (values of our own).
ANSWER: dict[str, Any] = {
    "processing_time": 120.5,
    "results": [
        {
            "box": {"xmin": 100, "ymin": 400, "xmax": 240, "ymax": 440},
            "plate": "gh456jk",
            "region": {"code": "gb", "score": 0.71},
            "vehicle": {"score": 0.76, "type": "SUV",
                        "box": {"xmin": 20, "ymin": 100, "xmax": 600, "ymax": 560}},
            "score": 0.62,
            "candidates": [{"score": 0.62, "plate": "gh456jk"}, {"score": 0.5, "plate": "gh456ik"}],
            "dscore": 0.81,
        },
        {
            "box": {"xmin": 300, "ymin": 410, "xmax": 420, "ymax": 445},
            "plate": "ab123cd",
            "region": {"code": "fr", "score": 0.9},
            "vehicle": {"score": 0.0, "type": "Unknown",
                        "box": {"xmin": 0, "ymin": 0, "xmax": 0, "ymax": 0}},
            "score": 0.93,
            "candidates": [
                {"score": 0.93, "plate": "ab123cd"},
                {"score": 0.61, "plate": "ab-123-cd"},  # the same plate once normalised
                {"score": 0.55, "plate": "ab123c0"},
            ],
            "dscore": 0.97,
            "model_make": [{"make": "Peugeot", "model": "208", "score": 0.4}],
            "color": [{"color": "white", "score": 0.8}],
            "orientation": [{"orientation": "Front", "score": 0.9}],
        },
    ],
    "filename": "1617_7M83K_snapshot.jpg",
    "version": 1,
    "camera_id": "bay-1",
    "timestamp": "2026-11-24T18:00:00.000000Z",
}  # fmt: skip


# ---------------------------------------------------------------------- the mapping
def test_reads_are_mapped_best_first_with_the_raw_answer_kept() -> None:
    result = map_response(ANSWER, latency_ms=250.0)
    assert [r.plate for r in result.reads] == ["AB123CD", "GH456JK"]
    assert result.recognizer == "platerecognizer"
    assert result.latency_ms == 250.0
    assert result.processing_ms == pytest.approx(120.5)
    assert result.raw is ANSWER
    best = result.reads[0]
    assert best.text == "ab123cd"
    assert best.score == 0.93
    assert best.dscore == 0.97
    assert best.box == Box(300, 410, 420, 445)
    assert best.region == "fr"
    assert best.region_score == 0.9
    assert best.vehicle is None  # score 0 and an all-zero box: no vehicle found
    assert [(c.plate, c.score) for c in best.candidates] == [
        ("AB123CD", 0.93), ("AB123C0", 0.55)
    ]  # fmt: skip
    assert best.extra == {
        "model_make": [{"make": "Peugeot", "model": "208", "score": 0.4}],
        "color": [{"color": "white", "score": 0.8}],
        "orientation": [{"orientation": "Front", "score": 0.9}],
    }
    other = result.reads[1]
    assert other.vehicle is not None
    assert other.vehicle.type == "SUV"
    assert other.vehicle.box == Box(20, 100, 600, 560)
    assert other.extra == {}
    assert other.format is None


def test_no_plate_is_no_read() -> None:
    result = map_response({"processing_time": 40.0, "results": []}, latency_ms=1.0)
    assert result.reads == ()
    assert result.best is None


def test_boxes_go_back_to_the_pictures_pixels_when_it_was_scaled_down() -> None:
    result = map_response(ANSWER, latency_ms=1.0, scale=0.5)
    assert result.reads[0].box == Box(600, 820, 840, 890)
    vehicle = result.reads[1].vehicle
    assert vehicle is not None
    assert vehicle.box == Box(40, 200, 1200, 1120)


def test_the_normaliser_decides_the_plate_and_its_format() -> None:
    def fit(text: str) -> tuple[str, str | None]:
        plate = simple_normalize(text)[0].replace("0", "O") if text.endswith("0") else None
        cleaned = simple_normalize(text)[0]
        return (plate or cleaned), (r"[A-Z]{2}[0-9]{3}[A-Z]{2}" if cleaned[:2].isalpha() else None)

    result = map_response(ANSWER, normalize=fit, latency_ms=1.0)
    best = result.reads[0]
    assert best.format == r"[A-Z]{2}[0-9]{3}[A-Z]{2}"
    assert [c.plate for c in best.candidates] == ["AB123CD", "AB123CO"]


def test_a_plate_that_normalises_to_nothing_is_dropped() -> None:
    body = copy.deepcopy(ANSWER)
    body["results"][0]["plate"] = "--"
    assert [r.plate for r in map_response(body, latency_ms=1.0).reads] == ["AB123CD"]


def test_the_vehicle_detection_mode_answer_is_understood() -> None:
    body = {
        "processing_time": 58.2,
        "results": [
            {
                "plate": {
                    "type": "Plate", "score": 0.925,
                    "box": {"xmin": 146, "ymin": 481, "xmax": 276, "ymax": 576},
                    "props": {
                        "plate": [{"value": "nhk552", "score": 0.838},
                                  {"value": "nhk553", "score": 0.1}],
                        "region": [{"value": "gb", "score": 0.931}],
                    },
                },
                "vehicle": {
                    "type": "Sedan", "score": 0.834,
                    "box": {"xmin": 68, "ymin": 103, "xmax": 914, "ymax": 643},
                    "props": {"color": [{"value": "black", "score": 0.846}]},
                },
            },
            {"plate": None, "vehicle": {"type": "Bus", "score": 0.7, "box": None}},
        ],
    }  # fmt: skip
    (read,) = map_response(body, latency_ms=1.0).reads
    assert read.plate == "NHK552"
    assert read.score == 0.838
    assert read.dscore == 0.925
    assert read.region == "gb"
    assert read.box == Box(146, 481, 276, 576)
    assert read.vehicle is not None
    assert read.vehicle.type == "Sedan"
    assert [c.plate for c in read.candidates] == ["NHK552", "NHK553"]
    assert read.extra == {"color": [{"value": "black", "score": 0.846}]}


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "results",
        {},
        {"results": None},
        {"results": [{"score": 0.5}]},
        {"results": [{"plate": "ab123cd", "score": "high"}]},
        {"results": [{"plate": "ab123cd", "score": 0.9, "box": {"xmin": 1}}]},
        {"results": [{"plate": "ab123cd", "score": 0.9, "candidates": [{"plate": "x"}]}]},
        {"results": [], "processing_time": "slow"},
        {"results": ["ab123cd"]},
    ],
)
def test_a_bad_answer_is_bad_response(body: Any) -> None:
    with pytest.raises(RecognizerError) as failed:
        map_response(body, latency_ms=1.0)
    assert failed.value.code == "bad_response"


def test_simple_normalize() -> None:
    assert simple_normalize("ab-123 cd") == ("AB123CD", None)
    assert simple_normalize("ñ1é") == ("1", None)


def test_shrink_jpeg_fits_under_the_limit() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)
    big = Picture.from_bgr(image, quality=95)
    jpeg, scale = shrink_jpeg(image, len(big.jpeg), len(big.jpeg) // 3)
    assert len(jpeg) <= len(big.jpeg) // 3
    assert 0.2 < scale < 0.7
    assert jpeg.startswith(b"\xff\xd8")


# ---------------------------------------------------------------------- the client
Handler = Callable[[httpx.Request], httpx.Response]
STATS_URL = "https://pr.test/v1/statistics/"
READER_URL = "https://pr.test/v1/plate-reader/"
TOKEN = "unit-secret-token-42"  # noqa: S105 - a test token


class Server:
    """An in-process Plate Recognizer for httpx.MockTransport: scripted answers."""

    def __init__(self) -> None:
        self.answers: list[httpx.Response | Exception] = []
        self.default = httpx.Response(200, json=ANSWER)
        self.stats = httpx.Response(
            200, json={"usage": {"calls": 10, "resets_on": "2999-01-01T00:00:00Z"},
                       "total_calls": 2500},
        )  # fmt: skip
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url == STATS_URL:
            return self.stats
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return self.default

    def lookups(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url == READER_URL]


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def picture() -> Picture:
    return Picture.from_bgr(np.full((120, 160, 3), 128, np.uint8), seq=1, captured_at=0.0)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    yield Server()


@pytest_asyncio.fixture
async def make() -> AsyncIterator[Callable[..., PlateRecognizerCloud]]:
    made: list[PlateRecognizerCloud] = []

    def factory(server: Server, clock: Callable[[], float] | None = None,
                **overrides: Any) -> PlateRecognizerCloud:  # fmt: skip
        data: dict[str, Any] = {
            "token": TOKEN, "url": READER_URL, "statistics_url": STATS_URL,
            "rate_per_s": 100.0, "burst": 100, "retries": 2, "timeout_s": 2.0,
        }  # fmt: skip
        data.update(overrides)
        kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
        cloud = PlateRecognizerCloud(
            PlateCloudConfig.model_validate(data), transport=httpx.MockTransport(server),
            backoff_s=0.01, **kwargs,
        )  # fmt: skip
        made.append(cloud)
        return cloud

    yield factory
    for cloud in made:
        await cloud.aclose()


@pytest.mark.asyncio
async def test_without_a_token_nothing_is_sent(
    server: Server, make: Callable[..., PlateRecognizerCloud], picture: Picture
) -> None:
    cloud = make(server, token=None)
    with pytest.raises(RecognizerUnavailable) as refused:
        await cloud.recognize(picture)
    assert refused.value.reason == "not_configured"
    assert server.requests == []
    assert cloud.status()["state"] == "not_configured"


@pytest.mark.asyncio
async def test_the_request_carries_the_documented_fields(
    server: Server, make: Callable[..., PlateRecognizerCloud], picture: Picture
) -> None:
    cloud = make(server, regions=["us-ca", "mx"])
    await cloud.recognize(picture, camera_id="cam")
    (sent,) = server.lookups()
    assert sent.method == "POST"
    assert sent.headers["Authorization"] == f"Token {TOKEN}"
    body = sent.content
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert body.count(b'name="regions"') == 2
    assert b'name="camera_id"' in body
    assert b'name="upload"; filename="snapshot.jpg"' in body
    assert b'name="timestamp"' not in body  # captured_at unknown: not sent
    assert b'name="mmc"' not in body
    assert b'name="config"' not in body


@pytest.mark.asyncio
async def test_statistics_that_cannot_be_read_do_not_stop_reads(
    server: Server, make: Callable[..., PlateRecognizerCloud], picture: Picture
) -> None:
    server.stats = httpx.Response(500, text="oops")
    cloud = make(server)
    result = await cloud.recognize(picture)
    assert result.best is not None
    status = cloud.status()
    assert status["quota"] is None
    assert "HTTP 500" in status["quota_error"]
    assert status["state"] == "ok"


@pytest.mark.asyncio
async def test_the_quota_is_read_again_after_a_while(
    server: Server, make: Callable[..., PlateRecognizerCloud], picture: Picture
) -> None:
    clock = FakeClock()
    cloud = make(server, clock=clock)
    await cloud.recognize(picture)
    await cloud.recognize(picture)
    stats = [r for r in server.requests if r.url == STATS_URL]
    assert len(stats) == 1
    assert cloud.status()["quota"]["used"] == 12  # 10 read + our 2
    clock.now += cloud_module.QUOTA_REFRESH_S
    await cloud.recognize(picture)
    assert cloud._quota_task is not None
    await cloud._quota_task  # the re-read runs beside the call
    assert len([r for r in server.requests if r.url == STATS_URL]) == 2
    assert cloud.status()["quota"]["used"] == 10  # the server's figure again (fake: fixed)


@pytest.mark.asyncio
async def test_a_403_pause_ends_when_the_statistics_show_lookups_left_or_after_an_hour(
    server: Server, make: Callable[..., PlateRecognizerCloud], picture: Picture
) -> None:
    clock = FakeClock()
    cloud = make(server, clock=clock)
    server.answers = [httpx.Response(403, json={"detail": "no credits"})]
    with pytest.raises(RecognizerUnavailable):
        await cloud.recognize(picture)
    assert cloud.status()["state"] == "no_credits"
    await cloud.refresh_quota()  # 2490 left
    assert cloud.status()["state"] == "ok"
    await cloud.recognize(picture)

    server.answers = [httpx.Response(403, json={"detail": "no credits"})]
    with pytest.raises(RecognizerUnavailable):
        await cloud.recognize(picture)
    server.stats = httpx.Response(
        200, json={"usage": {"calls": 2460, "resets_on": None}, "total_calls": 2500}
    )
    clock.now += cloud_module.QUOTA_REFRESH_S  # a call now re-reads the statistics (beside it)
    with pytest.raises(RecognizerUnavailable) as paused:
        await cloud.recognize(picture)
    assert paused.value.reason == "no_credits"
    assert cloud._quota_task is not None
    await cloud._quota_task
    assert cloud.status()["state"] == "no_credits"  # 40 left: not above the reserve (50)
    clock.now += cloud_module.NO_CREDITS_PAUSE_S - cloud_module.QUOTA_REFRESH_S - 1
    with pytest.raises(RecognizerUnavailable) as still:
        await cloud.recognize(picture)
    assert still.value.reason == "no_credits"
    clock.now += 1  # the hour is over, but the statistics still show the reserve reached
    with pytest.raises(RecognizerUnavailable) as exhausted:
        await cloud.recognize(picture)
    assert exhausted.value.reason == "quota_exhausted"


@pytest.mark.asyncio
async def test_a_failing_breaker_lets_one_trial_through_after_the_pause(
    server: Server, make: Callable[..., PlateRecognizerCloud], picture: Picture
) -> None:
    clock = FakeClock()
    cloud = make(server, clock=clock, retries=0, breaker_failures=2, breaker_reset_s=30.0)
    server.answers = [httpx.Response(503), httpx.Response(503)]
    for _ in range(2):
        with pytest.raises(RecognizerError):
            await cloud.recognize(picture)
    with pytest.raises(RecognizerUnavailable) as refused:
        await cloud.recognize(picture)
    assert refused.value.reason == "circuit_open"
    clock.now += 30.0
    assert (await cloud.recognize(picture)).best is not None  # the trial, which succeeds
    assert cloud.status()["breaker"]["state"] == "closed"
    assert len(server.lookups()) == 3


@pytest.mark.asyncio
async def test_a_400_is_neither_retried_nor_a_breaker_failure(
    server: Server, make: Callable[..., PlateRecognizerCloud], picture: Picture
) -> None:
    cloud = make(server, breaker_failures=1)
    server.answers = [httpx.Response(400, json={"upload": ["Upload a valid image."]})]
    with pytest.raises(RecognizerError) as failed:
        await cloud.recognize(picture)
    assert failed.value.code == "http_400"
    assert "valid image" in failed.value.message
    assert len(server.lookups()) == 1
    assert cloud.status()["breaker"]["state"] == "closed"


@pytest.mark.asyncio
async def test_a_200_that_is_not_the_documented_json_is_bad_response(
    server: Server, make: Callable[..., PlateRecognizerCloud], picture: Picture
) -> None:
    cloud = make(server)
    server.answers = [httpx.Response(200, text="<html>proxy login</html>")]
    with pytest.raises(RecognizerError) as failed:
        await cloud.recognize(picture)
    assert failed.value.code == "bad_response"


@pytest.mark.asyncio
async def test_transport_errors_are_retried_then_reported(
    server: Server, make: Callable[..., PlateRecognizerCloud], picture: Picture
) -> None:
    cloud = make(server, retries=1)
    boom = httpx.ConnectError("refused")
    server.answers = [boom, boom]
    with pytest.raises(RecognizerError) as failed:
        await cloud.recognize(picture)
    assert failed.value.code == "unreachable"
    assert len(server.lookups()) == 2


@pytest.mark.asyncio
async def test_a_retry_after_header_longer_than_the_deadline_gives_up_throttled(
    server: Server, make: Callable[..., PlateRecognizerCloud], picture: Picture
) -> None:
    cloud = make(server)
    server.answers = [httpx.Response(429, headers={"Retry-After": "30"},
                                     json={"detail": "Request was throttled."})]  # fmt: skip
    with pytest.raises(RecognizerUnavailable) as refused:
        await cloud.recognize(picture, deadline_s=2.0)
    assert refused.value.reason == "throttled"
    assert cloud.status()["state"] == "throttled"
    assert len(server.lookups()) == 1
    assert json.dumps(cloud.status())  # JSON-able
