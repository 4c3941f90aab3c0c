"""The offline plate reader on synthetic bay frames (loads RapidOCR's ONNX models: ~1 s each)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from edge.camera.scene import BayScene, SceneParams
from edge.config import PlatesConfig
from edge.plates.dataset import Sample, samples
from edge.plates.local import NO_FORMAT_PENALTY, SUBSTITUTION_PENALTY, LocalReader
from edge.plates.normalize import ANY_PLATE, CONFUSIONS, clean
from edge.plates.types import Picture, PlateRead, Recognition, Recognizer, RecognizerError

pytestmark = pytest.mark.unit

FR = r"[A-Z]{2}[0-9]{3}[A-Z]{2}"


@pytest.fixture(scope="module")
def easy() -> list[Sample]:
    """Four easy frames: fr, it, gb and nl plates, cars stopped in daylight."""
    return [s for s in samples(8, seed=11) if s.difficulty == "easy"]


@pytest.fixture
def config() -> PlatesConfig:
    return PlatesConfig()


@pytest.fixture
def reader(config: PlatesConfig) -> Iterator[LocalReader]:
    r = LocalReader(config)
    yield r
    r.close()


@pytest_asyncio.fixture
async def areader(config: PlatesConfig) -> AsyncIterator[LocalReader]:
    r = LocalReader(config)
    yield r
    await r.aclose()


def _best(reader: LocalReader, s: Sample) -> PlateRead:
    best = reader.read_bgr(s.image).best
    assert best is not None, s.params
    return best


def _stopped(p: SceneParams) -> float:
    return p.cycle_s / 2  # car 0, in the middle of its stop


def test_is_a_recognizer(reader: LocalReader) -> None:
    r: Recognizer = reader  # mypy checks the protocol
    assert r.name == "local"
    status = r.status()
    assert next(iter(status)) == "state"
    assert status["state"] == "loading"  # nothing loaded before the first picture
    assert status["engine"] == "idle"


def test_reads_easy_plates_exactly(reader: LocalReader, easy: list[Sample]) -> None:
    assert [s.params["style"] for s in easy] == ["fr", "it", "gb", "nl"]
    for s in easy:
        rec = reader.read_bgr(s.image)
        assert rec.recognizer == "local"
        best = rec.best
        assert best is not None, s.params
        assert best.plate == s.plate
        assert best.format is not None
        assert best.score > 0.8
        assert 0 < best.dscore <= 1
        assert best.candidates[0].plate == s.plate
        assert best.box is not None  # the box found overlaps the true one
        assert best.box.xmin < s.box.xmax
        assert s.box.xmin < best.box.xmax
        assert best.box.ymin < s.box.ymax
        assert s.box.ymin < best.box.ymax
        json.dumps(rec.raw)  # JSON-able, as stored
        assert rec.raw["search_ms"] > 0
        assert rec.raw["recognise_ms"] > 0
    assert reader.status()["state"] == "ok"


def test_reads_a_plate_at_night(reader: LocalReader) -> None:
    scene = BayScene(SceneParams(seed=5, night=True, plate_format="ny"))
    t = _stopped(scene.params)
    truth = scene.state(t).plate
    assert truth is not None
    best = reader.read_bgr(scene.render(t)).best
    assert best is not None
    assert best.plate == truth.replace("-", "")


def test_the_roi_excludes_a_plate_outside_it(config: PlatesConfig, reader: LocalReader) -> None:
    scene = BayScene(SceneParams(seed=2))
    frame = scene.render(_stopped(scene.params))
    config.roi = (0.0, 0.0, 1.0, 0.5)  # the top half: the wall's clock and sign, no plate
    rec = reader.read_bgr(frame)
    assert rec.reads == ()
    assert rec.raw["roi"] == [0, 0, 1280, 360]
    config.roi = (0.0, 0.5, 1.0, 1.0)
    assert len(reader.read_bgr(frame).reads) == 1


def test_no_car_no_read(reader: LocalReader) -> None:
    scene = BayScene(SceneParams(seed=3))
    p = scene.params
    t = p.cycle_s + p.empty_s / 2
    assert scene.state(t).phase == "empty"
    rec = reader.read_bgr(scene.render(t))
    assert rec.reads == ()
    assert rec.raw["lines"]  # the clock and "BAY 1" were read, and turned down


@pytest.mark.asyncio
async def test_a_picture_that_is_not_a_jpeg(areader: LocalReader) -> None:
    with pytest.raises(RecognizerError) as caught:
        await areader.recognize(Picture(b"GIF89a not a jpeg", 1, 0.0, 64, 64))
    assert caught.value.code == "bad_image"


def test_a_bad_array(reader: LocalReader) -> None:
    import numpy as np

    for bad in (np.zeros((4, 4, 3), np.uint8), np.zeros((64, 64, 2), np.uint8)):
        with pytest.raises(RecognizerError) as caught:
            reader.read_bgr(bad)
        assert caught.value.code == "bad_image"


@pytest.mark.asyncio
async def test_reading_does_not_block_the_loop(areader: LocalReader, easy: list[Sample]) -> None:
    assert areader.status()["state"] == "loading"  # the models load on first use...
    picture = Picture.from_bgr(easy[0].image)
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        first = await areader.recognize(picture, camera_id="bay-1")  # ...in the worker
        second = await areader.recognize(picture, deadline_s=10.0)
    finally:
        stop.set()
        await task
    assert first.best is not None
    assert first.best.plate == easy[0].plate
    assert second.best is not None
    assert second.latency_ms > 0
    assert len(gaps) > 20
    assert max(gaps) < 0.25, f"the loop stalled for {max(gaps) * 1000:.0f} ms"
    assert areader.status()["state"] == "ok"


@pytest.mark.asyncio
async def test_a_deadline_too_short(areader: LocalReader, easy: list[Sample]) -> None:
    picture = Picture.from_bgr(easy[0].image)
    with pytest.raises(RecognizerError) as caught:
        await areader.recognize(picture, deadline_s=0.001)
    assert caught.value.code == "timeout"


def _rec_score(rec: Recognition, plate: str) -> float:
    """The recogniser's own best score for a line read as ``plate`` (look-alikes aside)."""
    scores = [
        line["score"]
        for line in rec.raw["lines"]
        if clean(line["text"]) == plate or _same_but_lookalikes(clean(line["text"]), plate)
    ]
    assert scores, rec.raw
    return float(max(scores))


def _same_but_lookalikes(text: str, plate: str) -> bool:
    return len(text) == len(plate) and all(
        a == b or b in CONFUSIONS.get(a, "") or a in CONFUSIONS.get(b, "")
        for a, b in zip(text, plate, strict=True)
    )


def test_formats_change_live(config: PlatesConfig, reader: LocalReader, easy: list[Sample]) -> None:
    """What the product promises about formats, whatever the OCR model's exact numbers: the
    format chosen, the plate fitted to it, and the penalty each fit costs against the
    recogniser's own score (which differs between model and ONNX Runtime versions)."""
    s = easy[0]  # a French plate: LL DDD LL
    rec = reader.read_bgr(s.image)
    best = rec.best
    assert best is not None
    assert (best.plate, best.format) == (s.plate, FR)
    assert best.score == pytest.approx(_rec_score(rec, s.plate), abs=1e-3)  # fits: no penalty

    config.formats = []  # any 4 to 10 letters and digits
    best = _best(reader, s)
    assert (best.plate, best.format) == (s.plate, ANY_PLATE)

    # A format with a digit where the plate has a letter that looks like one: the read is
    # fitted to it, one look-alike substituted, and scores one substitution penalty below what
    # the recogniser gave the line.
    i = next(i for i, c in enumerate(s.plate) if c.isalpha() and c in CONFUSIONS)
    digit = CONFUSIONS[s.plate[i]][0]
    config.formats = ["".join("[0-9]" if k == i else c for k, c in enumerate(s.plate))]
    rec = reader.read_bgr(s.image)
    best = rec.best
    assert best is not None
    assert best.plate == s.plate[:i] + digit + s.plate[i + 1 :]
    assert best.format == config.formats[0]
    expected = _rec_score(rec, best.plate) - SUBSTITUTION_PENALTY
    assert best.score == pytest.approx(expected, abs=1e-3)

    config.formats = [r"[0-9]{7}"]  # fits nothing: still a read, without a format, penalised
    rec = reader.read_bgr(s.image)
    best = rec.best
    assert best is not None
    assert (best.plate, best.format) == (s.plate, None)
    expected = max(0.0, _rec_score(rec, s.plate) - NO_FORMAT_PENALTY)
    assert best.score == pytest.approx(expected, abs=1e-3)
    assert NO_FORMAT_PENALTY >= 0.2  # an unformatted read never outranks a formatted one nearby


def test_the_data_set_is_deterministic_and_labelled() -> None:
    a, b = list(samples(6, seed=4)), list(samples(6, seed=4))
    assert [s.difficulty for s in a] == ["easy", "hard"] * 3
    assert [s.params["style"] for s in a[::2]] == ["fr", "it", "gb"]
    for x, y in zip(a, b, strict=True):
        assert x.plate == y.plate
        assert x.params == y.params
        assert (x.image == y.image).all()
        h, w = x.image.shape[:2]
        assert 0 <= x.box.xmin < x.box.xmax <= w
        assert 0 <= x.box.ymin < x.box.ymax <= h
        assert x.plate.isalnum()
        assert x.plate.isupper() or x.plate.isdigit()
    for s in a:
        if s.difficulty == "easy":
            assert s.params["phase"] == "stopped"
            assert not s.params["night"]
            assert s.params["factors"] == []
        else:
            assert s.params["factors"]
    assert next(samples(1, seed=5)).plate != a[0].plate
