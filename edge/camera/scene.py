"""A synthetic car-wash bay: the picture behind ``synthetic://`` and the plate data set generator.

The camera hangs above the bay exit and looks back at the entrance (the top of the picture).
Cars drive in under the wash arch, stop in the middle of the bay facing the camera, then drive
out at the bottom; one car per cycle, then an empty gap. Everything is drawn with OpenCV from
the seed alone, so a given ``(params, t)`` always gives the same frame. The background and each
car (sprite, mask, night glare) are drawn once; a frame is a copy, a masked blit and a few adds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Literal
from urllib.parse import parse_qsl

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PLATE_FORMATS",
    "BayScene",
    "Phase",
    "SceneParams",
    "SceneState",
    "render_plate_sample",
]

Phase = Literal["empty", "arriving", "stopped", "leaving"]
Image = NDArray[np.uint8]
BGR = tuple[int, int, int]

_LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"  # no I, O, Q, U: as on most real plates
_INK: BGR = (28, 24, 22)
_WHITE: BGR = (238, 241, 243)
_YELLOW: BGR = (30, 196, 248)
_BODY_COLOURS: tuple[BGR, ...] = (
    (235, 235, 232), (190, 190, 188), (40, 40, 42), (35, 35, 170), (150, 80, 25),
    (110, 110, 105), (60, 90, 40), (40, 170, 220), (125, 45, 50), (30, 70, 140),
)  # fmt: skip


@dataclass(frozen=True)
class _PlateStyle:
    name: str
    region: Literal["eu", "us"]
    pattern: str  # L: letter, D: digit, anything else literal
    aspect: float  # width / height
    backgrounds: tuple[BGR, ...]
    eu_strip: bool = False
    band: BGR | None = None  # coloured stripe along the top (US)


_STYLES = (
    _PlateStyle("fr", "eu", "LL DDD LL", 520 / 110, (_WHITE,), eu_strip=True),
    _PlateStyle("it", "eu", "LL DDDLL", 520 / 110, (_WHITE,), eu_strip=True),
    _PlateStyle("gb", "eu", "LLDD LLL", 520 / 111, (_WHITE, _YELLOW)),
    _PlateStyle("nl", "eu", "DD-LLL-D", 520 / 110, (_YELLOW,), eu_strip=True),
    _PlateStyle("es", "eu", "DDDD LLL", 520 / 110, (_WHITE,), eu_strip=True),
    _PlateStyle("ca", "us", "DLLLDDD", 2.0, (_WHITE,), band=(40, 40, 190)),
    _PlateStyle("ny", "us", "LLL-DDDD", 2.0, (_YELLOW,), band=(120, 60, 20)),
    _PlateStyle("tx", "us", "LLL DDDD", 2.0, (_WHITE,)),
)
PLATE_FORMATS = ("eu", "us", "mixed", *(s.name for s in _STYLES))


def _u8(a: object) -> Image:
    return np.asarray(a, dtype=np.uint8)


def _pick_style(fmt: str, rng: np.random.Generator) -> _PlateStyle:
    pool = [s for s in _STYLES if fmt in ("mixed", s.region, s.name)]
    if not pool:
        raise ValueError(f"unknown plate format {fmt!r}; expected one of {PLATE_FORMATS}")
    return pool[int(rng.integers(len(pool)))]


def _plate_text(style: _PlateStyle, rng: np.random.Generator) -> str:
    def one(c: str) -> str:
        if c == "L":
            return _LETTERS[int(rng.integers(len(_LETTERS)))]
        return str(int(rng.integers(10))) if c == "D" else c

    return "".join(one(c) for c in style.pattern)


def _draw_plate(text: str, style: _PlateStyle, bg: BGR, width: int) -> Image:
    """A flat plate ``width`` pixels wide: drawn 3x larger, then area-averaged down."""
    ss, height = 3, max(4, round(width / style.aspect))
    w, h = width * ss, height * ss
    img = np.full((h, w, 3), bg, np.uint8)
    bt = max(ss, round(h * (0.05 if style.aspect > 3 else 0.03)))
    x0, top = 2 * bt, bt
    if style.eu_strip:
        sw = round(w * 0.08)
        cv2.rectangle(img, (0, 0), (sw, h), (150, 60, 0), -1)
        for k in range(12):
            a = k * math.pi / 6
            c = (round(sw / 2 + sw * 0.2 * math.cos(a)), round(h * 0.3 + sw * 0.2 * math.sin(a)))
            cv2.circle(img, c, max(1, round(sw * 0.025)), (40, 150, 170), -1)
        x0 = sw + bt
    if style.band is not None:
        cv2.rectangle(img, (0, 0), (w, round(h * 0.16)), style.band, -1)
        top = round(h * 0.16)
    cv2.rectangle(img, (bt // 2, bt // 2), (w - 1 - bt // 2, h - 1 - bt // 2), _INK, bt)
    font = cv2.FONT_HERSHEY_DUPLEX
    avail_w = (w - x0 - 2 * bt) * 0.86  # the reader needs a quiet margin round the text
    avail_h = (h - top - bt) * (0.6 if style.aspect > 3 else 0.55)
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, 2)
    scale = min(avail_w / tw, avail_h / th)
    thick = max(1, round(scale * 2.3))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    if tw > avail_w:
        scale *= avail_w / tw
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    org = (x0 + (w - bt - x0 - tw) // 2, (top + h - bt + th) // 2)
    cv2.putText(img, text, org, font, scale, _INK, thick, cv2.LINE_AA)
    return _u8(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA))


def _plate_quad(w: int, h: int, yaw_deg: float, roll_deg: float) -> NDArray[np.float32]:
    """Corners (TL, TR, BR, BL) of a ``w`` x ``h`` plate turned by yaw then roll, at >= 1 px."""
    yaw, roll = math.radians(yaw_deg), math.radians(roll_deg)
    xs, ys = np.array([-w, w, w, -w]) / 2, np.array([-h, -h, h, h]) / 2
    s = 2.5 * w / (2.5 * w + xs * math.sin(yaw))  # the far side looks smaller
    u, v = xs * math.cos(yaw) * s, ys * s
    q = np.stack([u * math.cos(roll) - v * math.sin(roll), u * math.sin(roll) + v * math.cos(roll)])
    out: NDArray[np.float32] = (q - q.min(axis=1, keepdims=True) + 1.0).T.astype(np.float32)
    return out


def _warp_plate(patch: Image, quad: NDArray[np.float32]) -> tuple[Image, Image]:
    """``patch`` warped onto ``quad``, and its 0/1 mask, on a canvas just holding the quad."""
    h, w = patch.shape[:2]
    size = (math.ceil(float(quad[:, 0].max())) + 1, math.ceil(float(quad[:, 1].max())) + 1)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32) - 0.5
    m = cv2.getPerspectiveTransform(src, quad - 0.5)
    out = cv2.warpPerspective(patch, m, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((h, w), np.uint8), m, size, flags=cv2.INTER_NEAREST)
    return _u8(out), _u8(mask)


def _blob(
    cx: float, cy: float, a: float, b: float, n: float = 5.0, taper: float = 0.0
) -> NDArray[np.int32]:
    """A superellipse outline (a rounded box), ``taper`` widening its lower half."""
    th = np.linspace(0.0, 2 * math.pi, 72, endpoint=False)
    c, s = np.cos(th), np.sin(th)
    y = b * np.sign(s) * np.abs(s) ** (2 / n)
    x = a * np.sign(c) * np.abs(c) ** (2 / n) * (1 + taper * y / b)
    return np.stack([cx + x, cy + y], axis=1).round().astype(np.int32)


def _blit(dst: Image, src: Image, mask: Image | None, x: int, y: int, add: bool = False) -> None:
    """Copy (where ``mask``) or saturating-add ``src`` at (x, y) in ``dst``, clipped."""
    h, w = src.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, dst.shape[1]), min(y + h, dst.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    roi, part = dst[y0:y1, x0:x1], src[y0 - y : y1 - y, x0 - x : x1 - x]
    if add:
        cv2.add(roi, part, dst=roi)
    elif mask is None:
        roi[...] = part
    else:
        cv2.copyTo(part, mask[y0 - y : y1 - y, x0 - x : x1 - x], roi)


_BAND = 64  # rows of noise drawn at a time


def _noise_planes(
    rng: np.random.Generator, sigma: float, shape: tuple[int, int, int]
) -> tuple[Image, Image]:
    """Sensor noise as two uint8 planes (its positive and negative parts), drawn in bands of
    rows: a 1080p plane drawn at once held ~150 MB of float64 for a moment. The values are
    those of one ``rng.normal(0, sigma, shape)`` call: the stream is drawn in the same order."""
    pos, neg = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
    for y in range(0, shape[0], _BAND):
        n = rng.normal(0.0, sigma, (min(_BAND, shape[0] - y), *shape[1:]))
        pos[y : y + _BAND] = np.clip(n, 0, 255)
        np.negative(n, out=n)
        neg[y : y + _BAND] = np.clip(n, 0, 255)
    return pos, neg


def _glow(shape: tuple[int, int], cx: float, cy: float, sigma: float) -> NDArray[np.float32]:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma * sigma)
    return np.exp(-d2).astype(np.float32)


_QUERY_KEYS: Mapping[str, tuple[str, str]] = MappingProxyType({  # key -> (field, kind)
    "width": ("width", "int"), "height": ("height", "int"), "fps": ("fps", "int"),
    "seed": ("seed", "int"), "night": ("night", "bool"), "plate": ("plate_format", "str"),
    "plate_format": ("plate_format", "str"), "cycle": ("cycle_s", "float"),
    "cycle_s": ("cycle_s", "float"), "stop": ("stop_s", "float"), "stop_s": ("stop_s", "float"),
    "empty": ("empty_s", "float"), "empty_s": ("empty_s", "float"),
    "noise": ("noise", "float"), "blur": ("blur", "float"),
})  # fmt: skip
_RANGES: Mapping[str, tuple[float, float]] = MappingProxyType({
    "width": (64, 4096), "height": (64, 4096), "fps": (1, 120), "seed": (0, 2**63 - 1),
    "cycle_s": (0.1, 3600.0), "stop_s": (0.0, 3600.0), "empty_s": (0.0, 3600.0),
    "noise": (0.0, 1.0), "blur": (0.0, 1.0),
})  # fmt: skip


def _check_field(name: str, value: object) -> str | None:
    """Why ``value`` is not acceptable for field ``name``, or None."""
    if name == "night":
        return None if isinstance(value, bool) else f"expected a boolean, got {value!r}"
    if name == "plate_format":
        return None if value in PLATE_FORMATS else f"expected one of {PLATE_FORMATS}, got {value!r}"
    if name == "stop_s" and value is None:
        return None
    want_int = name in ("width", "height", "fps", "seed")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (want_int and not isinstance(value, int))
    ):
        return f"expected {'an integer' if want_int else 'a number'}, got {value!r}"
    lo, hi = _RANGES[name]
    if not lo <= value <= hi:  # also rejects NaN
        return f"must be between {lo} and {hi}, got {value!r}"
    return None


@dataclass(frozen=True)
class SceneParams:
    """What the synthetic bay looks like. ``stop_s`` None means 40% of ``cycle_s``."""

    width: int = 1280
    height: int = 720
    fps: int = 10
    seed: int = 0
    night: bool = False
    plate_format: str = "mixed"  # "eu", "us", "mixed" or one style: fr it gb nl es ca ny tx
    cycle_s: float = 20.0  # one car: arriving + stopped + leaving
    stop_s: float | None = None
    empty_s: float = 4.0  # gap with no car after each one
    noise: float = 0.1  # sensor noise, 0..1 (doubled at night)
    blur: float = 0.1  # lens softness, 0..1

    def __post_init__(self) -> None:
        for f in fields(self):
            why = _check_field(f.name, getattr(self, f.name))
            if why is not None:
                raise ValueError(f"scene parameter {f.name!r}: {why}")
        if self.stop_s is not None and self.stop_s >= self.cycle_s:
            raise ValueError(
                f"scene parameter 'stop_s' ({self.stop_s}) must be shorter than "
                f"'cycle_s' ({self.cycle_s})"
            )

    @property
    def stopped_s(self) -> float:
        """Seconds a car stands still in the bay."""
        return 0.4 * self.cycle_s if self.stop_s is None else self.stop_s

    @classmethod
    def from_query(cls, query: str) -> SceneParams:
        """Parse ``width=640&height=360&fps=5&seed=3&night=1&cycle=12`` (a leading ``?`` is ok).

        Keys: width height fps seed night plate cycle stop empty noise blur (the field names
        work too). Raises ValueError naming the offending key.
        """
        try:
            pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True, strict_parsing=True)
        except ValueError as err:
            raise ValueError(f"malformed synthetic scene query {query!r}: {err}") from None
        values: dict[str, object] = {}
        for key, raw in pairs:
            if key not in _QUERY_KEYS:
                raise ValueError(f"unknown scene parameter {key!r}; known: {sorted(_QUERY_KEYS)}")
            name, kind = _QUERY_KEYS[key]
            if name in values:
                raise ValueError(f"scene parameter {key!r} given twice")
            value: object = raw
            try:
                if kind in ("int", "float"):
                    value = int(raw) if kind == "int" else float(raw)
            except ValueError:
                what = "an integer" if kind == "int" else "a number"
                raise ValueError(f"scene parameter {key!r}: expected {what}, got {raw!r}") from None
            if kind == "bool":
                low = raw.lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(f"scene parameter {key!r}: expected 1 or 0, got {raw!r}")
                value = low in ("1", "true", "yes", "on")
            why = _check_field(name, value)
            if why is not None:
                raise ValueError(f"scene parameter {key!r}: {why}")
            values[name] = value
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SceneState:
    """What is in the bay at a time: the truth a plate reader is scored against."""

    car_index: int  # the cycle number: the car that is (or, when empty, was last) in the bay
    phase: Phase
    plate: str | None  # the car's plate text while a car is in the picture
    plate_box: tuple[int, int, int, int] | None  # x0, y0, x1, y1 (exclusive), when all in frame


@dataclass(frozen=True, eq=False)
class _Car:
    """One car, drawn once: where it sits and what it looks like."""

    text: str
    x: int  # sprite left edge in the frame
    y_stop: int  # sprite top edge while stopped
    box: tuple[int, int, int, int]  # plate box in sprite coordinates
    image: Image
    mask: Image
    glare: Image | None  # additive, ``glare_pad`` wider than the sprite on each side
    glare_pad: int


class BayScene:
    """The bay for ``params``: :meth:`render` a frame and :meth:`state` its truth at ``t``."""

    def __init__(self, params: SceneParams | None = None) -> None:
        self.params = p = params or SceneParams()
        rng = np.random.default_rng([p.seed, 0xBA5E])
        hour = rng.uniform(21.0, 28.0) % 24 if p.night else rng.uniform(8.0, 17.0)
        self._clock0 = hour * 3600.0
        self._level = 1.0 if p.night else 0.8 + 0.25 * math.sin(math.pi * (hour - 6.0) / 12.0)
        self._bg, self._beam = self._background(rng)
        self._cars: dict[int, _Car] = {}  # a few recent cars, drawn once each
        self._noise: tuple[Image, Image] | None = None
        sigma = p.noise * 14.0 * (2.0 if p.night else 1.0)
        if sigma > 0:
            self._noise = _noise_planes(rng, sigma, (p.height + 32, p.width + 32, 3))

    # ------------------------------------------------------------------ timing
    def _phase(self, t: float) -> tuple[int, Phase, float]:
        """(car index, phase, progress 0..1 within the phase) at ``t``."""
        p = self.params
        k = math.floor(t / (p.cycle_s + p.empty_s))
        tau = t - k * (p.cycle_s + p.empty_s)
        move = (p.cycle_s - p.stopped_s) / 2
        if tau < move:
            return k, "arriving", tau / move
        if tau < move + p.stopped_s:
            return k, "stopped", 0.0
        if tau < p.cycle_s:
            return k, "leaving", min(1.0, (tau - move - p.stopped_s) / move)
        return k, "empty", 0.0

    def _car_y(self, car: _Car, phase: Phase, u: float) -> int:
        h, top = self.params.height, -int(car.image.shape[0])
        if phase == "arriving":  # slows down into the bay
            return round(top + (car.y_stop - top) * (1 - (1 - u) ** 2))
        if phase == "leaving":  # speeds up out of it
            return round(car.y_stop + (h - car.y_stop) * u * u)
        return car.y_stop

    def state(self, t: float) -> SceneState:
        """The car index, phase, plate text and plate box at ``t`` seconds."""
        k, phase, u = self._phase(t)
        if phase == "empty":
            return SceneState(k, phase, None, None)
        car = self._car(k)
        x, y = car.x, self._car_y(car, phase, u)
        x0, y0, x1, y1 = car.box[0] + x, car.box[1] + y, car.box[2] + x, car.box[3] + y
        inside = x0 >= 0 and y0 >= 0 and x1 <= self.params.width and y1 <= self.params.height
        return SceneState(k, phase, car.text, (x0, y0, x1, y1) if inside else None)

    def render(self, t: float) -> Image:
        """A new BGR frame (height x width x 3, uint8) of the bay at ``t`` seconds."""
        p = self.params
        frame = self._bg.copy()
        k, phase, u = self._phase(t)
        if phase != "empty":
            car = self._car(k)
            y = self._car_y(car, phase, u)
            _blit(frame, car.image, car.mask, car.x, y)
            b_y1, b_x0, b_x1 = self._beam  # the car passes under the arch's beam
            if y < b_y1:
                frame[:b_y1, b_x0:b_x1] = self._bg[:b_y1, b_x0:b_x1]
            if car.glare is not None:
                _blit(frame, car.glare, None, car.x - car.glare_pad, y, add=True)
        secs = int(self._clock0 + t) % 86400
        clock = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        scale = p.height / 1100
        org = (round(p.width * 0.012), round(p.height * 0.05))  # on the wall, top left
        ink = (120, 120, 120) if p.night else (215, 215, 215)
        cv2.putText(frame, clock, org, cv2.FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv2.LINE_AA)
        if self._noise is not None:
            n = math.floor(t * p.fps)
            dy, dx = n * 7 % 31, n * 13 % 29
            cv2.add(frame, self._noise[0][dy : dy + p.height, dx : dx + p.width], dst=frame)
            dy, dx = n * 11 % 31, n * 5 % 29
            cv2.subtract(frame, self._noise[1][dy : dy + p.height, dx : dx + p.width], dst=frame)
        return frame

    def background(self) -> Image:
        """The empty bay (no car, clock or noise): a reference for tests and detectors."""
        return self._bg.copy()

    # ------------------------------------------------------------------ drawing
    def _background(self, rng: np.random.Generator) -> tuple[Image, tuple[int, int, int]]:
        """The empty bay, lit for the time of day, and the arch beam's (y1, x0, x1)."""
        p = self.params
        w, h = p.width, p.height

        def edge(y: float, side: int) -> int:  # floor edge, converging to a point above
            return round(w / 2 + side * 0.46 * w * (y + 2.5 * h) / (3.5 * h))

        # In place and in bands of rows: a 1080p floor drawn at once held ~100 MB of float64
        # temporaries. The same numbers come out (the generator's stream is drawn in order).
        floor = np.asarray(cv2.resize(rng.normal(0, 1, (h // 16 + 1, w // 16 + 1)), (w, h)), float)
        floor *= 9
        floor += 118
        for y in range(0, h, _BAND):
            floor[y : y + _BAND] += rng.normal(0, 3, (min(_BAND, h - y), w))
        np.clip(floor, 0, 255, out=floor)
        img = np.repeat(floor.astype(np.uint8)[:, :, None], 3, axis=2)
        del floor
        for _ in range(4):  # wet patches
            c = (int(rng.integers(w)), int(rng.integers(h // 3, h)))
            ax = (int(rng.integers(w // 20, w // 7)), int(rng.integers(h // 30, h // 10)))
            cv2.ellipse(img, c, ax, 0, 0, 360, (92, 94, 96), -1, cv2.LINE_AA)
        for side in (-1, 1):
            wall = [(0 if side < 0 else w, 0), (edge(0, side), 0), (edge(h, side), h)]
            wall.append((0 if side < 0 else w, h))
            cv2.fillPoly(img, [np.array(wall, np.int32)], (182, 176, 165), cv2.LINE_AA)
            for y in range(h // 9, h, h // 9):  # tile rows
                cv2.line(img, (0 if side < 0 else w, y), (edge(y, side), y), (150, 145, 138), 1)
            cv2.line(img, (edge(0, side), 0), (edge(h, side), h), (20, 170, 215), max(2, w // 90))
            lane = (
                (round(w / 2 + side * 0.3 * w * 2.5 / 3.5), 0),
                (round(w / 2 + side * 0.3 * w), h),
            )
            cv2.line(img, *lane, (235, 235, 235), max(1, w // 160), cv2.LINE_AA)
            pw, ph = round(0.045 * w), round(0.34 * h)  # arch pillar and brush
            xp = edge(0, side) - (pw if side < 0 else 0)
            cv2.rectangle(img, (xp, 0), (xp + pw, ph), (150, 112, 70), -1)
            xb = edge(0, side) + (w // 100 if side < 0 else -w // 100 - round(0.06 * w))
            cv2.rectangle(img, (xb, 0), (xb + round(0.06 * w), round(0.28 * h)), (205, 125, 40), -1)
            for y in range(0, round(0.28 * h), max(2, h // 70)):
                cv2.line(img, (xb, y), (xb + round(0.06 * w), y), (170, 95, 25), 1)
        ys = round(h * 0.965)  # stop line
        cv2.line(img, (edge(ys, -1), ys), (edge(ys, 1), ys), (235, 235, 235), max(2, h // 90))
        g0, g1 = (round(0.44 * w), round(0.47 * h)), (round(0.56 * w), round(0.52 * h))
        cv2.rectangle(img, g0, g1, (55, 55, 58), -1)  # drain grate
        for x in range(g0[0], g1[0], max(2, w // 200)):
            cv2.line(img, (x, g0[1]), (x, g1[1]), (95, 95, 98), 1)
        beam = (round(0.055 * h), edge(0, -1) - round(0.045 * w), edge(0, 1) + round(0.045 * w))
        cv2.rectangle(img, (beam[1], 0), (beam[2], beam[0]), (160, 120, 75), -1)
        cv2.line(img, (beam[1], beam[0]), (beam[2], beam[0]), (90, 65, 40), max(1, h // 200))
        for x in range(beam[1] + w // 40, beam[2], w // 20):  # spray nozzles
            cv2.circle(img, (x, beam[0]), max(1, h // 180), (60, 60, 60), -1)
        cv2.putText(img, "BAY 1", (round(0.02 * w), round(0.3 * h)), cv2.FONT_HERSHEY_DUPLEX,
                    h / 500, (120, 60, 30), max(1, h // 300), cv2.LINE_AA)  # fmt: skip
        if p.night:  # two lamps over the bay in a dark hall, a bluish cast
            light = 0.07 + 0.45 * _glow((h, w), w / 2, 0.3 * h, 0.35 * w)
            light += 0.35 * _glow((h, w), w / 2, 0.8 * h, 0.3 * w)
            tint = np.array([1.08, 1.0, 0.88], np.float32)
        else:
            light = self._level * (1.0 - 0.18 * (1.0 - _glow((h, w), w / 2, h / 2, 0.6 * w)))
            tint = np.ones(3, np.float32)
        lit = img * light[:, :, None]  # float32, like the product it replaces; then in place
        lit *= tint
        img = _u8(np.clip(lit, 0, 255, out=lit))
        del lit, light
        if p.blur > 0:
            img = _u8(cv2.GaussianBlur(img, (0, 0), 0.2 + 1.6 * p.blur))
        return img, beam

    def _car(self, k: int) -> _Car:
        if k not in self._cars:
            while len(self._cars) >= 3:
                del self._cars[next(iter(self._cars))]
            self._cars[k] = self._draw_car(k)
        return self._cars[k]

    def _draw_car(self, k: int) -> _Car:
        """Car ``k``: a 2.5D view from above its front, its plate warped onto the bumper."""
        p = self.params
        rng = np.random.default_rng([p.seed, k % 2**32, 0xCA2])
        style = _pick_style(p.plate_format, rng)
        text = _plate_text(style, rng)
        plate_bg = style.backgrounds[int(rng.integers(len(style.backgrounds)))]
        body = np.array(_BODY_COLOURS[int(rng.integers(len(_BODY_COLOURS)))], np.float32)
        body = np.clip(body * rng.uniform(0.9, 1.1, 3), 0, 255)
        cw = round(p.width * rng.uniform(0.42, 0.52))
        ch = min(round(p.height * 0.84), round(cw * rng.uniform(1.3, 1.55)))
        pw = round(p.width * rng.uniform(0.13, 0.18))
        quad = _plate_quad(pw, max(4, round(pw / style.aspect)), rng.uniform(-14, 14),
                           rng.uniform(-3, 3))  # fmt: skip
        cabin, hood = rng.uniform(0.22, 0.36), rng.uniform(0.1, 0.15)  # roof, windscreen
        sw, mx = round(cw * 1.12), round(cw * 0.06)
        cx = sw / 2
        ph = float(quad[:, 1].max()) + 1
        fh = max(0.2 * ch, 2.0 * ph)  # the front face: lights, grille, bumper, plate
        f0 = ch - fh
        img = np.zeros((ch, sw, 3), np.uint8)
        mask = np.zeros((ch, sw), np.uint8)
        col = tuple(float(c) for c in body)
        dark = tuple(float(c) * 0.55 for c in body)
        for yf in (0.16, f0 / ch - 0.15):  # wheels, just showing at the sides
            y0 = round(yf * ch)
            cv2.rectangle(
                img, (mx - cw // 60, y0), (mx + cw + cw // 60, y0 + ch // 9), (25, 25, 25), -1
            )
            cv2.rectangle(mask, (mx - cw // 60, y0), (mx + cw + cw // 60, y0 + ch // 9), 1, -1)
        for side in (-1, 1):  # mirrors
            c = (round(cx + side * cw * 0.53), round(ch * (0.2 + cabin + 0.02)))
            cv2.ellipse(img, c, (round(cw * 0.05), round(ch * 0.025)), 0, 0, 360, dark, -1)
            cv2.ellipse(mask, c, (round(cw * 0.05), round(ch * 0.025)), 0, 0, 360, 1, -1)
        outline = _blob(cx, ch / 2, cw / 2 * 0.95, ch / 2 - 1, n=5.0, taper=0.05)
        cv2.fillPoly(img, [outline], col, cv2.LINE_AA)
        cv2.fillPoly(mask, [outline], 1)
        shade = 1.0 - 0.35 * ((np.arange(sw) - cx) / (cw / 2)) ** 2  # rounded flanks
        img = _u8(np.clip(img * np.clip(shade, 0.4, 1.0)[None, :, None], 0, 255))
        glass = (72, 58, 50)
        cv2.fillPoly(img, [_blob(cx, 0.1 * ch, 0.36 * cw, 0.05 * ch, 4)], glass, cv2.LINE_AA)
        roof = _blob(cx, (0.16 + cabin / 2) * ch, 0.41 * cw, cabin / 2 * ch - 0.03 * ch, 4)
        cv2.fillPoly(img, [roof], tuple(min(255.0, c * 1.12) for c in col), cv2.LINE_AA)
        wy0, wy1 = (0.16 + cabin) * ch, (0.16 + cabin + hood) * ch
        wind = np.array([[cx - 0.36 * cw, wy0], [cx + 0.36 * cw, wy0],
                         [cx + 0.44 * cw, wy1], [cx - 0.44 * cw, wy1]], np.int32)  # fmt: skip
        cv2.fillPoly(img, [wind], glass, cv2.LINE_AA)
        refl = np.array([[cx - 0.1 * cw, wy0], [cx + 0.02 * cw, wy0],
                         [cx - 0.12 * cw, wy1], [cx - 0.26 * cw, wy1]], np.int32)  # fmt: skip
        cv2.fillPoly(img, [refl], (115, 105, 98), cv2.LINE_AA)
        cv2.rectangle(
            img, (round(cx - 0.46 * cw), round(f0)), (round(cx + 0.46 * cw), ch), dark, -1
        )
        by = round(f0 + 0.6 * fh - ph / 2 - 0.07 * fh)  # bumper top, just above the plate
        cv2.rectangle(
            img, (round(cx - 0.47 * cw), by), (round(cx + 0.47 * cw), ch), (48, 48, 50), -1
        )
        cv2.rectangle(img, (round(cx - 0.2 * cw), round(f0 + 0.2 * fh)),
                      (round(cx + 0.2 * cw), by - round(0.03 * fh)), (30, 30, 32), -1)  # fmt: skip
        night = 0.3 if p.night else self._level
        img = _u8(np.clip(img * night, 0, 255))
        lamps = [(round(cx + s * 0.35 * cw), round(f0 + 0.12 * fh)) for s in (-1, 1)]
        for c in lamps:
            lamp = (255, 255, 255) if p.night else (205, 212, 215)
            cv2.ellipse(img, c, (round(0.09 * cw), round(0.07 * fh) + 2), 0, 0, 360, lamp, -1)
        img[mask == 0] = 0
        px, py = round(cx - float(quad[:, 0].max()) / 2), round(f0 + 0.6 * fh - ph / 2)
        patch = _draw_plate(text, style, plate_bg, pw)
        if p.night:  # lit by the plate lamp: a little dimmer and warmer
            patch = _u8(np.clip(patch * np.array([0.8, 0.88, 0.92], np.float32), 0, 255))
        warped, wmask = _warp_plate(patch, quad)
        _blit(img, warped, wmask, px, py)
        if p.blur > 0:
            img = _u8(cv2.GaussianBlur(img, (0, 0), 0.2 + 1.6 * p.blur))
        box = (
            px + math.floor(float(quad[:, 0].min())),
            py + math.floor(float(quad[:, 1].min())),
            px + math.ceil(float(quad[:, 0].max())),
            py + math.ceil(float(quad[:, 1].max())),
        )
        y_stop = round(p.height * (0.95 + rng.uniform(-0.02, 0.01))) - ch
        x = (p.width - sw) // 2 + round(p.width * rng.uniform(-0.04, 0.04))
        glare, pad = None, round(0.12 * p.width)
        if p.night:  # headlights into the lens and their beams on the wet floor
            gh, gw = ch + round(0.3 * p.height), sw + 2 * pad
            g = np.zeros((gh, gw), np.float32)
            for lx, ly in lamps:
                g += 230 * _glow((gh, gw), lx + pad, ly, 0.012 * p.width)
                g += 110 * _glow((gh, gw), lx + pad, ly, 0.045 * p.width)
                g += 40 * _glow((gh, gw), lx + pad, ch + 0.12 * p.height, 0.08 * p.width)
            glare = _u8(np.clip(np.repeat(g[:, :, None], 3, axis=2), 0, 255))
        return _Car(text, x, y_stop, box, img, mask, glare, pad)


def render_plate_sample(
    rng: np.random.Generator, fmt: str = "mixed", *, difficulty: float = 0.3
) -> tuple[Image, str]:
    """One plate crop for a reader's data set, and its text.

    ``difficulty`` 0..1 scales the turn, size loss, darkness, blur, noise and glare.
    """
    d = min(1.0, max(0.0, difficulty))
    style = _pick_style(fmt, rng)
    text = _plate_text(style, rng)
    pw = round(rng.uniform(110, 220) * (1 - 0.5 * d))
    patch = _draw_plate(
        text, style, style.backgrounds[int(rng.integers(len(style.backgrounds)))], pw
    )
    turn = rng.uniform(-1, 1, 2) * (35 * d, 12 * d)
    warped, wmask = _warp_plate(patch, _plate_quad(pw, patch.shape[0], turn[0], turn[1]))
    mh, mw = warped.shape[0] // 3 + 4, warped.shape[1] // 8 + 4
    bumper = rng.uniform(20, 200, 3)
    out = np.empty((warped.shape[0] + 2 * mh, warped.shape[1] + 2 * mw, 3), np.uint8)
    out[...] = np.clip(bumper + rng.normal(0, 4, out.shape), 0, 255)
    _blit(out, warped, wmask, mw + int(rng.integers(-mw // 2, mw // 2 + 1)), mh)
    f = out * (1 - 0.75 * d * rng.random())
    if rng.random() < d:
        cx, cy = rng.uniform(0, out.shape[1]), rng.uniform(0, out.shape[0])
        f += 255 * d * _glow(out.shape[:2], cx, cy, out.shape[0] * 0.4)[:, :, None]
    f += rng.normal(0, 25 * d * rng.random() + 1, out.shape)
    out = _u8(np.clip(f, 0, 255))
    sigma = 2.2 * d * rng.random()
    return (_u8(cv2.GaussianBlur(out, (0, 0), sigma)) if sigma > 0.3 else out), text
