"""The RTSP test server (tests/support/rtsp_server.py) and the timecoded frames it serves."""

from __future__ import annotations

import importlib.util
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import av
import cv2
import numpy as np
import pytest

from tests.support.encode_clip import encode_clip
from tests.support.framecode import (
    code_height,
    draw_timecode,
    make_frame,
    psnr,
    read_timecode,
)
from tests.support.rtsp import SERVER_SCRIPT, RtspServer, RtspServerError

pytestmark = pytest.mark.integration

W, H, FPS, GOP = 320, 240, 25, 25
WRAP = 1 << 40


# ----------------------------------------------------------------------------- helpers


@dataclass
class Pulled:
    keyframes: list[int]  # indices (among non-empty packets) of keyframe packets
    values: list[int | None]  # timecode of each decoded frame
    ages_ms: list[int]  # wall clock minus timecode at decode time, for readable frames
    min_psnr: float  # decoded frame vs make_frame(timecode)


def pull(url: str, n_frames: int) -> Pulled:
    """Decode ``n_frames`` frames from ``url`` over RTSP/TCP, starting at the first keyframe."""
    keyframes: list[int] = []
    values: list[int | None] = []
    ages: list[int] = []
    min_psnr = float("inf")
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=(5, 5)) as container:
        stream = container.streams.video[0]
        n_packets = 0
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.is_keyframe:
                keyframes.append(n_packets)
            n_packets += 1
            if not keyframes:  # joined a shared stream mid-GOP: wait for a keyframe
                continue
            for frame in packet.decode():
                img = frame.to_ndarray(format="bgr24")
                value = read_timecode(img)
                values.append(value)
                if value is not None:
                    ages.append((int(time.time() * 1000) - value) % WRAP)
                    ref = make_frame(img.shape[1], img.shape[0], value)
                    min_psnr = min(min_psnr, psnr(img, ref))
            if len(values) >= n_frames:
                break
    return Pulled(keyframes, values, ages, min_psnr)


def _signed_age(age: int) -> int:
    return age - WRAP if age > WRAP // 2 else age


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def live_server() -> Iterator[RtspServer]:
    with RtspServer("live", width=W, height=H, fps=FPS, gop=GOP) as server:
        yield server


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "small.h264"
    return encode_clip(path, W, H, FPS, GOP, 2.0, preset="ultrafast")


@pytest.fixture(scope="session")
def server_module() -> ModuleType:
    """rtsp_server.py imported into the venv (it must not need gi or numpy at import)."""
    spec = importlib.util.spec_from_file_location("_rtsp_server_under_test", SERVER_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- framecode


@pytest.mark.parametrize("value", [0, 1, 0xA5, 123_456_789, 1_700_000_000_000 % WRAP, WRAP - 1])
@pytest.mark.parametrize(("width", "height"), [(320, 240), (640, 360), (1920, 1080)])
def test_timecode_round_trip(value: int, width: int, height: int) -> None:
    assert read_timecode(make_frame(width, height, value)) == value


def test_timecode_other_bit_counts_and_grey() -> None:
    img = np.full((120, 320, 3), 90, np.uint8)
    draw_timecode(img, 0xBEEF, bits=16)
    assert read_timecode(img, bits=16) == 0xBEEF
    assert read_timecode(img) is None  # wrong layout: not a 40-bit code
    grey = np.zeros((100, 300), np.uint8)
    draw_timecode(grey, 77)
    assert read_timecode(grey) == 77


def test_timecode_survives_jpeg_q70_and_one_third_scale() -> None:
    rng = np.random.default_rng(7)
    for value in [int(v) for v in rng.integers(0, WRAP, 40)]:
        img = make_frame(640, 360, value)
        small = cv2.resize(img, (213, 120), interpolation=cv2.INTER_AREA)
        for candidate in (img, small):
            ok, jpeg = cv2.imencode(".jpg", candidate, [cv2.IMWRITE_JPEG_QUALITY, 70])
            assert ok
            decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
            assert decoded is not None
            assert read_timecode(decoded) == value
        linear = cv2.resize(img, (213, 120), interpolation=cv2.INTER_LINEAR)
        assert read_timecode(linear) == value


def test_timecode_garbage_reads_none() -> None:
    rng = np.random.default_rng(3)
    assert read_timecode(np.zeros((360, 640, 3), np.uint8)) is None
    assert read_timecode(np.full((360, 640, 3), 255, np.uint8)) is None
    assert read_timecode(np.zeros((4, 8, 3), np.uint8)) is None
    assert read_timecode(np.zeros((0, 0, 3), np.uint8)) is None
    for _ in range(200):
        noise = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
        assert read_timecode(noise) is None
        blocks = rng.integers(0, 2, (15, 26), dtype=np.uint8) * 255
        big = cv2.resize(blocks, (640, 369), interpolation=cv2.INTER_NEAREST)
        assert read_timecode(big) is None
    # A valid code with one flipped data cell fails the CRC instead of reading wrong.
    img = make_frame(640, 360, 123_456)
    cell = 640 // 26
    img[2 : cell - 2, 5 * cell + 2 : 6 * cell - 2] ^= 255
    assert read_timecode(img) is None
    # Mirrored code: markers are in the wrong place.
    assert read_timecode(make_frame(640, 360, 99)[:, ::-1]) is None


def test_draw_timecode_rejects_bad_input() -> None:
    img = np.zeros((100, 320, 3), np.uint8)
    with pytest.raises(ValueError, match="does not fit"):
        draw_timecode(img, WRAP)
    with pytest.raises(ValueError, match="does not fit"):
        draw_timecode(img, -1)
    with pytest.raises(ValueError, match="too small"):
        draw_timecode(np.zeros((10, 320, 3), np.uint8), 1)
    assert code_height(320) == 24


def test_make_frame_deterministic_moving_and_cheap() -> None:
    a = make_frame(640, 360, 1000)
    assert np.array_equal(a, make_frame(640, 360, 1000))
    assert a.dtype == np.uint8
    assert a.shape == (360, 640, 3)
    b = make_frame(640, 360, 1001)
    body = slice(code_height(640), None)
    assert not np.array_equal(a[body], b[body])  # moving content, not just the timecode
    assert psnr(a, a) == float("inf")
    assert 5.0 < psnr(a, b) < 40.0
    started = time.perf_counter()
    for value in range(100):
        make_frame(640, 360, value)
    assert (time.perf_counter() - started) / 100 < 0.003


def test_psnr_known_value() -> None:
    a = np.zeros((10, 10, 3), np.uint8)
    b = np.full((10, 10, 3), 255, np.uint8)
    assert psnr(a, b) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, b[:5])


@pytest.mark.parametrize(("width", "height"), [(320, 240), (640, 360), (214, 120), (98, 64)])
def test_server_renderer_matches_make_frame(
    server_module: ModuleType, width: int, height: int
) -> None:
    renderer = server_module.FrameRenderer(width, height)
    for value in [0, 1, 2, 9, 1000, 1_700_000_000_123 % WRAP, WRAP - 1]:
        raw = np.frombuffer(bytes(renderer.render(value)), np.uint8)
        frame = raw.reshape(height, renderer.stride)[:, : width * 3].reshape(height, width, 3)
        assert np.array_equal(frame, make_frame(width, height, value)), value


# ----------------------------------------------------------------------------- live server


def test_live_keyframes_timecode_age_and_content(live_server: RtspServer) -> None:
    got = pull(live_server.url, 60)
    assert np.all(np.diff(got.keyframes) == GOP), got.keyframes
    assert len(got.keyframes) >= 2
    assert all(v is not None for v in got.values), got.values
    ages = [_signed_age(a) for a in got.ages_ms]
    # The first frames come out of PyAV's probe buffer; once caught up, pictures are fresh.
    assert all(-50 <= a < 3000 for a in ages), ages
    assert all(a < 1000 for a in ages[-15:]), ages
    assert got.min_psnr > 25.0  # the decoded pictures really are make_frame(timecode)


def test_live_two_clients_at_once_then_reconnect(live_server: RtspServer) -> None:
    results: dict[int, Pulled | BaseException] = {}

    def client(i: int) -> None:
        try:
            results[i] = pull(live_server.url, 30)
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    for i in range(2):
        got = results[i]
        assert isinstance(got, Pulled), got
        assert sum(v is not None for v in got.values) >= 25
        assert all(_signed_age(a) < 1000 for a in got.ages_ms[-10:])
    # Everyone left; a new client (twice, back to back) still gets fresh pictures.
    for _ in range(2):
        again = pull(live_server.url, 5)
        assert all(v is not None for v in again.values)


# ----------------------------------------------------------------------------- file mode


def test_file_mode_loops_with_increasing_timecodes(small_clip: Path) -> None:
    n_clip = FPS * 2
    with RtspServer("file", file=small_clip, fps=FPS) as server:
        got = pull(server.url, 70)
    values = [v for v in got.values if v is not None]
    assert len(values) == len(got.values), got.values
    steps = [(b - a) % n_clip for a, b in itertools.pairwise(values)]
    assert steps == [1] * len(steps), values
    assert (n_clip - 1, 0) in set(itertools.pairwise(values)), "never looped"
    assert np.all(np.diff(got.keyframes) == GOP), got.keyframes
    assert got.min_psnr > 25.0


def test_restart_on_same_port(small_clip: Path) -> None:
    with RtspServer("file", file=small_clip) as server:
        url, port = server.url, server.port
        assert pull(url, 3).values[0] == 0
        assert server.stop() == 0
        with pytest.raises(av.error.FFmpegError):
            pull(url, 1)
        server.restart()
        assert (server.url, server.port) == (url, port)
        assert all(v is not None for v in pull(url, 3).values)


def test_server_failure_is_reported(tmp_path: Path) -> None:
    with pytest.raises(RtspServerError, match="cannot read"):
        RtspServer("file", file=tmp_path / "missing.h264").start()
