from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from edge.snapshots.jpeg import ImageError, encode_frame, scale_jpeg

pytestmark = pytest.mark.unit


def _scene(width: int = 320, height: int = 240) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([(xx * 255 // width), (yy * 255 // height), np.full_like(xx, 90)], axis=-1)
    image = image.astype(np.uint8)
    cv2.rectangle(image, (40, 40), (120, 120), (255, 255, 255), -1)
    cv2.rectangle(image, (200, 100), (260, 200), (0, 0, 0), -1)
    return image


def _decode(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("color_range", [1, 2])  # MPEG (limited) and JPEG (full) range
def test_yuv_frames_encode_straight_to_the_right_picture(color_range: int) -> None:
    bgr = _scene()
    frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
    yuv = frame.reformat(format="yuv420p", dst_color_range=color_range)
    yuv.color_range = color_range
    jpeg, width, height = encode_frame(yuv, quality=90)
    assert (width, height) == (320, 240)
    assert _psnr(_decode(jpeg), bgr) > 30, "colours or contrast are off"


def test_bgr_arrays_encode() -> None:
    bgr = _scene()
    jpeg, width, height = encode_frame(bgr, quality=90)
    assert (width, height) == (320, 240)
    assert _psnr(_decode(jpeg), bgr) > 30


def test_scaled_copy_keeps_aspect_and_content() -> None:
    bgr = _scene(640, 480)
    jpeg, _, _ = encode_frame(bgr, quality=90)
    small, width, height = scale_jpeg(jpeg, 200, quality=85)
    assert (width, height) == (200, 150)
    reference = cv2.resize(bgr, (200, 150), interpolation=cv2.INTER_AREA)
    assert _psnr(_decode(small), reference) > 25


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(ImageError, match="cannot decode JPEG"):
        scale_jpeg(b"\xff\xd8 not really a jpeg", 100, quality=80)
