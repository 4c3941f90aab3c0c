"""The edge against a real RTSP server (GStreamer), over real HTTP (``carwash-edge run``).

The server's frames carry the wall-clock time they were made as a visual time code, so a test
can tell exactly which frame a picture is and how old it really is, independently of what the
edge claims in its headers.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest

from edge.keys import KeyStore
from tests.support.edge_process import PLATES_OFF, EdgeProcess
from tests.support.framecode import psnr, read_timecode
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.integration

W, H, FPS, GOP = 640, 360, 25, 50  # a 2 s keyframe interval
# Against a full decode of the same frame only JPEG loss remains; a frame decoded with missing
# references (grey blocks, smeared motion) falls far below this.
MIN_PSNR_DB = 30.0


class FullDecoder:
    """Decodes every frame of the camera in a thread of the test: the reference pictures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.frames: dict[int, np.ndarray] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reference-decoder")

    def _run(self) -> None:
        with av.open(self.url, options={"rtsp_transport": "tcp"}, timeout=(5, 5)) as container:
            for frame in container.decode(video=0):
                image = frame.to_ndarray(format="bgr24")
                code = read_timecode(image)
                if code is not None:
                    self.frames[code] = image
                    if len(self.frames) > 500:
                        del self.frames[next(iter(self.frames))]
                if self._stop.is_set():
                    return

    def assert_same_picture(self, image: np.ndarray, code: int, within_s: float = 3.0) -> None:
        """``image`` is frame ``code`` as a full decode sees it, and no neighbour of it."""
        deadline = time.monotonic() + within_s
        while code not in self.frames:
            assert time.monotonic() < deadline, f"frame {code} never seen by the full decode"
            time.sleep(0.02)
        same = psnr(image, self.frames[code])
        assert same >= MIN_PSNR_DB, f"{same:.1f} dB against the full decode of the same frame"
        for other, picture in list(self.frames.items()):
            if other != code and abs(other - code) <= 200:
                assert psnr(image, picture) < same, "closer to another frame than to its own"

    def __enter__(self) -> FullDecoder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture(scope="module")
def camera() -> Iterator[RtspServer]:
    with RtspServer("live", width=W, height=H, fps=FPS, gop=GOP) as server:
        yield server


def _viewer_key(data_dir: Path) -> str:
    key, _ = KeyStore.in_dir(data_dir).create("viewer", "test")
    return key


def _config(data_dir: Path, source: str, **camera: object) -> Path:
    lines = ["[camera]", f'source = "{source}"']
    lines += [f"{k} = {v!r}" for k, v in camera.items()]
    lines += ["[http]", "rate_limit_per_s = 1000.0", "rate_limit_burst = 1000"]
    path = data_dir / "edge.toml"
    path.write_text("\n".join(lines) + "\n" + PLATES_OFF)
    return path


def _picture(response: httpx.Response) -> tuple[np.ndarray, int, float]:
    """``(image, time code ms, true age ms at reception)``."""
    received_ms = time.time() * 1000
    assert response.status_code == 200, response.text
    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    code = read_timecode(image)
    assert code is not None, "no readable time code: the picture is corrupt"
    return image, code, (received_ms - code) % 2**40  # the code is wall-clock ms mod 2**40


def _keyframe_flag(client: httpx.Client, seq: int) -> bool:
    for meta in client.get("/api/snapshots").json()["snapshots"]:
        if meta["seq"] == seq:
            return bool(meta["keyframe"])
    raise AssertionError(f"snapshot {seq} not in the history")


def test_idle_edge_serves_the_newest_keyframe_cheaply(camera: RtspServer, tmp_path: Path) -> None:
    key = _viewer_key(tmp_path)
    config = _config(tmp_path, camera.url)
    with (
        EdgeProcess(tmp_path, "--config", str(config)) as edge,
        edge.client(key) as client,
        FullDecoder(camera.url) as full,
    ):
        edge.wait_online()
        time.sleep(2.5)  # let the keyframe interval be measured
        for _ in range(6):
            r = client.get("/api/snapshot")
            image, code, age = _picture(r)
            # Keyframes only: the newest is at most one GOP (2 s) old, plus the pipeline.
            assert age <= 2000 + 400, f"served a picture {age:.0f} ms old"
            full.assert_same_picture(image, code)
            assert _keyframe_flag(client, int(r.headers["x-frame-seq"]))
            # What the edge says of the picture matches what it is.
            captured = datetime.fromisoformat(r.headers["x-frame-captured-at"]).timestamp() * 1000
            assert 0 <= (captured - code) % 2**40 <= 500
            assert abs(int(r.headers["x-frame-age-ms"]) - age) <= 300
            assert r.headers["x-stream-status"] == "online"
            time.sleep(random.uniform(0.2, 0.6))
        first = client.get("/api/snapshot/info").json()["source"]
        time.sleep(2.0)
        source = client.get("/api/snapshot/info").json()["source"]
        assert source["full_decode"] is False
        assert source["keyframe_interval_s"] == pytest.approx(GOP / FPS, abs=0.3)
        received = source["frames_received"] - first["frames_received"]
        decoded = source["frames_decoded"] - first["frames_decoded"]
        assert received == pytest.approx(2.0 * FPS, rel=0.2)
        # Decoding stayed on keyframes: one decode per GOP, not 25 per second.
        assert decoded <= received / GOP + 1


def test_max_age_gives_fresh_uncorrupted_pictures_mid_gop(
    camera: RtspServer, tmp_path: Path
) -> None:
    key = _viewer_key(tmp_path)
    # A short demand hold, so every request below starts again from keyframes-only decoding and
    # has to catch up from the kept packets of the current GOP.
    config = _config(tmp_path, camera.url, demand_hold_s=0.5)
    with (
        EdgeProcess(tmp_path, "--config", str(config)) as edge,
        edge.client(key) as client,
        FullDecoder(camera.url) as full,
    ):
        edge.wait_online()
        mid_gop = 0
        for _ in range(6):
            time.sleep(random.uniform(1.0, 2.0))
            r = client.get("/api/snapshot", params={"max_age_ms": 300})
            image, code, age = _picture(r)
            assert int(r.headers["x-frame-age-ms"]) <= 300
            assert age <= 300 + 100, f"asked for <= 300 ms, got a picture {age:.0f} ms old"
            # Decoded from the kept GOP, so the same picture as a full decode (JPEG loss aside).
            full.assert_same_picture(image, code)
            mid_gop += not _keyframe_flag(client, int(r.headers["x-frame-seq"]))
        assert mid_gop >= 3, "fresh pictures should mostly come from between keyframes"


def test_etag_long_poll_and_history(camera: RtspServer, tmp_path: Path) -> None:
    key = _viewer_key(tmp_path)
    with (
        EdgeProcess(tmp_path, "--config", str(_config(tmp_path, camera.url))) as edge,
        edge.client(key) as client,
    ):
        edge.wait_online()
        r = client.get("/api/snapshot")
        seq = int(r.headers["x-frame-seq"])
        same = client.get("/api/snapshot", headers={"If-None-Match": r.headers["etag"]})
        if int(same.headers["x-frame-seq"]) == seq:
            assert same.status_code == 304
        nxt = client.get("/api/snapshot", params={"wait_newer_than": seq})
        assert int(nxt.headers["x-frame-seq"]) > seq
        _, code_a, _ = _picture(r)
        _, code_b, _ = _picture(nxt)
        assert code_b > code_a
        kept = client.get(f"/api/snapshots/{seq}")
        assert kept.content == r.content
        listing = client.get("/api/snapshots").json()["snapshots"]
        assert [m["seq"] for m in listing][:2] == [int(nxt.headers["x-frame-seq"]), seq]


def test_mjpeg_stream_parses_as_jpeg_parts(camera: RtspServer, tmp_path: Path) -> None:
    key = _viewer_key(tmp_path)
    with (
        EdgeProcess(tmp_path, "--config", str(_config(tmp_path, camera.url))) as edge,
        edge.client(key) as client,
    ):
        edge.wait_online()
        parts: list[bytes] = []
        with client.stream("GET", "/api/stream.mjpeg", params={"fps": 5, "width": 320}) as r:
            assert r.status_code == 200
            content_type = r.headers["content-type"]
            assert content_type.startswith("multipart/x-mixed-replace")
            boundary = content_type.split("boundary=")[1].encode()
            buffer = b""
            for chunk in r.iter_bytes():
                buffer += chunk
                pieces = buffer.split(b"--" + boundary + b"\r\n")
                parts.extend(p for p in pieces[1:-1] if p)
                buffer = b"--" + boundary + b"\r\n" + pieces[-1]
                if len(parts) >= 4:
                    break
    codes = []
    for part in parts:
        head, _, body = part.partition(b"\r\n\r\n")
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n"))
        assert fields[b"Content-Type"] == b"image/jpeg"
        jpeg = body[: int(fields[b"Content-Length"])]
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (180, 320, 3)
        code = read_timecode(image)
        assert code is not None
        codes.append(code)
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    # A viewer of the stream gets motion, not one keyframe every 2 s.
    assert (codes[-1] - codes[0]) % 2**40 < 3 * 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_camera_down_at_start_comes_online_and_credentials_stay_secret(tmp_path: Path) -> None:
    key = _viewer_key(tmp_path)
    port = _free_port()
    source = f"rtsp://installer:s3cr3t-pw@127.0.0.1:{port}/stream"
    config = _config(tmp_path, source, reconnect_max_s=2.0, connect_timeout_s=1.0)
    with EdgeProcess(tmp_path, "--config", str(config)) as edge, edge.client(key) as client:
        r = client.get("/api/snapshot")
        assert r.status_code == 503
        assert r.json()["error"] == "no_frame"
        time.sleep(1.5)  # a few failed attempts
        with RtspServer("live", width=320, height=180, fps=FPS, gop=GOP, port=port):
            edge.wait_online(within_s=10)
            _picture(client.get("/api/snapshot"))  # a real, readable picture
            info = client.get("/api/snapshot/info").json()["source"]
            assert info["url"] == f"rtsp://installer:***@127.0.0.1:{port}/stream"
            assert info["sessions"] >= 2
            metrics = client.get("/metrics").text
            assert "carwash_edge_source_reconnects_total" in metrics
    assert "s3cr3t-pw" not in edge.log
    assert "installer:***@" in edge.log
    # Failures repeat identically: one warning, then debug lines.
    assert edge.log.count("WARNING") <= 2, edge.log
