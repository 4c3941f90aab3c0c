"""The synthetic bay scene: determinism, timing, plate truth, query parsing, speed."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.camera.scene import BayScene, SceneParams, render_plate_sample

pytestmark = pytest.mark.unit

SMALL = SceneParams(width=320, height=180, cycle_s=10.0, stop_s=4.0, empty_s=2.0)


def _stopped_t(p: SceneParams, car: int = 0) -> float:
    return car * (p.cycle_s + p.empty_s) + p.cycle_s / 2


def test_same_seed_and_time_give_the_same_frame() -> None:
    a, b = BayScene(SceneParams(seed=7)), BayScene(SceneParams(seed=7))
    for t in (0.0, 3.3, 10.0, 17.25, 22.0, 50.1):
        fa = a.render(t)
        assert fa.shape == (720, 1280, 3)
        assert fa.dtype == np.uint8
        assert np.array_equal(fa, b.render(t))
        assert np.array_equal(fa, a.render(t))  # a second render of the same t too
        assert a.state(t) == b.state(t)


def test_different_seeds_and_cars_give_different_plates() -> None:
    plates = {
        BayScene(SceneParams(seed=s, width=320, height=180)).state(10.0).plate for s in range(12)
    }
    assert None not in plates
    assert len(plates) >= 11
    scene = BayScene(SceneParams(seed=1))
    cars = [scene.state(_stopped_t(scene.params, k)).plate for k in range(8)]
    assert len(set(cars)) == 8
    assert not np.array_equal(
        BayScene(SceneParams(seed=1)).render(10.0), BayScene(SceneParams(seed=2)).render(10.0)
    )


@pytest.mark.parametrize(
    ("fmt", "pattern"),
    [
        ("us", r"^(\d[A-Z]{3}\d{3}|[A-Z]{3}[- ]\d{4})$"),
        ("fr", r"^[A-Z]{2} \d{3} [A-Z]{2}$"),
        ("eu", r"^[A-Z0-9 -]{7,9}$"),
    ],
)
def test_plate_formats(fmt: str, pattern: str) -> None:
    for seed in range(6):
        p = SceneParams(seed=seed, plate_format=fmt, width=320, height=180)
        plate = BayScene(p).state(10.0).plate
        assert plate is not None
        assert re.match(pattern, plate), plate


def test_phases_cycle_in_order_with_the_configured_timings() -> None:
    scene = BayScene(SMALL)  # arrive 3 s, stop 4 s, leave 3 s, empty 2 s: 12 s per car
    expected = {
        0.0: ("arriving", 0), 2.9: ("arriving", 0), 3.1: ("stopped", 0), 6.9: ("stopped", 0),
        7.1: ("leaving", 0), 9.9: ("leaving", 0), 10.1: ("empty", 0), 11.9: ("empty", 0),
        12.1: ("arriving", 1), 15.5: ("stopped", 1), 24.5: ("arriving", 2),
    }  # fmt: skip
    for t, (phase, car) in expected.items():
        s = scene.state(t)
        assert (s.phase, s.car_index) == (phase, car), t
        assert (s.plate is None) == (phase == "empty"), t
    seq: list[str] = []
    for i in range(int(36 / 0.1)):
        phase = scene.state(i * 0.1).phase
        if not seq or seq[-1] != phase:
            seq.append(phase)
    assert seq == ["arriving", "stopped", "leaving", "empty"] * 3
    assert SceneParams().stopped_s == pytest.approx(8.0)
    assert SceneParams(cycle_s=12.0).stopped_s == pytest.approx(4.8)


def test_a_stopped_car_stands_still_and_moving_cars_move() -> None:
    scene = BayScene(SMALL)
    assert scene.state(3.5).plate_box == scene.state(6.5).plate_box
    boxes = [scene.state(t).plate_box for t in (1.5, 2.0, 2.5)]
    ys = [b[1] for b in boxes if b is not None]
    assert ys == sorted(ys)
    assert len(set(ys)) == len(ys)


@pytest.mark.parametrize("night", [False, True])
def test_plate_box_is_inside_the_frame_and_shows_a_plate(night: bool) -> None:
    for seed in range(8):
        p = SceneParams(seed=seed, night=night)
        scene = BayScene(p)
        for t in np.arange(0.0, p.cycle_s + p.empty_s, 0.5):
            s = scene.state(float(t))
            if s.plate_box is not None:
                x0, y0, x1, y1 = s.plate_box
                assert 0 <= x0 < x1 <= p.width
                assert 0 <= y0 < y1 <= p.height
        s = scene.state(_stopped_t(p))
        assert s.phase == "stopped"
        assert s.plate_box is not None
        x0, y0, x1, y1 = s.plate_box
        assert 0.12 <= (x1 - x0) / p.width <= 0.2
        crop = scene.render(_stopped_t(p))[y0:y1, x0:x1].astype(np.int16)
        bg = scene.background()[y0:y1, x0:x1].astype(np.int16)
        assert np.abs(crop - bg).mean() > 30
        assert crop.max() - crop.min() > 120  # light plate, dark text


def test_night_frames_are_darker_than_day_frames() -> None:
    for seed in range(3):
        day, night = BayScene(SceneParams(seed=seed)), BayScene(SceneParams(seed=seed, night=True))
        for t in (1.0, 10.0, 22.0):
            assert night.render(t).mean() < 0.7 * day.render(t).mean()


def test_query_parsing_good_values() -> None:
    p = SceneParams.from_query("width=640&height=360&fps=5&seed=3&night=1&cycle=12")
    assert (p.width, p.height, p.fps, p.seed, p.night, p.cycle_s) == (640, 360, 5, 3, True, 12.0)
    assert SceneParams.from_query("") == SceneParams()
    assert SceneParams.from_query("?night=off&plate=us&stop=3&empty=0&noise=0&blur=1") == (
        SceneParams(night=False, plate_format="us", stop_s=3.0, empty_s=0.0, noise=0, blur=1)
    )
    assert SceneParams.from_query("plate_format=gb&cycle_s=30").plate_format == "gb"


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("width=abc", "width"),
        ("width=10", "width"),
        ("height=1e3", "height"),
        ("fps=0", "fps"),
        ("seed=-1", "seed"),
        ("night=maybe", "night"),
        ("plate=mars", "plate"),
        ("cycle=nan", "cycle"),
        ("noise=2", "noise"),
        ("blur=-0.1", "blur"),
        ("empty=", "empty"),
        ("cycle=10&stop=12", "stop"),
        ("colour=red", "colour"),
        ("width=640&width=320", "width"),
        ("width", "width"),
    ],
)
def test_query_parsing_bad_values_name_the_parameter(query: str, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        SceneParams.from_query(query)


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown scene parameter 'speed'"):
        SceneParams.from_query("width=640&speed=3")


def test_constructor_validates_too() -> None:
    with pytest.raises(ValueError, match="'fps'"):
        SceneParams(fps=0)
    with pytest.raises(ValueError, match="'night'"):
        SceneParams(night=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'plate_format'"):
        SceneParams(plate_format="xx")


@settings(max_examples=20, deadline=None)
@given(
    width=st.integers(64, 700),
    height=st.integers(64, 500),
    seed=st.integers(0, 2**31),
    night=st.booleans(),
    t=st.floats(0.0, 500.0),
)
def test_any_size_and_time_renders(
    width: int, height: int, seed: int, night: bool, t: float
) -> None:
    scene = BayScene(SceneParams(width=width, height=height, seed=seed, night=night))
    frame = scene.render(t)
    assert frame.shape == (height, width, 3)
    box = scene.state(t).plate_box
    if box is not None:
        assert 0 <= box[0] < box[2] <= width
        assert 0 <= box[1] < box[3] <= height


def test_plate_samples_are_deterministic_and_labelled() -> None:
    for difficulty in (0.0, 0.5, 1.0):
        img, text = render_plate_sample(np.random.default_rng(5), "mixed", difficulty=difficulty)
        again, text2 = render_plate_sample(np.random.default_rng(5), "mixed", difficulty=difficulty)
        assert np.array_equal(img, again)
        assert text == text2
        assert img.dtype == np.uint8
        assert img.ndim == 3
        assert img.shape[2] == 3
        assert img.shape[1] > img.shape[0] >= 20
        assert re.fullmatch(r"[A-Z0-9 -]+", text)
    with pytest.raises(ValueError, match="plate format"):
        render_plate_sample(np.random.default_rng(0), "atlantis")


def test_render_time() -> None:
    scene = BayScene(SceneParams(seed=3))
    scene.render(0.0)
    times = []
    for i in range(120):
        t0 = time.perf_counter()
        scene.render(i * 0.25)  # 30 s: a whole cycle and the next car
        times.append(time.perf_counter() - t0)
    median = float(np.median(times)) * 1e3
    print(f"\nscene render 1280x720: median {median:.2f} ms, max {max(times) * 1e3:.2f} ms")
    assert median < 50
