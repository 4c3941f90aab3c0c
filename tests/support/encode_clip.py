"""Encode synthetic clips (H.264 Annex-B elementary streams) for the RTSP server's file mode.

Frame ``n`` of a clip is ``make_frame(width, height, value_fn(n))`` (by default the timecode is
the frame index), encoded with libx264 through PyAV: exactly ``gop`` frames between keyframes
(IDR, with SPS/PPS repeated in front of each), no B-frames, no lookahead (zerolatency-like),
an access unit delimiter per picture and one slice per picture unless ``slices`` says more.

``cached_clip`` keeps encoded clips in a cache folder (``$CARWASH_CLIP_CACHE``, else
``$XDG_CACHE_HOME/carwash-fleet/clips``, else ``~/.cache/carwash-fleet/clips``) since the
1080p benchmark clip takes a while to make.

Command line (venv python)::

    python -m tests.support.encode_clip OUT.h264 --width 1920 --height 1080 --seconds 20
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tests.support.framecode import FRAME_LAYOUT_VERSION, make_frame

__all__ = ["cache_dir", "cached_clip", "encode_clip"]


def _identity(n: int) -> int:
    return n


def encode_clip(
    path: str | os.PathLike[str],
    width: int,
    height: int,
    fps: int,
    gop: int,
    seconds: float,
    value_fn: Callable[[int], int] | None = None,
    *,
    preset: str = "veryfast",
    crf: int = 23,
    slices: int = 1,
    grain: float = 0.0,
    bitrate_kbps: int | None = None,
    render: Callable[[int], np.ndarray] | None = None,
) -> Path:
    """Write ``round(fps * seconds)`` frames as an Annex-B H.264 file at ``path``; return it.

    Frame ``n`` is the time-coded frame of ``value_fn(n)``, or ``render(n)`` (a BGR picture of
    ``width`` x ``height``) when given, e.g. the synthetic bay (tests/support/scene_clip.py).

    ``grain`` (standard deviation in grey levels) adds sensor-like noise that changes every
    frame, as a real camera's does: it makes P-frames as costly to decode as a camera's rather
    than nearly free, so decoding benchmarks on the clip mean something. ``bitrate_kbps``
    encodes at a constant bit rate (VBV-capped, as IP cameras do) instead of the constant
    quality ``crf``; cameras' keyframes are then a realistic share of the stream.

    The file is written to a temporary name and renamed, so a reader never sees half a clip.
    """
    fn = value_fn or _identity
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    n_frames = round(fps * seconds)
    x264_params = ":".join(
        (
            f"keyint={gop}",
            f"min-keyint={gop}",
            "scenecut=0",
            "bframes=0",
            "rc-lookahead=0",
            "sync-lookahead=0",
            "repeat-headers=1",
            "aud=1",
            "sliced-threads=0",
            f"slices={slices}",
            *(
                (f"bitrate={bitrate_kbps}", f"vbv-maxrate={bitrate_kbps}",
                 f"vbv-bufsize={2 * bitrate_kbps}", "nal-hrd=cbr")
                if bitrate_kbps else (f"crf={crf}",)
            ),
        )
    )  # fmt: skip
    try:
        with av.open(str(tmp), mode="w", format="h264") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps, 1))
            stream.width = width
            stream.height = height
            stream.pix_fmt = "yuv420p"
            stream.codec_context.gop_size = gop
            stream.codec_context.max_b_frames = 0
            stream.codec_context.options = {"preset": preset, "x264-params": x264_params}
            noise = _noise_pool(width, height, grain)
            for n in range(n_frames):
                image = render(n) if render is not None else make_frame(width, height, fn(n))
                if noise:
                    image = cv2.add(image, noise[n % len(noise)], dtype=cv2.CV_8U)
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                frame.pts = n
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _noise_pool(width: int, height: int, grain: float, size: int = 7) -> list[np.ndarray]:
    """A few zero-mean noise frames (int16) cycled through; a prime count hides the period."""
    if grain <= 0:
        return []
    rng = np.random.default_rng(7)
    return [
        rng.normal(0.0, grain, (height, width, 3)).round().astype(np.int16) for _ in range(size)
    ]


def cache_dir() -> Path:
    """Folder where :func:`cached_clip` keeps its clips."""
    env = os.environ.get("CARWASH_CLIP_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "carwash-fleet" / "clips"


def cached_clip(
    width: int = 1920,
    height: int = 1080,
    fps: int = 25,
    gop: int = 50,
    seconds: float = 20.0,
    *,
    preset: str = "veryfast",
    crf: int = 23,
    grain: float = 0.0,
    bitrate_kbps: int | None = None,
) -> Path:
    """An encoded clip (timecode = frame index) from the cache, encoding it on first use."""
    name = (
        f"clip-v{FRAME_LAYOUT_VERSION}-{width}x{height}-{fps}fps-gop{gop}-{seconds:g}s"
        f"-{preset}-{f'cbr{bitrate_kbps}' if bitrate_kbps else f'crf{crf}'}-grain{grain:g}.h264"
    )
    path = cache_dir() / name
    if not path.exists():
        encode_clip(path, width, height, fps, gop, seconds, preset=preset, crf=crf, grain=grain,
                    bitrate_kbps=bitrate_kbps)  # fmt: skip
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Encode a synthetic timecoded H.264 clip.")
    p.add_argument("out", type=Path)
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--gop", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--preset", default="veryfast")
    p.add_argument("--crf", type=int, default=23)
    a = p.parse_args(argv)
    encode_clip(a.out, a.width, a.height, a.fps, a.gop, a.seconds, preset=a.preset, crf=a.crf)


if __name__ == "__main__":
    main()
