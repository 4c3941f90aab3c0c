"""bench/soak: the real edge for a long while against a flapping camera; does anything grow?

Runs ``carwash-edge run`` (a subprocess, as systemd would) against the GStreamer RTSP test
server, which is stopped and restarted at random moments for ``--minutes`` (default 10):
up for 5-30 s, down for 2-8 s. Throughout, one client polls ``GET /api/snapshot`` every 200 ms
and another follows ``GET /api/events`` (SSE), reconnecting with ``Last-Event-ID`` whenever the
stream drops, and checks that event ids arrive without a gap or a repeat.

Prints the edge's RSS, open file descriptors and threads at the start (camera online), after the
first flap (the warm-up: every lazily made object exists) and at the end, and the recoveries:
flaps made, ``carwash_edge_recoveries_total{component="camera"}`` from ``/metrics``, and
``recovery`` events received. Writes ``bench/results/soak.json``. Exits 1 if, from the warm-up to
the end, threads grew by more than ``--max-thread-growth``, fds by more than ``--max-fd-growth``
or RSS by more than ``--max-rss-growth-mb``; if a flap was not recovered (within the backoff cap
plus a margin) or not counted in both the metric and the events; if an event id was skipped or
repeated; if a snapshot request failed or took over 1 s; or if the edge did not exit 0 on
SIGTERM. Needs the RTSP test server's packages (see ../shared/ENVIRONMENT.md).

    python bench/soak.py [--minutes 10] [--seed 1] [--width 320 --height 240 --fps 15]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.keys import KeyStore  # noqa: E402
from tests.support.edge_process import EdgeProcess  # noqa: E402
from tests.support.rtsp import SERVER_PYTHON, RtspServer  # noqa: E402

BACKOFF_CAP_S = 2.0
# Reconnect delay (at most the cap) + RTSP handshake + first keyframe + margin.
RECOVERY_BOUND_S = BACKOFF_CAP_S + 4.0
SNAPSHOT_PERIOD_S = 0.2
SLOW_REQUEST_S = 1.0
_RECOVERIES = re.compile(r'^carwash_edge_recoveries_total\{component="camera"\} (\S+)$', re.M)


def proc_figures(pid: int) -> dict[str, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {
        "rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(fields["Threads"]),
    }


class SnapshotPoller(threading.Thread):
    """``GET /api/snapshot`` every 200 ms: counts by status, slowest request, failures."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(name="soak-snapshots", daemon=True)
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=5.0
        )
        self.stop_event = threading.Event()
        self.statuses: dict[int, int] = {}
        self.slowest_s = 0.0
        self.failures: list[str] = []

    def run(self) -> None:
        with self.client:
            while not self.stop_event.wait(SNAPSHOT_PERIOD_S):
                started = time.monotonic()
                try:
                    status = self.client.get("/api/snapshot").status_code
                except httpx.HTTPError as err:
                    self.failures.append(f"{type(err).__name__}: {err}")
                    continue
                self.slowest_s = max(self.slowest_s, time.monotonic() - started)
                self.statuses[status] = self.statuses.get(status, 0) + 1


class EventFollower(threading.Thread):
    """Follows ``/api/events`` from the first event on, resuming by id after any drop."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(name="soak-events", daemon=True)
        self.url, self.key = url, key
        self.stop_event = threading.Event()
        self.last_id = 0
        self.count = 0
        self.kinds: dict[str, int] = {}
        self.recoveries: list[dict[str, Any]] = []
        self.problems: list[str] = []  # gaps and repeats
        self.reconnects = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            headers = {"Authorization": f"Bearer {self.key}", "Last-Event-ID": str(self.last_id)}
            try:
                # Keepalives come every few seconds: a longer silence is a dead stream.
                with (
                    httpx.Client(base_url=self.url, timeout=httpx.Timeout(5.0, read=20.0)) as c,
                    c.stream("GET", "/api/events", headers=headers) as response,
                ):
                    for line in response.iter_lines():
                        if self.stop_event.is_set():
                            return
                        if line.startswith("data: "):
                            self._take(json.loads(line[6:]))
            except httpx.HTTPError:
                pass
            self.reconnects += 1
            self.stop_event.wait(0.5)

    def _take(self, event: dict[str, Any]) -> None:
        event_id = int(event["id"])
        if event_id and event_id != self.last_id + 1:
            self.problems.append(f"after id {self.last_id} came {event_id}")
        self.last_id = max(self.last_id, event_id)
        self.count += 1
        self.kinds[event["kind"]] = self.kinds.get(event["kind"], 0) + 1
        if event["kind"] == "recovery":
            self.recoveries.append(event["payload"])


def wait_status(client: httpx.Client, want: str, within_s: float) -> float | None:
    """Seconds until the edge's stream status is ``want``; None if it never was."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if client.get("/api/health").json()["stream_status"] == want:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def metric_recoveries(client: httpx.Client) -> float:
    found = _RECOVERIES.search(client.get("/metrics").text)
    return float(found.group(1)) if found else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run")
    parser.add_argument("--seed", type=int, default=20261124, help="random flap timing")
    parser.add_argument("--up-s", type=float, nargs=2, default=(5.0, 30.0), metavar=("MIN", "MAX"))
    parser.add_argument("--down-s", type=float, nargs=2, default=(2.0, 8.0), metavar=("MIN", "MAX"))
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--max-thread-growth", type=int, default=2)
    parser.add_argument("--max-fd-growth", type=int, default=4)
    parser.add_argument("--max-rss-growth-mb", type=float, default=30.0)
    args = parser.parse_args()
    if not Path(SERVER_PYTHON).exists():
        print(f"bench/soak needs {SERVER_PYTHON} with GStreamer's RTSP server", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.minutes * 60

    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        work = Path(tmp)
        key, _ = KeyStore.in_dir(work).create("viewer", "soak")
        config = work / "edge.toml"
        with RtspServer("live", width=args.width, height=args.height, fps=args.fps,
                        gop=args.fps) as camera:  # fmt: skip
            config.write_text(
                f'[camera]\nsource = "{camera.url}"\nreconnect_max_s = {BACKOFF_CAP_S}\n'
                "read_timeout_s = 1.0\nconnect_timeout_s = 1.0\noffline_after_ms = 3000\n"
                "[http]\nrate_limit_per_s = 1000.0\nsse_keepalive_s = 5.0\n"
                "[discovery]\nenabled = false\n"
            )
            edge = EdgeProcess(work, "--config", str(config), log_level="info").start()
            poller = SnapshotPoller(edge.url, key)
            follower = EventFollower(edge.url, key)
            flaps: list[dict[str, float | None]] = []
            figures: dict[str, dict[str, float]] = {}
            try:
                with httpx.Client(base_url=edge.url, timeout=5.0) as client:
                    edge.wait_online()
                    figures["start"] = proc_figures(edge.pid)
                    poller.start()
                    follower.start()
                    while time.monotonic() < deadline:
                        time.sleep(
                            min(rng.uniform(*args.up_s), max(0.0, deadline - time.monotonic()))
                        )
                        if time.monotonic() >= deadline and flaps:
                            break
                        camera.stop()
                        went_down = wait_status(client, "offline", 10.0)
                        time.sleep(rng.uniform(*args.down_s))
                        camera.start()
                        back = wait_status(client, "online", RECOVERY_BOUND_S + 10.0)
                        flaps.append({"offline_after_s": went_down, "online_after_s": back})
                        if len(flaps) == 1:
                            figures["warm"] = proc_figures(edge.pid)
                    figures["end"] = proc_figures(edge.pid)
                    time.sleep(1.0)  # the last events reach the follower
                    from_metric = metric_recoveries(client)
            finally:
                poller.stop_event.set()
                follower.stop_event.set()
                poller.join(10)
                follower.join(25)
                exit_code = edge.stop()

    recovered = [f["online_after_s"] for f in flaps if f["online_after_s"] is not None]
    slowest_recovery = max(recovered, default=0.0)
    growth = {k: round(figures["end"][k] - figures["warm"][k], 1) for k in figures["end"]}
    checks = {
        "every flap recovered in time": len(recovered) == len(flaps)
        and slowest_recovery <= RECOVERY_BOUND_S,
        "every flap went offline": all(f["offline_after_s"] is not None for f in flaps),
        "recoveries in /metrics": from_metric == len(flaps),
        "recovery events": len(follower.recoveries) == len(flaps),
        "event ids without gap or repeat": not follower.problems,
        "snapshots answered (200/503 only, < 1 s)": not poller.failures
        and set(poller.statuses) <= {200, 503}
        and poller.slowest_s < SLOW_REQUEST_S,
        "threads bounded": growth["threads"] <= args.max_thread_growth,
        "fds bounded": growth["fds"] <= args.max_fd_growth,
        "RSS bounded": growth["rss_mb"] <= args.max_rss_growth_mb,
        "clean exit on SIGTERM": exit_code == 0,
    }
    met = all(checks.values())

    print(f"bench/soak: {args.minutes:g} min, camera {args.width}x{args.height} {args.fps} fps "
          f"flapping (up {args.up_s[0]:g}-{args.up_s[1]:g} s, down {args.down_s[0]:g}-"
          f"{args.down_s[1]:g} s), {os.cpu_count()} cores")  # fmt: skip
    print(f"{'':10}{'RSS MB':>9}{'fds':>6}{'threads':>9}")
    for name in ("start", "warm", "end"):
        f = figures[name]
        print(f"{name:10}{f['rss_mb']:>9.1f}{f['fds']:>6.0f}{f['threads']:>9.0f}")
    print(f"{'growth':10}{growth['rss_mb']:>9.1f}{growth['fds']:>6.0f}{growth['threads']:>9.0f}"
          "   (end - warm)")  # fmt: skip
    print(f"flaps {len(flaps)}; recoveries: /metrics {from_metric:g}, events "
          f"{len(follower.recoveries)}; slowest recovery {slowest_recovery:.2f} s "
          f"(bound {RECOVERY_BOUND_S:g} s)")  # fmt: skip
    print(f"events {follower.count} {dict(sorted(follower.kinds.items()))}, SSE reconnects "
          f"{follower.reconnects}; snapshots {dict(sorted(poller.statuses.items()))}, slowest "
          f"{poller.slowest_s * 1000:.0f} ms, failures {len(poller.failures)}")  # fmt: skip
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if follower.problems:
        print("event id problems:", follower.problems[:5])
    print("targets met" if met else "targets NOT met")

    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "soak.json").write_text(json.dumps({
        "minutes": args.minutes, "seed": args.seed, "figures": figures, "growth": growth,
        "flaps": flaps, "recoveries_metric": from_metric,
        "recoveries_events": len(follower.recoveries), "events": follower.count,
        "event_kinds": follower.kinds, "sse_reconnects": follower.reconnects,
        "snapshot_statuses": poller.statuses, "snapshot_slowest_s": poller.slowest_s,
        "checks": checks, "met": met,
    }, indent=2))  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
