"""The edge holds under its systemd unit's memory limit: the kernel's, not a simulation.

The real ``carwash-edge run`` with its default config (the offline plate reader) on a 1080p RTSP
camera with cars passing, an MJPEG viewer and a wall polling ``?width=``, for about three
minutes inside a memory cgroup limited to the unit's ``MemoryMax=`` (tests/support/memcg.py):
never killed by the kernel, no action from its own memory guard, the cars' plates read.
bench/memory measures the same for ten minutes per configuration.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge.config import GuardsConfig
from edge.keys import KeyStore
from tests.support.edge_process import EdgeProcess
from tests.support.memcg import MemoryLimit, MemoryLimitUnavailable, parse_memory_max
from tests.support.memory_load import (
    MjpegViewer,
    RssSampler,
    WallPoller,
    guard_actions,
    plate_reads,
    proc_memory_kb,
    scene_camera,
)
from tests.support.rtsp import SERVER_PYTHON

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UNIT = Path(__file__).resolve().parents[2] / "packaging" / "systemd" / "carwash-edge.service"
LOAD_S = 150.0  # with start-up and the first car: ~3 minutes in all


def test_unit_memory_max_leaves_room_above_the_guard() -> None:
    """The guard acts well before the kernel would: the two limits are set together."""
    memory_max = parse_memory_max(UNIT.read_text(encoding="utf-8"))
    guard = GuardsConfig().rss_limit_mb * 1024 * 1024
    assert guard <= 0.85 * memory_max, (guard >> 20, memory_max >> 20)


def test_edge_with_the_local_reader_holds_under_the_units_memory_max(tmp_path: Path) -> None:
    if not Path(SERVER_PYTHON).exists():
        pytest.fail(f"needs {SERVER_PYTHON} with GStreamer's RTSP server (scripts/test installs)")
    try:
        limit = MemoryLimit.create(parse_memory_max(UNIT.read_text(encoding="utf-8")))
    except MemoryLimitUnavailable as err:  # CI runs as root on a machine where one works
        pytest.fail(f"no way to set a kernel memory limit here: {err}")
    key, _ = KeyStore.in_dir(tmp_path).create("viewer", "memory")
    guard_mb = GuardsConfig().rss_limit_mb
    try:
        with scene_camera(1920, 1080) as camera:
            config = tmp_path / "edge.toml"
            config.write_text(
                f'[camera]\nsource = "{camera.url}"\n[discovery]\nenabled = false\n',
                encoding="utf-8",
            )
            edge = EdgeProcess(tmp_path, "--config", str(config), log_level="info",
                               prefix=limit.prefix(), startup_s=60.0)  # fmt: skip
            with edge:
                edge.wait_online(60.0)
                sampler = RssSampler(edge.pid)
                viewer, wall = MjpegViewer(edge.url, key), WallPoller(edge.url, key)
                for thread in (sampler, viewer, wall):
                    thread.start()
                try:
                    deadline = time.monotonic() + LOAD_S
                    while time.monotonic() < deadline and sampler.is_alive():
                        sampler.join(min(5.0, max(0.0, deadline - time.monotonic())))
                    assert sampler.is_alive(), "the edge died:\n" + edge.log[-3000:]
                    final = proc_memory_kb(edge.pid)
                    actions = guard_actions(edge.url)
                    reads = plate_reads(edge.url)
                finally:
                    for thread in (wall, viewer, sampler):
                        thread.stop()
                exit_code = edge.stop()
        oom_kills, peak = limit.oom_kills(), limit.peak_bytes()
    finally:
        limit.remove()
    peak_mb = final["VmHWM"] / 1024
    cgroup_peak = None if peak is None else peak >> 20
    print(f"\nunder {limit.kind} limit {limit.limit_bytes >> 20} MiB: edge peak RSS {peak_mb:.1f}"
          f" MiB (guard {guard_mb} MiB), cgroup peak {cgroup_peak} MiB, {reads} recognitions,"
          f" MJPEG {viewer.bytes >> 20} MiB, wall {wall.statuses}")  # fmt: skip
    assert exit_code == 0, edge.log[-3000:]  # not SIGKILLed by the kernel: a clean SIGTERM exit
    assert oom_kills in (0, None)
    assert not any(a.startswith("memory/") for a in actions), actions
    assert "memory: RSS" not in edge.log
    assert peak_mb < guard_mb
    assert reads > 0  # cars passed and the reader read them
    assert viewer.bytes > 0
    assert wall.statuses.get(200, 0) > 0
