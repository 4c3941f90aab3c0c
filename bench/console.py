"""bench/console: the console's start-up time to the first picture, and its memory with a
16-tile wall against 4 edges.

Four real ``carwash-edge run`` processes (synthetic 640x360 cameras at 5 fps) on loopback; then
the real ``carwash-console`` (``python -m console``), offscreen (or under Xvfb with ``--xvfb``),
its settings and credentials in a temporary folder:

1. the 16-tile wall: ``--layout 4x4``, every edge on four tiles (a saved group), 2 fps per tile;
2. the reference: the same console with an empty wall (no edges), for the memory ratio.

Figures: start-up (process launch → the console's log line "first picture on screen", and →
"all 16 tiles show live pictures"), resident memory (``VmRSS`` after ``--seconds`` of running,
peak ``VmHWM``), CPU seconds per minute over that window (``/proc/PID/stat``). Written to
``bench/results/console.json``. Exits 0 when every tile went live (and start-up <= 5 s to the
first picture), 1 if not.

    python bench/console.py [--seconds 20] [--xvfb]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.keys import KeyStore  # noqa: E402
from tests.support.edge_process import EdgeProcess  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
TILES = 16
EDGES = 4


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Console:
    """The console subprocess; its stderr is watched for the log lines that matter."""

    def __init__(self, home: Path, args: list[str], env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "console", "--no-discovery", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env={**env, "XDG_CONFIG_HOME": str(home / "config"),
                 "XDG_STATE_HOME": str(home / "state"), "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.seen: dict[str, float] = {}
        self.lines: list[str] = []
        self.first_ms_logged: float | None = None
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            now = time.monotonic() - self.started
            if m := re.search(r"first picture on screen after (\d+) ms", line):
                self.seen.setdefault("first", now)
                self.first_ms_logged = float(m.group(1))
            if re.search(r"all \d+ tiles show live pictures", line):
                self.seen.setdefault("all", now)

    def wait(self, what: str, within_s: float) -> float | None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            if what in self.seen:
                return self.seen[what]
            time.sleep(0.02)
        return self.seen.get(what)

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def measure(console: Console, seconds: float) -> dict[str, Any]:
    pid = console.proc.pid
    time.sleep(2.0)  # settle after the wall filled
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    status = proc_status(pid)
    if console.proc.poll() is not None or "VmRSS" not in status:
        crash = ROOT / "bench" / "results" / "console-crash.log"
        crash.parent.mkdir(parents=True, exist_ok=True)
        crash.write_text("".join(console.lines))
        raise RuntimeError(f"the console exited early; its log: {crash}")
    return {
        "rss_mb": status["VmRSS"] / 1024,
        "peak_rss_mb": status["VmHWM"] / 1024,
        "cpu_s_per_min": (cpu1 - cpu0) / (t1 - t0) * 60,
    }


def write_settings(home: Path, device_ids: list[str]) -> None:
    """The saved wall: 4x4, every edge on four tiles (what a user's saved group looks like)."""
    from PySide6.QtCore import QSettings

    path = home / "config" / "CarwashFleet" / "carwash-console.conf"
    settings = QSettings(str(path), QSettings.Format.IniFormat)
    settings.setValue("wall/layout", "4x4")
    settings.setValue("wall/group", "Default")
    tiles = [device_ids[i % len(device_ids)] for i in range(TILES)]
    settings.setValue("wall/groups", json.dumps({"Default": tiles}))
    settings.sync()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--xvfb", action="store_true", help="a real X window under Xvfb")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    edges: list[EdgeProcess] = []
    results: dict[str, Any] = {"tiles": TILES, "edges": EDGES}
    display = None
    try:
        keys: list[str] = []
        for n in range(1, EDGES + 1):
            data = work / f"edge-{n}"
            data.mkdir()
            keys.append(KeyStore.in_dir(data).create("viewer", "bench")[0])
            source = "synthetic://?width=640&height=360&fps=5"
            # The edges run on their own Pis in production: no plate reading on this machine.
            config = data / "edge.toml"
            config.write_text('[plates]\npolicy = "none"\n', encoding="utf-8")
            edge = EdgeProcess(data, "--config", str(config), "--source", source,
                               "--name", f"Bay {n}", log_level="info")  # fmt: skip
            edges.append(edge.start())
        for edge in edges:
            edge.wait_online()
        ids = [(e.data_dir / "device_id").read_text().strip() for e in edges]
        env = dict(os.environ)
        if args.xvfb:
            from tests.support.xvfb import Xvfb

            display = Xvfb().start()
            env = display.env()
        else:
            env["QT_QPA_PLATFORM"] = "offscreen"
        env["CARWASH_CONSOLE_KEYRING"] = "0"  # the bench's keys never go to the user's keyring

        from console.services.credentials import CredentialStore

        wall_home, empty_home = work / "wall", work / "empty"
        store = CredentialStore(wall_home / "config" / "carwash-console" / "credentials.json")
        for edge, key in zip(edges, keys, strict=True):
            store.set(edge.url, key)
        write_settings(wall_home, ids)

        console = Console(wall_home, [a for e in edges for a in ("--edge", e.url)], env)
        first = console.wait("first", 30)
        every = console.wait("all", 30)
        if every is None:
            print("".join(console.lines[-30:]), file=sys.stderr)
        results["wall"] = {
            "first_picture_s": first,
            "first_picture_logged_ms": console.first_ms_logged,
            "all_tiles_live_s": every,
            **(measure(console, args.seconds) if every is not None else {}),
        }
        results["wall"]["exit_code"] = console.stop()

        reference = Console(empty_home, ["--layout", "4x4"], env)
        time.sleep(3.0)  # no picture will come: give it the same start-up time
        results["empty"] = measure(reference, args.seconds)
        results["empty"]["exit_code"] = reference.stop()
    finally:
        for edge in edges:
            edge.stop()
        if display is not None:
            display.stop()

    wall, empty = results["wall"], results["empty"]
    ok = wall.get("all_tiles_live_s") is not None and (wall["first_picture_s"] or 99) <= 5.0
    mode = "Xvfb (xcb)" if args.xvfb else "offscreen"
    print(f"bench/console: {TILES} tiles from {EDGES} edges (640x360, 5 fps), 2 fps a tile, {mode}")
    if ok:
        print(f"  start-up to first picture on screen: {wall['first_picture_s']:.2f} s"
              f" (console's own clock {wall['first_picture_logged_ms']:.0f} ms);"
              f" all {TILES} tiles live: {wall['all_tiles_live_s']:.2f} s")  # fmt: skip
        print(f"  RSS {wall['rss_mb']:.0f} MB (peak {wall['peak_rss_mb']:.0f} MB),"
              f" CPU {wall['cpu_s_per_min']:.1f} s/min")  # fmt: skip
        print(f"  empty wall: RSS {empty['rss_mb']:.0f} MB, CPU {empty['cpu_s_per_min']:.1f} s/min;"
              f" 16-tile wall / empty: RSS x{wall['rss_mb'] / empty['rss_mb']:.2f}")  # fmt: skip
    else:
        print("  the wall never showed every tile live", file=sys.stderr)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "console.json").write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
