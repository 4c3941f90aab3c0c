"""Synthetic bay frames with known plates: the offline reader's bench and tests.

Every sample is a frame of :class:`~edge.camera.scene.BayScene` — the picture ``synthetic://``
serves — with the truth the scene knows: the plate text and its box. Samples alternate between
two halves of a mixed-difficulty set:

* ``easy``: daylight, little noise and blur, the car stopped in the bay;
* ``hard``: at least one of night (dim light, headlight glare), heavy sensor noise, a soft lens,
  a car still moving (arriving or leaving, with the plate wholly in frame and some motion
  blur along the way it drives), or a lower-resolution camera (854x480, 640x360: a plate of
  a few dozen pixels); each of the others joins with a chance of 30 %.

Each plate style the scene draws (fr it gb nl es ca ny tx) takes its turn. ``samples(n, seed)``
is deterministic: the same arguments always give the same frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.camera.scene import BayScene, Phase, SceneParams
from edge.plates.normalize import clean
from edge.plates.types import Box

__all__ = ["STYLES", "Difficulty", "Sample", "samples"]

Image = NDArray[np.uint8]
Difficulty = Literal["easy", "hard"]

STYLES = ("fr", "it", "gb", "nl", "es", "ca", "ny", "tx")  # the scene's plate styles
_HARD_FACTORS = ("night", "noise", "blur", "moving", "small")
_SMALL_SIZES = ((854, 480), (640, 360))  # a lower-resolution camera: fewer pixels on the plate


@dataclass(frozen=True, eq=False)
class Sample:
    """One frame and its truth. ``plate`` is normalised (see :func:`~.normalize.clean`).

    Frames are 1280x720 but for the "small" hard factor."""

    image: Image  # BGR, full frame
    plate: str
    text: str  # the plate as drawn, spaces and dashes included
    box: Box  # the plate's box in the frame
    difficulty: Difficulty
    params: dict[str, Any]  # scene parameters, the moment and the phase: enough to redraw it


def _moment(scene: BayScene, phase: Phase, rng: np.random.Generator) -> float | None:
    """A time of car 0 in ``phase`` at which its plate is wholly in frame (None if none is)."""
    p = scene.params
    move = (p.cycle_s - p.stopped_s) / 2
    if phase == "stopped":
        return move + p.stopped_s * float(rng.uniform(0.2, 0.8))
    start = 0.0 if phase == "arriving" else move + p.stopped_s
    for _ in range(12):
        # Arriving: the last part of the approach; leaving: the first part of the exit.
        u = float(rng.uniform(0.55, 0.97)) if phase == "arriving" else float(rng.uniform(0.02, 0.4))
        t = start + u * move
        if scene.state(t).plate_box is not None:
            return t
    return None


def _motion_blur(image: Image, length: int) -> Image:
    """Vertical motion blur over ``length`` pixels (the car drives up or down the picture)."""
    if length < 2:
        return image
    kernel = np.zeros((length, 1), np.float32)
    kernel[:, 0] = 1.0 / length
    return np.asarray(cv2.filter2D(image, -1, kernel), dtype=np.uint8)


def _speed_px(scene: BayScene, t: float) -> float:
    """How far the plate moves in 1/50 s (a typical exposure) at ``t``, in pixels."""
    a, b = scene.state(t).plate_box, scene.state(t + 0.02).plate_box
    if a is None or b is None:
        return 0.0
    return abs(b[1] - a[1]) + abs(b[0] - a[0])


def _one(index: int, seed: int, rng: np.random.Generator) -> Sample:
    style = STYLES[(index // 2) % len(STYLES)]
    difficulty: Difficulty = "easy" if index % 2 == 0 else "hard"
    scene_seed = int(rng.integers(2**31))
    phase: Phase = "stopped"
    width, height = 1280, 720
    if difficulty == "easy":
        night = False
        noise, blur = float(rng.uniform(0.0, 0.15)), float(rng.uniform(0.0, 0.15))
        factors: tuple[str, ...] = ()
    else:
        # One hard factor for sure, each other one with a fair chance.
        first = _HARD_FACTORS[int(rng.integers(len(_HARD_FACTORS)))]
        factors = tuple(f for f in _HARD_FACTORS if f == first or rng.random() < 0.3)
        night = "night" in factors
        noise = float(rng.uniform(0.4, 1.0)) if "noise" in factors else float(rng.uniform(0, 0.2))
        blur = float(rng.uniform(0.4, 0.9)) if "blur" in factors else float(rng.uniform(0, 0.2))
        if "moving" in factors:
            phase = "arriving" if rng.random() < 0.5 else "leaving"
        if "small" in factors:
            width, height = _SMALL_SIZES[int(rng.integers(len(_SMALL_SIZES)))]
    params = SceneParams(
        width=width, height=height, seed=scene_seed, night=night, plate_format=style,
        noise=noise, blur=blur,
    )  # fmt: skip
    scene = BayScene(params)
    t = _moment(scene, phase, rng)
    if t is None:  # the plate never shows whole in that phase: fall back to the stopped car
        phase, t = "stopped", _moment(scene, "stopped", rng)
    state = None if t is None else scene.state(t)
    if t is None or state is None or state.plate is None or state.plate_box is None:
        raise RuntimeError(f"sample {index}: the scene never shows its plate whole")
    image = scene.render(t)
    streak = 0
    if phase != "stopped":
        streak = min(16, math.floor(_speed_px(scene, t)))
        image = _motion_blur(image, streak)
    return Sample(
        image=image,
        plate=clean(state.plate),
        text=state.plate,
        box=Box(*state.plate_box),
        difficulty=difficulty,
        params={
            "index": index,
            "seed": seed,
            "scene_seed": scene_seed,
            "style": style,
            "size": [width, height],
            "night": night,
            "noise": round(noise, 3),
            "blur": round(blur, 3),
            "phase": phase,
            "t": round(t, 3),
            "motion_blur_px": streak,
            "factors": list(factors),
        },
    )


def samples(n: int, seed: int = 0) -> Iterator[Sample]:
    """``n`` samples, easy and hard in turn (even indices easy), every plate style in turn.

    Deterministic in ``(n, seed)``; sample ``i`` does not depend on ``n``. Drawing one takes
    ~50-100 ms (a new scene each: its background, car sprite and noise).
    """
    for i in range(n):
        yield _one(i, seed, np.random.default_rng([seed, i, 0x9A7E]))
