"""Synthetic test frames that carry a machine-readable timecode.

The timecode is a strip of big black/white cells across the full width at the top of the frame:

* 2 rows of ``n_cols`` square cells, cell size ``width / n_cols`` (so the layout scales with the
  image and a reader only needs the width of whatever copy it got);
* column 0 and column ``n_cols - 1`` are markers: row 0 is white/black, row 1 is black/white;
* the other cells carry ``bits`` value bits (MSB first, row 0 then row 1), then an 8-bit CRC,
  then black padding. White = 1.

The CRC (poly 0x07, xor-out 0xA5 so all-black and all-white strips are invalid) together with the
markers and a per-cell contrast check makes garbage read as ``None`` instead of a wrong value.

``make_frame`` renders a deterministic frame for a value: a textured gradient background, a "slow"
box and a "fast" box whose positions move with the value, and the timecode. The exact same frame
is produced without numpy by ``tests/support/rtsp_server.py`` (Debian's python has no numpy); a
unit test checks the two renderers are byte-identical, so change both together.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "CHECK_BITS",
    "FRAME_LAYOUT_VERSION",
    "code_height",
    "draw_timecode",
    "make_frame",
    "psnr",
    "read_timecode",
]

U8Image = npt.NDArray[np.uint8]

#: Bumped whenever ``make_frame`` output changes (part of the cache key of encoded clips).
FRAME_LAYOUT_VERSION = 1
#: Number of CRC bits after the value bits.
CHECK_BITS = 8
_CRC_POLY = 0x07
_CRC_XOROUT = 0xA5
#: Minimum white-minus-black difference (in grey levels) between the marker cells.
_MIN_CONTRAST = 60.0


def _crc8(value: int, bits: int) -> int:
    crc = 0
    for i in range(bits - 1, -1, -1):
        top = ((crc >> 7) & 1) ^ ((value >> i) & 1)
        crc = (crc << 1) & 0xFF
        if top:
            crc ^= _CRC_POLY
    return crc ^ _CRC_XOROUT


def _layout(bits: int) -> tuple[int, int]:
    """Return ``(n_cols, per_row)`` for a code with ``bits`` value bits."""
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    per_row = (bits + CHECK_BITS + 1) // 2
    return per_row + 2, per_row


def code_height(width: int, *, bits: int = 40) -> int:
    """Height in pixels of the timecode strip drawn into an image ``width`` pixels wide."""
    n_cols, _ = _layout(bits)
    return (2 * width) // n_cols


def _code_rows(value: int, bits: int) -> list[list[bool]]:
    """Cell colours (True = white) for the two rows, markers included."""
    n_cols, per_row = _layout(bits)
    payload = (value << CHECK_BITS) | _crc8(value, bits)
    total = bits + CHECK_BITS
    cells = [bool((payload >> (total - 1 - i)) & 1) for i in range(total)]
    cells += [False] * (2 * per_row - total)
    row0 = [True, *cells[:per_row], False]
    row1 = [False, *cells[per_row:], True]
    assert len(row0) == len(row1) == n_cols
    return [row0, row1]


def draw_timecode(img: U8Image, value: int, *, bits: int = 40) -> None:
    """Draw ``value`` (``0 <= value < 2**bits``) as a timecode strip at the top of ``img``.

    ``img`` is a BGR (or grey) uint8 image, modified in place. The strip spans the full width and
    is ``code_height(width)`` pixels tall.
    """
    if not 0 <= value < (1 << bits):
        raise ValueError(f"value {value} does not fit in {bits} bits")
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError("img must be a uint8 HxW or HxWxC array")
    height, width = img.shape[:2]
    n_cols, _ = _layout(bits)
    if width < 2 * n_cols or height < code_height(width, bits=bits):
        raise ValueError(f"image {width}x{height} too small for a {bits}-bit timecode")
    xs = [(c * width) // n_cols for c in range(n_cols + 1)]
    for r, row in enumerate(_code_rows(value, bits)):
        y0, y1 = (r * width) // n_cols, ((r + 1) * width) // n_cols
        line = np.zeros(img.shape[1:], dtype=np.uint8)
        for c, white in enumerate(row):
            if white:
                line[xs[c] : xs[c + 1]] = 255
        img[y0:y1] = line


def read_timecode(img: npt.NDArray[Any], *, bits: int = 40) -> int | None:
    """Read a timecode drawn by :func:`draw_timecode` from ``img`` (BGR or grey, any scale).

    Returns ``None`` when the markers, the contrast or the CRC do not check out.
    """
    if img.ndim not in (2, 3) or img.size == 0:
        return None
    height, width = img.shape[:2]
    n_cols, per_row = _layout(bits)
    cell = width / n_cols
    if cell < 2.0 or height < 2.0 * cell:
        return None
    strip = img[: math.ceil(2.0 * cell)]
    if strip.ndim == 3:
        if strip.shape[2] == 3:
            grey = cv2.cvtColor(np.ascontiguousarray(strip), cv2.COLOR_BGR2GRAY)
        else:
            grey = strip.mean(axis=2)
    else:
        grey = strip
    half = max(cell * 0.25, 0.5)
    levels = np.empty((2, n_cols), dtype=np.float64)
    for r in range(2):
        yc = (r + 0.5) * cell
        ya, yb = round(yc - half), max(round(yc + half), round(yc - half) + 1)
        band = grey[ya:yb]
        for c in range(n_cols):
            xc = (c + 0.5) * cell
            xa, xb = round(xc - half), max(round(xc + half), round(xc - half) + 1)
            levels[r, c] = float(band[:, xa:xb].mean())
    white = (levels[0, 0] + levels[1, n_cols - 1]) / 2.0
    black = (levels[1, 0] + levels[0, n_cols - 1]) / 2.0
    contrast = white - black
    if contrast < _MIN_CONTRAST:
        return None
    threshold = (white + black) / 2.0
    markers = [levels[0, 0], levels[1, n_cols - 1], levels[1, 0], levels[0, n_cols - 1]]
    expect = [True, True, False, False]
    data = levels[:, 1 : n_cols - 1].reshape(-1)
    # Every cell has to be clearly on one side of the threshold.
    if np.any(np.abs(data - threshold) < 0.2 * contrast):
        return None
    if [m > threshold for m in markers] != expect:
        return None
    total = bits + CHECK_BITS
    payload = 0
    for v in data[:total]:
        payload = (payload << 1) | int(v > threshold)
    if np.any(data[total : 2 * per_row] > threshold):  # padding must be black
        return None
    value = payload >> CHECK_BITS
    if payload & ((1 << CHECK_BITS) - 1) != _crc8(value, bits):
        return None
    return value


# ------------------------------------------------------------------------- frames


class _Geometry:
    """Everything about a frame of a given size that does not depend on the value."""

    def __init__(self, width: int, height: int) -> None:
        if width < 64 or height < 48 or width % 2 or height % 2:
            raise ValueError(f"frame size {width}x{height} must be even and at least 64x48")
        self.width = width
        self.height = height
        self.code_h = code_height(width)
        self.bw = max(2, width // 8)
        self.bh = max(2, height // 5)
        self.span_x = max(1, width - self.bw + 1)
        self.span_y = max(1, height - self.code_h - self.bh + 1)

    def fast_pos(self, value: int) -> tuple[int, int]:
        return (value * 4) % self.span_x, self.code_h + (value * 2) % self.span_y

    def slow_pos(self, value: int) -> tuple[int, int]:
        return (value // 8) % self.span_x, self.height - self.bh


@functools.lru_cache(maxsize=8)
def _assets(width: int, height: int) -> tuple[_Geometry, U8Image, U8Image, U8Image]:
    geo = _Geometry(width, height)
    x = np.arange(width, dtype=np.int32)[None, :]
    y = np.arange(height, dtype=np.int32)[:, None]
    c = np.where(((x >> 4) ^ (y >> 4)) & 1, 24, -24).astype(np.int32)
    bg = np.empty((height, width, 3), dtype=np.uint8)
    bg[..., 0] = 32 + (x * 192) // width + c
    bg[..., 1] = 32 + (y * 192) // height + c
    bg[..., 2] = 128 + 2 * c
    bg.flags.writeable = False

    bx = np.arange(geo.bw, dtype=np.int32)[None, :]
    by = np.arange(geo.bh, dtype=np.int32)[:, None]
    fast = np.empty((geo.bh, geo.bw, 3), dtype=np.uint8)
    fast[...] = np.where((((bx >> 2) ^ (by >> 2)) & 1)[..., None], (255, 255, 255), (0, 200, 255))
    fast.flags.writeable = False
    slow = np.empty((geo.bh, geo.bw, 3), dtype=np.uint8)
    slow[...] = np.where(((((bx + by) // 6) & 1) == 1)[..., None], (80, 0, 160), (255, 255, 0))
    slow.flags.writeable = False
    return geo, bg, fast, slow


def make_frame(width: int, height: int, value: int) -> U8Image:
    """A deterministic BGR frame for ``value`` with the 40-bit timecode ``value`` at the top.

    Consecutive values move the boxes (P-frames carry real motion); the checkered background
    and the textured boxes make a decode with missing references visibly wrong.
    """
    geo, bg, fast, slow = _assets(width, height)
    img = bg.copy()
    sx, sy = geo.slow_pos(value)
    img[sy : sy + geo.bh, sx : sx + geo.bw] = slow
    fx, fy = geo.fast_pos(value)
    img[fy : fy + geo.bh, fx : fx + geo.bw] = fast
    draw_timecode(img, value)
    return img


def psnr(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> float:
    """Peak signal-to-noise ratio in dB of two same-shaped 8-bit images (``inf`` if equal)."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0 * 255.0 / mse)
