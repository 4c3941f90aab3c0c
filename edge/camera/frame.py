"""A decoded frame on its way from a source to the encoder."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.snapshots.jpeg import VideoFrameLike


@dataclass(frozen=True, slots=True)
class RawFrame:
    """``image`` is a PyAV ``VideoFrame`` (YUV) or a BGR ``ndarray``.

    ``captured_*`` is when the frame's data arrived from the camera (for RTSP: when its packet
    was demuxed), not when it was decoded: ages measure what the camera saw, decoding included.
    """

    image: VideoFrameLike | np.ndarray
    captured_at: float  # time.time()
    captured_mono: float  # time.monotonic()
    keyframe: bool
