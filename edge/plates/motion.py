"""Vehicle presence in the region of interest: background subtraction with hysteresis.

Cheap enough for every decoded picture (a 160 px wide grey copy is all it looks at). Call
:meth:`PresenceDetector.update` with each new small grey picture (:func:`downscale_gray`); it
answers ``"arrived"`` once when a vehicle has come into the region of interest, ``"left"`` once
when it has gone, and None otherwise: one vehicle, one *episode*.

How it judges:

- **Background**: the empty bay, learnt from the *first picture* (the bay is assumed empty at
  start) and then adapted slowly (``EMPTY_TAU_S``) only while no vehicle is present; a vehicle
  standing still for minutes therefore stays present. Pixels that differ while the bay is empty
  (a cone left behind) are absorbed much more slowly (``LEFTOVER_TAU_S``). Under a present
  vehicle nothing is learnt; the floor still visible around it keeps following the light.
- **Light**: a global brightness change (clouds, exposure, lamps dimming) is estimated each
  picture as the median ratio picture / background over the pixels that showed background in
  the previous picture, over the *whole* picture (not only the region: a vehicle filling the
  region must not be taken for a darker bay; clipped pixels left out), rate-limited to
  ``GAIN_RATE`` and folded into the background, which is compared clipped to white too. A
  light switched on at once is followed within a few seconds: a short false episode at most.
- **Foreground**: after a Gaussian blur (sensor noise), pixels differing from the background by
  more than ``max(MIN_LEVEL, NOISE_K * noise)`` plus ``REL_LEVEL`` of the background's level;
  ``noise`` is measured on the background pixels. The *fraction* of the region's pixels that
  are foreground goes through :class:`Hysteresis` (the config's enter/exit fractions and
  frames, read live on every picture).
- **A wrong background heals itself**: a vehicle already in the bay at start becomes part of
  the background; when it drives off the empty bay differs and reads as a vehicle. So does a
  vehicle left for longer than anyone is washed. When a present "vehicle" has not changed at
  all in the region for ``relearn_still_s`` (default 10 min), the current picture becomes the
  empty bay and the episode ends with ``"left"``; after ``SETTLE_S`` already if what remains
  is too small to have started an episode (pixels left over by a light switched on, clipped
  to white). :meth:`reset` forgets everything at once.

Stillness (so a stationary vehicle is not sent to the cloud twice): :attr:`generation` counts
the times the region *changed* — more than ``MOTION_FRACTION`` of it differs from the picture
at the last change (a slow creep adds up too); take it when a picture is read and ask
:meth:`changed_since` before reading again. :attr:`moving` is picture-to-picture change,
:attr:`still_for_s` the seconds since the last change.
"""

from __future__ import annotations

import math
from typing import Literal, TypeVar

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.config import PlateMotionConfig

__all__ = ["Change", "Hysteresis", "PresenceDetector", "downscale_gray"]

Change = Literal["arrived", "left"]
Gray = NDArray[np.uint8]
_F32 = NDArray[np.float32]
_Mask = NDArray[np.bool_]
Roi = tuple[float, float, float, float]
_T = TypeVar("_T", bound=np.generic)

WORK_WIDTH = 160  # pixels: pictures are judged at this width (or narrower)
BLUR_SIGMA = 1.2  # pixels at WORK_WIDTH: smooths sensor noise and JPEG blocks
MIN_LEVEL = 10.0  # grey levels: the least difference from the background that counts
NOISE_K = 4.0  # ...or this many times the measured noise, if more
MAX_NOISE = 6.0  # grey levels: the noise taken at most (the threshold must not run away)
REL_LEVEL = 0.06  # plus this share of the background's level (uneven light changes)
EMPTY_TAU_S = 8.0  # time constant of the background while the bay is empty
LEFTOVER_TAU_S = 120.0  # ...for pixels that differ while the bay is empty
GAIN_RATE = 0.3  # at most this change of log(brightness) per second is followed
SATURATED = 250.0  # grey level from which a (blurred) pixel may be clipped
GAIN_MIN_SHARE = 0.1  # light is estimated on background pixels when they are this much of it
MOTION_FRACTION = 0.02  # share of the region that must change to count as a change / moving
MOTION_LEVEL = 12.0  # grey levels: a pixel changed from one picture to another
RELEARN_STILL_S = 600.0  # a "vehicle" unchanged this long is taken for the empty bay
SETTLE_S = 20.0  # ...and this long if it is too small to have started an episode


def downscale_gray(image: NDArray[np.uint8], width: int = WORK_WIDTH) -> Gray:
    """``image`` (BGR or grey) as grey, at most ``width`` pixels wide (area-averaged)."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape[:2]
    if w > width:
        size = (width, max(1, round(h * width / w)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray, dtype=np.uint8)


class Hysteresis:
    """Foreground fractions to episodes: ``enter_frames`` checks in a row above
    ``enter_fraction`` start one (``"arrived"``), ``exit_frames`` in a row below
    ``exit_fraction`` end it (``"left"``). Events alternate, starting with ``"arrived"``.
    ``config`` is read on every check (the live config edits it in place)."""

    def __init__(self, config: PlateMotionConfig) -> None:
        self.config = config
        self.present = False
        self._run = 0  # checks in a row on the far side of the threshold

    def update(self, fraction: float) -> Change | None:
        c = self.config
        if not self.present:
            self._run = self._run + 1 if fraction > c.enter_fraction else 0
            if self._run >= c.enter_frames:
                self.present, self._run = True, 0
                return "arrived"
            return None
        self._run = self._run + 1 if fraction < c.exit_fraction else 0
        if self._run >= c.exit_frames:
            self.present, self._run = False, 0
            return "left"
        return None

    def end(self) -> Change | None:
        """Forget the run; ``"left"`` if an episode was open."""
        was, self.present, self._run = self.present, False, 0
        return "left" if was else None


class PresenceDetector:
    """Is a vehicle in the region of interest? One instance per camera; see the module doc.

    ``roi`` is x0, y0, x1, y1 as fractions of the picture. The background covers the whole
    picture, so a new :attr:`roi` (hot config: set it before each :meth:`update`) applies from
    the next picture without re-learning. Times (``now``) are seconds on a monotonic clock.
    """

    def __init__(
        self,
        config: PlateMotionConfig,
        roi: Roi = (0.0, 0.0, 1.0, 1.0),
        *,
        relearn_still_s: float = RELEARN_STILL_S,
    ) -> None:
        self.config = config
        self.relearn_still_s = relearn_still_s
        self._hysteresis = Hysteresis(config)
        self._roi = roi
        self.fraction = 0.0  # share of the region differing from the empty bay, last picture
        self.motion_level = 0.0  # share of the region changed since the previous picture
        self.generation = 0  # bumped whenever the region changed (see changed_since)
        self.present_since: float | None = None
        self.noise = 2.0  # grey levels: the background pixels' spread (blurred)
        self._bg: _F32 | None = None
        self._prev: _F32 | None = None
        self._ref: _F32 | None = None  # the region at the last change
        self._mask: _Mask | None = None  # foreground in the previous picture (whole picture)
        self._last: float | None = None
        self._changed_at = 0.0

    # ------------------------------------------------------------------ state
    @property
    def present(self) -> bool:
        return self._hysteresis.present

    @property
    def moving(self) -> bool:
        """The region changed between the last two pictures."""
        return self.motion_level > MOTION_FRACTION

    @property
    def still_for_s(self) -> float:
        """Seconds from the region's last change to the last picture."""
        return 0.0 if self._last is None else self._last - self._changed_at

    def changed_since(self, generation: int) -> bool:
        """Has the region changed since :attr:`generation` was ``generation``?"""
        return self.generation != generation

    @property
    def roi(self) -> Roi:
        return self._roi

    @roi.setter
    def roi(self, roi: Roi) -> None:
        if tuple(roi) != tuple(self._roi):
            self._roi = roi
            self._ref = self._prev = None  # the region is a different one now

    def reset(self) -> Change | None:
        """Forget the background: the next picture is the empty bay. ``"left"`` if present."""
        self._bg = self._prev = self._ref = self._mask = None
        self.fraction = self.motion_level = 0.0
        self.present_since = None
        return self._hysteresis.end()

    def status(self) -> dict[str, object]:
        return {
            "present": self.present, "fraction": round(self.fraction, 4),
            "moving": self.moving, "still_for_s": round(self.still_for_s, 1),
            "noise": round(self.noise, 2),
        }  # fmt: skip

    # ------------------------------------------------------------------ the work
    def update(self, gray: Gray, now: float) -> Change | None:
        """Judge one picture (grey, any size; best ~160-320 px wide) taken at ``now``."""
        cur = self._prepare(gray)
        bg, before = self._bg, self._mask
        if bg is None or before is None or bg.shape != cur.shape:
            change = self.reset() if bg is not None else None  # a new size: a new camera
            self._bg, self._prev, self._ref = cur.copy(), cur, self._region(cur)
            self._mask = np.zeros(cur.shape, np.bool_)
            self._last, self._changed_at = now, now
            return change
        dt = min(10.0, max(0.0, now - (self._last if self._last is not None else now)))
        self._last = now
        mask = self._foreground(cur, bg, before, dt)
        region = self._region(mask)
        self.fraction = float(np.count_nonzero(region)) / max(1, region.size)
        self._track_motion(cur, now)
        change = self._hysteresis.update(self.fraction)
        if change == "arrived":
            self.present_since = now
        elif change == "left":
            self.present_since = None
        elif self.present and (
            self.still_for_s >= self.relearn_still_s
            or (self.fraction <= self.config.enter_fraction and self.still_for_s >= SETTLE_S)
        ):
            self._bg = cur.copy()  # nothing moved for so long: this is the empty bay
            self._mask = np.zeros(cur.shape, np.bool_)
            self.present_since = None
            return self._hysteresis.end()
        self._learn(cur, bg, mask, dt)
        return change

    def _prepare(self, gray: Gray) -> _F32:
        small = downscale_gray(gray, WORK_WIDTH).astype(np.float32)
        return np.asarray(cv2.GaussianBlur(small, (0, 0), BLUR_SIGMA), np.float32)

    def _region(self, a: NDArray[_T]) -> NDArray[_T]:
        h, w = a.shape[:2]
        x0, y0, x1, y1 = self._roi
        c0, c1 = min(w - 1, math.floor(x0 * w)), max(1, math.ceil(x1 * w))
        r0, r1 = min(h - 1, math.floor(y0 * h)), max(1, math.ceil(y1 * h))
        return a[r0 : max(r0 + 1, r1), c0 : max(c0 + 1, c1)]

    def _foreground(self, cur: _F32, bg: _F32, before: _Mask, dt: float) -> _Mask:
        """Fold the light change into ``bg`` (in place), then the foreground mask; ``before``
        is the previous picture's."""
        lit = cur < SATURATED  # a clipped pixel says nothing about the light
        usable = lit & ~before
        if np.count_nonzero(usable) < GAIN_MIN_SHARE * usable.size:
            usable = lit  # the picture is all vehicle (or all changed)
        if np.any(usable):
            ratio = float(np.median(cur[usable] / np.maximum(bg[usable], 4.0)))
            limit = GAIN_RATE * dt
            bg *= math.exp(min(limit, max(-limit, math.log(max(ratio, 1e-3)))))
        diff = np.abs(cur - np.minimum(bg, 255.0))  # brighter than white is white
        level = max(MIN_LEVEL, NOISE_K * self.noise)
        mask: _Mask = diff > level + REL_LEVEL * bg
        calm = diff[~mask]
        if calm.size:  # the median |d| of a normal distribution is 0.67 sigma
            noise = min(MAX_NOISE, float(np.median(calm)) * 1.4826)
            self.noise += 0.1 * (noise - self.noise)
        self._mask = mask
        return mask

    def _track_motion(self, cur: _F32, now: float) -> None:
        region = self._region(cur)
        prev = self._prev if self._prev is not None else cur
        self.motion_level = _changed_share(region, self._region(prev))
        if self._ref is None or self._ref.shape != region.shape:
            self._ref, self._changed_at = region, now
        elif _changed_share(region, self._ref) > MOTION_FRACTION:
            self.generation += 1
            self._ref, self._changed_at = region, now
        self._prev = cur

    def _learn(self, cur: _F32, bg: _F32, mask: _Mask, dt: float) -> None:
        """Adapt the background: all of it while empty (differing pixels slowly), only the
        visible floor while a vehicle is present."""
        a = np.float32(1.0 - math.exp(-dt / EMPTY_TAU_S))
        calm = ~mask
        bg[calm] += a * (cur[calm] - bg[calm])
        if not self.present:
            b = np.float32(1.0 - math.exp(-dt / LEFTOVER_TAU_S))
            bg[mask] += b * (cur[mask] - bg[mask])


def _changed_share(a: _F32, b: _F32) -> float:
    """Share of pixels differing by more than ``MOTION_LEVEL`` once the overall light is
    matched (median ratio)."""
    gain = float(np.median(a)) / max(float(np.median(b)), 1.0)
    changed = np.abs(a - b * np.float32(gain)) > MOTION_LEVEL
    return float(np.count_nonzero(changed)) / max(1, changed.size)
