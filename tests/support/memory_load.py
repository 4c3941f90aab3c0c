"""The load of a memory measurement (bench/memory.py, tests/integration/test_memory_limit.py).

An MJPEG viewer, a wall polling ``GET /api/snapshot?width=``, a sampler of the edge's
``/proc/PID/status`` (VmRSS, VmHWM), a camera with cars passing (the synthetic bay encoded once
to H.264 and re-sent by the RTSP test server: no live encode), and readers of the edge's
``/metrics``.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx

from edge.camera.scene import SceneParams
from tests.support.rtsp import RtspServer
from tests.support.scene_clip import scene_clip

__all__ = [
    "MjpegViewer",
    "RssSampler",
    "WallPoller",
    "guard_actions",
    "plate_reads",
    "proc_memory_kb",
    "scene_camera",
]

WALL_WIDTHS = (320, 480, 640, 960)  # a wall's tiles at a few sizes, as the console asks
_GUARD = re.compile(
    r'^carwash_edge_guard_actions_total\{action="([^"]+)",guard="([^"]+)"\} (\S+)$', re.M
)
_READS = re.compile(r"^carwash_edge_plate_recognize_seconds_count\{[^}]*\} (\S+)$", re.M)


def proc_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon and RssFile of ``pid`` in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


class RssSampler(threading.Thread):
    """Reads ``/proc/PID/status`` every ``period_s``: the last reading and the peak RSS."""

    def __init__(self, pid: int, period_s: float = 1.0) -> None:
        super().__init__(name="memory-sampler", daemon=True)
        self.pid, self.period_s = pid, period_s
        self.stop_event = threading.Event()
        self.last: dict[str, int] = {}
        self.peak_rss_kb = 0
        self.samples = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                reading = proc_memory_kb(self.pid)
            except (OSError, ValueError):  # the process ended
                return
            if "VmRSS" not in reading:  # a zombie: the process ended
                return
            self.last = reading
            self.peak_rss_kb = max(self.peak_rss_kb, self.last["VmRSS"])
            self.samples += 1
            self.stop_event.wait(self.period_s)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(5.0)


class MjpegViewer(threading.Thread):
    """Follows ``/api/stream.mjpeg`` (reconnecting); counts bytes and connections."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(name="memory-mjpeg", daemon=True)
        self.url, self.key = url, key
        self.stop_event = threading.Event()
        self.bytes = 0
        self.connects = 0

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10.0) as client:
            while not self.stop_event.is_set():
                self.connects += 1
                try:
                    with client.stream("GET", "/api/stream.mjpeg") as response:
                        for chunk in response.iter_bytes():
                            self.bytes += len(chunk)
                            if self.stop_event.is_set():
                                return
                except httpx.HTTPError:
                    self.stop_event.wait(1.0)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(15.0)


class WallPoller(threading.Thread):
    """``GET /api/snapshot?width=W`` for each wall width every ``period_s``; counts statuses."""

    def __init__(self, url: str, key: str, period_s: float = 1.0) -> None:
        super().__init__(name="memory-wall", daemon=True)
        self.url, self.key, self.period_s = url, key, period_s
        self.stop_event = threading.Event()
        self.statuses: dict[int, int] = {}
        self.errors = 0

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10.0) as client:
            while not self.stop_event.wait(self.period_s):
                for width in WALL_WIDTHS:
                    try:
                        status = client.get("/api/snapshot", params={"width": width}).status_code
                    except httpx.HTTPError:
                        self.errors += 1
                        continue
                    self.statuses[status] = self.statuses.get(status, 0) + 1

    def stop(self) -> None:
        self.stop_event.set()
        self.join(15.0)


def _metrics(url: str) -> str:
    return httpx.get(f"{url}/metrics", timeout=10.0).text


def guard_actions(url: str) -> dict[str, float]:
    """``{"memory/drop_caches": 1.0, ...}``: the guards' actions so far (non-zero ones)."""
    return {
        f"{guard}/{action}": float(n)
        for action, guard, n in _GUARD.findall(_metrics(url))
        if float(n) > 0
    }


def plate_reads(url: str) -> int:
    """Recognitions made so far, all readers."""
    return int(sum(float(n) for n in _READS.findall(_metrics(url))))


def scene_camera(width: int, height: int, fps: int = 10, cars: int = 2) -> RtspServer:
    """An RTSP camera (not started) looping ``cars`` cars of the synthetic bay, a 2 s GOP.

    The clip starts with the bay empty (the plate trigger learns the empty bay from its first
    picture) and leaves it empty for 10 s between cars (the trigger sees a car leave after
    several empty pictures). It is encoded once (libx264; about a minute for two cars at
    1080p here) and cached (tests/support/encode_clip.py); re-sending it costs ~1 CPU-s a
    minute.
    """
    params = SceneParams(width=width, height=height, fps=fps, empty_s=10.0)
    period = params.cycle_s + params.empty_s
    clip = scene_clip(params, params.cycle_s, cars * period)  # from car 0's empty gap
    return RtspServer("file", file=clip, fps=fps)
