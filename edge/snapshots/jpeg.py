"""JPEG encoding of decoded frames and of scaled variants. Pure CPU work: call it off the loop.

Decoded H.264 frames are YUV 4:2:0, which is what JPEG stores: they are encoded straight from
their planes with libjpeg-turbo (simplejpeg), skipping the YUV→BGR conversion a generic
``cv2.imencode`` path would need (measured 1080p: 4.3 ms against 7.5 ms). Colour-range and
size conversions use FFmpeg's swscale through the frame itself, so an RTSP edge never loads
OpenCV (about 20 MB of resident memory on a Pi).
"""

from __future__ import annotations

from typing import Final, Protocol, Self

import numpy as np
import simplejpeg

from edge.errors import EdgeError

# AVCOL_RANGE_JPEG: full-range samples, as JPEG expects.
FULL_RANGE: Final = 2


class _FormatLike(Protocol):
    name: str


class VideoFrameLike(Protocol):
    """What this module needs of a PyAV ``VideoFrame`` (so the module never imports av)."""

    width: int
    height: int
    color_range: int

    @property
    def format(self) -> _FormatLike: ...

    def to_ndarray(self, **kwargs: object) -> np.ndarray: ...

    def reformat(self, **kwargs: object) -> Self: ...


class ImageError(EdgeError):
    """A picture could not be encoded or decoded."""


def encode_yuv420(planes: np.ndarray, width: int, height: int, *, quality: int) -> bytes:
    """Encode a packed full-range I420 buffer (``height * 3 / 2`` rows of ``width``) as JPEG."""
    if width % 2 or height % 2:
        raise ImageError(f"odd frame size {width}x{height} cannot be 4:2:0")
    chroma = planes[height:].reshape(2, height // 2, width // 2)
    return bytes(simplejpeg.encode_jpeg_yuv_planes(planes[:height], chroma[0], chroma[1], quality))


def encode_bgr(image: np.ndarray, *, quality: int) -> bytes:
    """Encode a BGR ``uint8`` image (synthetic scene, USB camera) as JPEG 4:2:0."""
    return bytes(
        simplejpeg.encode_jpeg(
            np.ascontiguousarray(image), quality, colorspace="BGR", colorsubsampling="420"
        )
    )


def encode_frame(frame: VideoFrameLike | np.ndarray, *, quality: int) -> tuple[bytes, int, int]:
    """Encode a PyAV ``VideoFrame`` or a BGR ndarray; returns ``(jpeg, width, height)``.

    Limited-range video (16-235, what cameras send) is stretched to JPEG's full range first,
    so the picture keeps its contrast.
    """
    if isinstance(frame, np.ndarray):
        height, width = frame.shape[:2]
        return encode_bgr(frame, quality=quality), width, height
    width, height, fmt = frame.width, frame.height, frame.format.name
    if width % 2 or height % 2 or fmt not in ("yuv420p", "yuvj420p"):
        return encode_bgr(frame.to_ndarray(format="bgr24"), quality=quality), width, height
    if fmt != "yuvj420p" and frame.color_range != FULL_RANGE:
        frame = frame.reformat(format="yuvj420p")
    return encode_yuv420(frame.to_ndarray(), width, height, quality=quality), width, height


def scaled_height(width: int, height: int, new_width: int) -> int:
    """Height that keeps the aspect ratio, rounded to even (4:2:0 friendly), at least 2."""
    return max(2, round(height * new_width / width / 2) * 2)


def scale_jpeg(jpeg: bytes, new_width: int, *, quality: int) -> tuple[bytes, int, int]:
    """A smaller copy of a JPEG: DCT-domain downscale on decode, then an area resize."""
    import av

    try:
        # min_width lets libjpeg-turbo decode at 1/2, 1/4 or 1/8 scale directly: most of the work.
        image = simplejpeg.decode_jpeg(jpeg, colorspace="BGR", min_width=new_width)
    except ValueError as err:
        raise ImageError(f"cannot decode JPEG: {err}") from err
    height, width = image.shape[:2]
    new_width -= new_width % 2
    new_height = scaled_height(width, height, new_width)
    small = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(
        width=new_width,
        height=new_height,
        format="yuvj420p",
        interpolation="AREA",
        dst_color_range=FULL_RANGE,
    )
    return (
        encode_yuv420(small.to_ndarray(), new_width, new_height, quality=quality),
        new_width,
        new_height,
    )
