"""Vehicle presence (edge/plates/motion.py) over the synthetic bay: one car, one episode."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from edge.camera.scene import BayScene, SceneParams
from edge.config import PlateMotionConfig
from edge.plates.motion import SETTLE_S, Hysteresis, PresenceDetector, downscale_gray

pytestmark = pytest.mark.unit

Image = NDArray[np.uint8]
Event = tuple[float, str, str, int]  # t, change, scene phase, car index
FPS = 4.0


def _bay(**kw: object) -> BayScene:
    params: dict[str, object] = {"width": 320, "height": 180, "cycle_s": 12.0, "empty_s": 6.0}
    params.update(kw)
    return BayScene(SceneParams(**params))  # type: ignore[arg-type]


def _run(
    scene: BayScene,
    t0: float,
    seconds: float,
    detector: PresenceDetector | None = None,
    light: Callable[[Image, float], Image] | None = None,
) -> tuple[list[Event], PresenceDetector]:
    """Feed the detector ``seconds`` of the scene from ``t0`` at FPS; the events it gave."""
    d = detector or PresenceDetector(PlateMotionConfig(), (0.0, 0.0, 1.0, 1.0))
    events: list[Event] = []
    for i in range(round(seconds * FPS)):
        t = t0 + i / FPS
        frame = scene.render(t)
        if light is not None:
            frame = light(frame, t - t0)
        change = d.update(downscale_gray(frame, 160), t)
        if change is not None:
            s = scene.state(t)
            events.append((t, change, s.phase, s.car_index))
    return events, d


def _scaled(gain: Callable[[float], float], offset: float = 0.0) -> Callable[[Image, float], Image]:
    def light(frame: Image, s: float) -> Image:
        out = frame.astype(np.float32) * gain(s) + offset * min(1.0, s / 20)
        return np.asarray(np.clip(out, 0, 255), np.uint8)

    return light


@pytest.mark.parametrize(("night", "seed"), [(False, 0), (False, 5), (True, 1)])
def test_each_car_is_one_arrival_and_one_leaving(night: bool, seed: int) -> None:
    scene = _bay(seed=seed, night=night)
    p = scene.params
    period = p.cycle_s + p.empty_s
    t0 = p.cycle_s + 0.5  # start in the empty bay after car 0
    events, _ = _run(scene, t0, 3 * period + 2.0)  # cars 1, 2, 3 drive through, then empty
    assert [e[1] for e in events] == ["arrived", "left"] * 3
    for k, (arrived, left) in enumerate(zip(events[::2], events[1::2], strict=True), 1):
        assert arrived[3] == left[3] == k
        assert arrived[2] in ("arriving", "stopped"), arrived
        assert left[2] == "empty", left  # after the car is gone
        assert left[0] - (k * period + p.cycle_s) < 2.0  # ...and soon after


def test_a_car_stopped_for_a_minute_stays_present_and_still() -> None:
    # car 1: arriving 86-96 s, stopped 96-156 s, leaving 156-166 s; then empty until 172 s
    scene = _bay(seed=3, cycle_s=80.0, stop_s=60.0)
    d = PresenceDetector(PlateMotionConfig(), (0.25, 0.3, 0.75, 1.0))
    events, _ = _run(scene, 80.5, 20.0, d)  # empty, arriving, stopped
    assert [e[1:3] for e in events] == [("arrived", "arriving")]
    token = d.generation
    events, _ = _run(scene, 100.5, 55.0, d)  # still stopped
    assert events == []
    assert d.present
    assert not d.moving
    assert not d.changed_since(token)
    assert d.still_for_s > 55.0
    events, _ = _run(scene, 155.5, 16.0, d)  # leaving, then empty
    assert [e[1:] for e in events] == [("left", "empty", 1)]
    assert d.changed_since(token)


def test_the_region_change_counter_follows_the_car() -> None:
    scene = _bay(seed=2)
    d = PresenceDetector(PlateMotionConfig())
    _run(scene, 12.5, 4.0, d)  # empty bay
    empty = d.generation
    assert d.still_for_s >= 3.0
    _run(scene, 16.5, 2.0, d)  # car 1 arriving (from 18 s)
    _run(scene, 18.5, 3.0, d)
    assert d.changed_since(empty)
    assert d.status()["present"] is True
    _run(scene, 22.0, 2.0, d)  # settle: stopped from 21.6 s to 26.4 s
    stopped = d.generation
    _run(scene, 24.0, 2.0, d)
    assert not d.changed_since(stopped)
    assert d.motion_level < 0.02


@pytest.mark.parametrize("night", [False, True])
@pytest.mark.parametrize(
    "light",
    [
        pytest.param(None, id="noise"),
        pytest.param(_scaled(lambda s: 1 - 0.5 * min(1.0, s / 30)), id="dimming-by-half"),
        pytest.param(_scaled(lambda s: 1 + 0.4 * min(1.0, s / 20)), id="brightening"),
        pytest.param(_scaled(lambda s: 1.0, offset=40.0), id="offset"),
        pytest.param(_scaled(lambda s: 1 - 0.3 * min(1.0, max(0.0, s - 5) / 2)), id="cloud"),
    ],
)
def test_an_empty_bay_never_arrives(
    night: bool, light: Callable[[Image, float], Image] | None
) -> None:
    scene = _bay(seed=4, night=night, noise=0.4, cycle_s=10.0, empty_s=3600.0)
    events, d = _run(scene, 10.5, 45.0, light=light)
    assert events == []
    assert d.fraction < PlateMotionConfig().exit_fraction


def test_a_car_stays_present_while_the_light_dims_and_leaves_after() -> None:
    scene = _bay(seed=6, night=True, cycle_s=80.0, stop_s=60.0)
    dim = _scaled(lambda s: 1 - 0.4 * min(1.0, max(0.0, s - 30) / 30))
    events, _ = _run(scene, 80.5, 100.0, light=dim)
    assert [e[1:3] for e in events[:2]] == [("arrived", "arriving"), ("left", "empty")]


def test_lights_switched_on_cause_at_most_a_short_episode() -> None:
    scene = _bay(seed=4, cycle_s=10.0, empty_s=3600.0)
    step = _scaled(lambda s: 1.5 if s > 5 else 1.0)  # white lines clip: they stay different
    events, d = _run(scene, 10.5, 40.0, light=step)
    assert [e[1] for e in events] in ([], ["arrived", "left"])
    if events:
        assert events[1][0] - events[0][0] <= SETTLE_S + 2.0
    assert not d.present
    assert d.fraction < 0.01  # what was left over is background now


def test_a_car_outside_the_region_is_not_seen() -> None:
    scene = _bay(seed=1)
    d = PresenceDetector(PlateMotionConfig(), (0.0, 0.5, 0.12, 1.0))  # the left wall
    events, _ = _run(scene, 12.5, 36.0, d)
    assert events == []
    d.roi = (0.25, 0.3, 0.75, 1.0)  # the bay, from the next picture on
    assert d.roi == (0.25, 0.3, 0.75, 1.0)
    events, _ = _run(scene, 48.5, 20.0, d)
    assert [e[1:] for e in events] == [("arrived", "arriving", 3), ("left", "empty", 3)]


def test_a_car_in_the_first_picture_is_taken_for_the_bay_until_it_heals() -> None:
    """Documented choice: the first picture is the empty bay. A car already standing there
    becomes a "vehicle" when it drives off, until the region has been still for
    ``relearn_still_s``; then the episode ends and the next car is seen as usual."""
    # car 0 stopped 15-25 s, leaving 25-40 s; car 1 arriving 70 s, stopped 85-95 s, gone 110 s
    scene = _bay(seed=2, cycle_s=40.0, stop_s=10.0, empty_s=30.0)
    d = PresenceDetector(PlateMotionConfig(), relearn_still_s=15.0)
    events, _ = _run(scene, 20.0, 95.0, d)  # car 0 is in the first picture
    assert [e[1] for e in events[:2]] == ["arrived", "left"]  # the ghost of car 0
    assert events[0][2:] == ("leaving", 0)
    assert events[1][0] - events[0][0] >= 15.0
    assert [e[1:] for e in events[2:]] == [("arrived", "arriving", 1), ("left", "leaving", 1)]
    assert events[3][0] > 105.0  # car 1 all but out of the picture


def test_a_new_picture_size_starts_over() -> None:
    scene = _bay(seed=0)
    d = PresenceDetector(PlateMotionConfig())
    _run(scene, 12.5, 10.0, d)
    assert d.status()["present"] is True
    bigger = downscale_gray(scene.render(23.0), 120)
    assert d.update(bigger, 23.0) == "left"  # a new camera: the episode ends
    assert not d.present
    assert d.reset() is None


def test_downscale_gray() -> None:
    bgr = np.zeros((180, 320, 3), np.uint8)
    bgr[:, :, 2] = 200
    small = downscale_gray(bgr, 160)
    assert small.shape == (90, 160)
    assert small.dtype == np.uint8
    assert 55 <= int(small[0, 0]) <= 65  # red weighs 0.299
    narrow = np.full((60, 100), 7, np.uint8)
    assert downscale_gray(narrow, 160).shape == (60, 100)


def test_hysteresis_reads_the_config_live() -> None:
    cfg = PlateMotionConfig(enter_frames=2, exit_frames=2)
    h = Hysteresis(cfg)
    assert [h.update(f) for f in (0.5, 0.5)] == [None, "arrived"]
    cfg.exit_frames = 3
    assert [h.update(f) for f in (0.0, 0.0, 0.06, 0.0, 0.0, 0.0)] == [
        None, None, None, None, None, "left",
    ]  # fmt: skip
    cfg.enter_frames = 1
    assert h.update(0.2) == "arrived"
    assert h.end() == "left"
    assert h.end() is None


@settings(max_examples=300, deadline=None)
@given(
    fractions=st.lists(st.floats(0.0, 1.0), max_size=200),
    enter=st.floats(0.05, 0.9),
    gap=st.floats(0.01, 0.9),
    enter_frames=st.integers(1, 5),
    exit_frames=st.integers(1, 6),
)
def test_episodes_alternate_whatever_the_fractions(
    fractions: list[float], enter: float, gap: float, enter_frames: int, exit_frames: int
) -> None:
    exit_ = enter * (1 - gap)
    cfg = PlateMotionConfig(
        enter_fraction=enter, exit_fraction=exit_, enter_frames=enter_frames,
        exit_frames=exit_frames,
    )  # fmt: skip
    h = Hysteresis(cfg)
    events: list[tuple[int, str]] = []
    for i, f in enumerate(fractions):
        change = h.update(f)
        if change is not None:
            events.append((i, change))
    kinds = [k for _, k in events]
    assert kinds == ["arrived", "left"] * (len(kinds) // 2) + ["arrived"] * (len(kinds) % 2)
    assert h.present == (len(kinds) % 2 == 1)
    for i, kind in events:  # each change is earned by a run of the configured length
        run, n = (enter_frames, enter) if kind == "arrived" else (exit_frames, exit_)
        window = fractions[i - run + 1 : i + 1]
        assert len(window) == run
        assert all(f > n for f in window) if kind == "arrived" else all(f < n for f in window)
