"""The other camera sources: file:// (looped in real time), usb:// failure handling."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera import open_source
from edge.config import CameraConfig
from edge.errors import SourceURLError
from edge.metrics import EdgeMetrics
from tests.conftest import EdgeFactory, first_frame
from tests.support.encode_clip import encode_clip
from tests.support.framecode import read_timecode

pytestmark = pytest.mark.integration


@pytest.mark.asyncio
async def test_file_source_plays_in_real_time_and_loops(
    edge_factory: EdgeFactory, tmp_path: Path
) -> None:
    clip = encode_clip(tmp_path / "clip.h264", 320, 240, 25, 25, 2.0)  # frames 0..49
    edge = edge_factory(camera={"source": f"file://{clip}", "demand_hold_s": 30.0})
    await first_frame(edge)
    edge.source.request_fresh()  # decode every frame, so every time code is seen
    codes: list[int] = []
    started = time.monotonic()
    seq = 0
    while time.monotonic() - started < 3.0:
        snap = await edge.cache.wait_newer(seq, 2.0)
        assert snap is not None
        seq = snap.seq
        image = cv2.imdecode(np.frombuffer(snap.jpeg, np.uint8), cv2.IMREAD_COLOR)
        code = read_timecode(image)
        assert code is not None
        codes.append(code)
    assert max(codes) >= 45
    wraps = sum(1 for a, b in itertools.pairwise(codes) if b < a)
    assert wraps >= 1, f"the clip did not loop: {codes}"
    # Paced like a camera: about 25 frames per second, not as fast as the disk reads.
    assert edge.source.in_rate.rate(time.monotonic()) == pytest.approx(25, rel=0.25)


@pytest.mark.asyncio
async def test_missing_usb_camera_is_retried_not_fatal(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(camera={"source": "usb:///dev/video-missing", "reconnect_max_s": 1.0})
    for _ in range(100):
        if edge.source.stats.sessions >= 2:
            break
        await asyncio.sleep(0.05)
    assert edge.source.stats.sessions >= 2
    assert "/dev/video-missing" in (edge.source.stats.last_error or "")
    assert edge.stream_status() == "offline"


def test_bad_source_urls_are_refused_up_front() -> None:
    metrics = EdgeMetrics()
    for url in ("usb://camera0", "synthetic://?fps=0", "synthetic://?colour=red"):
        with pytest.raises(SourceURLError):
            open_source(CameraConfig(source=url), lambda frame: None, metrics)


@pytest.mark.asyncio
async def test_camera_that_accepts_but_never_answers_times_out(edge_factory: EdgeFactory) -> None:
    """A hung camera (TCP open, RTSP silent) must not hang the reader: it retries."""
    accepted: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.1)
        port = listener.getsockname()[1]
        edge = edge_factory(
            camera={"source": f"rtsp://127.0.0.1:{port}/hung", "read_timeout_s": 1.0,
                    "connect_timeout_s": 1.0, "reconnect_max_s": 1.0},
        )  # fmt: skip
        started = time.monotonic()
        while edge.source.stats.sessions < 2 and time.monotonic() - started < 10:
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])
            await asyncio.sleep(0)
        for conn in accepted:
            conn.close()
    assert edge.source.stats.sessions >= 2, "the reader is stuck on a silent camera"
    assert time.monotonic() - started < 6
    assert edge.source.stats.last_error
