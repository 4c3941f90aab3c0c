"""bench/memory: the edge's peak RSS per configuration, under a viewer, a wall and passing cars.

For each configuration, the real ``carwash-edge run`` (a subprocess, as systemd runs it) for
``--minutes`` (default 10) with cars passing through the bay; throughout, one client follows
``GET /api/stream.mjpeg`` and a wall polls ``GET /api/snapshot?width=`` at four widths every
second. ``/proc/PID/status`` is read every second: the peak RSS is VmHWM at the end (the kernel's
own high-water mark, which catches what a sampler misses), next to the last VmRSS, its anonymous
and file-backed parts, and the guards' actions from ``/metrics``.

Configurations (``--configs``, default all four):

- ``rtsp1080-off``: a 1920x1080 10 fps RTSP camera (the synthetic bay encoded once to H.264, two
  cars looping, re-sent by the GStreamer test server), ``plates.policy = "none"``;
- ``rtsp1080-local``: the same camera, the default config (the offline plate reader);
- ``synthetic720-off`` / ``synthetic720-local``: ``synthetic://?width=1280&height=720&fps=10``,
  the camera of ``scripts/demo`` (rendered in the edge itself, so it costs more than a camera).

Targets (issue H1): rtsp1080-off <= 120 MB, rtsp1080-local <= 250 MB; every configuration
below the default guard limit (``guards.rss_limit_mb``) with no guard action. The reference
("before", ratio = now / then) is the edge of commit f933b14 under this same load, 5 minutes
per configuration (bench/README.md). Exit 0 when met.

    python bench/memory.py [--minutes 10] [--configs rtsp1080-local synthetic720-local]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.config import GuardsConfig  # noqa: E402
from edge.keys import KeyStore  # noqa: E402
from tests.support.edge_process import PLATES_OFF, EdgeProcess  # noqa: E402
from tests.support.memory_load import (  # noqa: E402
    MjpegViewer,
    RssSampler,
    WallPoller,
    guard_actions,
    plate_reads,
    proc_memory_kb,
    scene_camera,
)
from tests.support.rtsp import SERVER_PYTHON  # noqa: E402

SYNTHETIC_720 = "synthetic://?width=1280&height=720&fps=10"


@dataclass(frozen=True)
class Setup:
    name: str
    camera: str  # "rtsp1080" or a synthetic:// URL
    plates: bool
    before_mb: float  # peak of commit f933b14 under the same load: the reference
    target_mb: float | None  # the target, where it set one


SETUPS = {
    s.name: s
    for s in (
        Setup("rtsp1080-off", "rtsp1080", False, 184.3, 120.0),
        Setup("rtsp1080-local", "rtsp1080", True, 354.2, 250.0),
        Setup("synthetic720-off", SYNTHETIC_720, False, 260.0, None),
        # Never measured to the end: its guard (400 MiB then) made it exit after ~30 s.
        Setup("synthetic720-local", SYNTHETIC_720, True, 412.0, None),
    )
}


def measure(setup: Setup, minutes: float, work: Path, source: str) -> dict[str, Any]:
    """One configuration: the edge under load for ``minutes``; its memory figures."""
    key, _ = KeyStore.in_dir(work).create("viewer", "memory")
    config = work / "edge.toml"
    config.write_text(
        f'[camera]\nsource = "{source}"\n[discovery]\nenabled = false\n'
        + ("" if setup.plates else PLATES_OFF)
    )
    edge = EdgeProcess(work, "--config", str(config), log_level="info", startup_s=60.0).start()
    sampler = RssSampler(edge.pid)
    viewer, wall = MjpegViewer(edge.url, key), WallPoller(edge.url, key)
    try:
        edge.wait_online(60.0)
        for thread in (sampler, viewer, wall):
            thread.start()
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline and sampler.is_alive():
            sampler.join(min(5.0, max(0.0, deadline - time.monotonic())))
        if not sampler.is_alive():
            raise RuntimeError(f"{setup.name}: the edge ended early:\n{edge.log[-4000:]}")
        final = proc_memory_kb(edge.pid)
        actions = guard_actions(edge.url)
        reads = plate_reads(edge.url)
    finally:
        for thread in (wall, viewer, sampler):
            thread.stop()
        exit_code = edge.stop()
    mb = 1 / 1024
    return {
        "config": setup.name,
        "minutes": minutes,
        "peak_rss_mb": round(final["VmHWM"] * mb, 1),
        "sampled_peak_mb": round(sampler.peak_rss_kb * mb, 1),
        "end_rss_mb": round(final["VmRSS"] * mb, 1),
        "end_anon_mb": round(final["RssAnon"] * mb, 1),
        "end_file_mb": round(final["RssFile"] * mb, 1),
        "guard_actions": actions,
        "plate_reads": reads,
        "mjpeg_mb": round(viewer.bytes / 1e6, 1),
        "wall_requests": wall.statuses,
        "exit_code": exit_code,
        "memory_warnings": [line.strip() for line in edge.lines if "memory" in line.lower()][:5],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="per configuration")
    parser.add_argument(
        "--configs", nargs="+", choices=sorted(SETUPS), default=list(SETUPS), metavar="CONFIG"
    )
    args = parser.parse_args()
    limit_mb = GuardsConfig().rss_limit_mb
    needs_rtsp = any(SETUPS[name].camera == "rtsp1080" for name in args.configs)
    if needs_rtsp and not Path(SERVER_PYTHON).exists():
        print(f"bench/memory needs {SERVER_PYTHON} with GStreamer's RTSP server", file=sys.stderr)
        return 2
    results: list[dict[str, Any]] = []
    for name in args.configs:
        setup = SETUPS[name]
        with (
            contextlib.ExitStack() as stack,
            tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp,
        ):
            source = setup.camera
            if source == "rtsp1080":
                # A camera of its own: the test server shares its media, and an edge joining
                # mid-clip would learn a bay with a car in it as the empty one.
                source = stack.enter_context(scene_camera(1920, 1080)).url
            result = measure(setup, args.minutes, Path(tmp), source)
        print(f"  {name}: peak {result['peak_rss_mb']} MB", file=sys.stderr)
        results.append(result)

    print(f"bench/memory: {args.minutes:g} min per configuration, MJPEG viewer + wall polling "
          f"?width= {'/'.join(map(str, (320, 480, 640, 960)))} every 1 s, {os.cpu_count()} "
          f"cores; default guard limit {limit_mb} MiB")  # fmt: skip
    head = ("config", "peak MB", "before", "ratio", "target", "end RSS", "anon", "file",
            "reads", "guard actions")  # fmt: skip
    print(f"{head[0]:20}{head[1]:>9}{head[2]:>8}{head[3]:>7}{head[4]:>8}{head[5]:>9}"
          f"{head[6]:>7}{head[7]:>7}{head[8]:>7}  {head[9]}")  # fmt: skip
    met = True
    for r in results:
        setup = SETUPS[r["config"]]
        ok = (
            not r["guard_actions"]
            and r["exit_code"] == 0
            and r["peak_rss_mb"] < limit_mb * 1.048576
            and (setup.target_mb is None or r["peak_rss_mb"] <= setup.target_mb)
        )
        r["met"] = ok
        met = met and ok
        target = "-" if setup.target_mb is None else f"{setup.target_mb:g}"
        print(f"{r['config']:20}{r['peak_rss_mb']:>9.1f}{setup.before_mb:>8.0f}"
              f"{r['peak_rss_mb'] / setup.before_mb:>7.2f}{target:>8}{r['end_rss_mb']:>9.1f}"
              f"{r['end_anon_mb']:>7.1f}{r['end_file_mb']:>7.1f}{r['plate_reads']:>7}  "
              f"{r['guard_actions'] or 'none'}{'' if ok else '   << NOT met'}")  # fmt: skip
    print("targets met" if met else "targets NOT met")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory.json").write_text(json.dumps(
        {"minutes": args.minutes, "guard_limit_mib": limit_mb, "results": results, "met": met},
        indent=2,
    ))  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
