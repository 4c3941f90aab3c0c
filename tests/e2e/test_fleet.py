"""The fleet as an installer sets it up: the cloud's commands, an edge enrolled with a one-time
token, cars passing a synthetic bay. Every plate read the edge stores reaches the cloud once,
in its plate search and in the site's hourly rollup."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.support.edge_process import EdgeProcess
from tests.support.procs import stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

_LISTENING = re.compile(r"listening on http://[\d.]+:(\d+)")
PASSWORD = "a long test password"  # noqa: S105 - the test supervisor's password
# The default bay scene: a car every 24 s (arrive, stop, leave, 4 s empty).
SOURCE = "synthetic://?width=640&height=360&fps=8&seed=5"


def _cli(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cloud_sync", *args], cwd=ROOT, input=stdin,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout.strip()


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(URL, an enrolment token) of a real cloud made with its own commands."""
    db = f"sqlite:///{tmp_path / 'cloud.db'}"
    _cli("init", "--db", db, "--org", "Acme Wash")
    site = _cli("site", "add", "--db", db, "--name", "Berlin 1", "--region", "North")
    assert re.fullmatch(r"[0-9a-f]{32}", site)
    _cli("user", "add", "--db", db, "--email", "boss@acme.test", "--role", "viewer",
         "--site", "Berlin 1", "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    token = _cli("token", "create", "--db", db, "--site", "Berlin 1", "--expires-in", "1h")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud_sync", "serve", "--db", db, "--listen", "127.0.0.1:0"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    found = threading.Event()
    port: list[int] = []
    lines: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            match = _LISTENING.search(line)
            if match and not found.is_set():
                port.append(int(match.group(1)))
                found.set()

    thread = threading.Thread(target=pump, name="cloud-stderr", daemon=True)
    thread.start()
    try:
        assert found.wait(30), "".join(lines)
        yield f"http://127.0.0.1:{port[0]}", token
    finally:
        assert stop_process(proc, thread, 20.0) == 0, "".join(lines)
        assert "Traceback" not in "".join(lines)


def _supervisor(cloud_url: str) -> httpx.Client:
    login = httpx.post(f"{cloud_url}/api/v1/auth/login", timeout=10,
                       json={"email": "boss@acme.test", "password": PASSWORD})  # fmt: skip
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    return httpx.Client(base_url=cloud_url, headers=headers, timeout=10)


def test_cars_read_at_an_enrolled_edge_reach_the_cloud_once(
    cloud: tuple[str, str], tmp_path: Path
) -> None:
    cloud_url, token = cloud
    data = tmp_path / "edge"
    enrolled = subprocess.run(
        [sys.executable, "-m", "edge", "enroll", "--cloud", cloud_url, "--token", token,
         "--data-dir", str(data)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    assert (data / "cloud.json").stat().st_mode & 0o077 == 0  # the device key is private
    viewer = subprocess.run(
        [sys.executable, "-m", "edge", "keys", "create", "--role", "viewer", "--data-dir",
         str(data)], capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip

    with EdgeProcess(data, "--source", SOURCE, log_level="info") as edge:
        edge.wait_online()
        reads: list[dict[str, object]] = []
        # Two cars when the motion trigger follows them (one every 24 s). At least one: a
        # trigger whose first background caught a car keeps the bay "occupied" (a known
        # limitation of edge/plates/motion.py, in the handoff notes), and this test is about
        # every stored read reaching the cloud once, however many there are.
        deadline = time.monotonic() + 75
        with edge.client(viewer) as client:
            while time.monotonic() < deadline and len(reads) < 2:
                reads = client.get("/api/plates").json()["reads"]
                time.sleep(0.5)
            assert len(reads) >= 1, edge.log[-3000:]
            health = client.get("/api/health").json()
        assert health["components"]["cloud"]["status"] == "ok", health
        # The sync pushes within a few seconds of each read.
        with _supervisor(cloud_url) as supervisor:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                found = supervisor.get("/api/v1/plates", params={"limit": 500}).json()["reads"]
                if len(found) >= len(reads):
                    break
                time.sleep(0.5)
            devices = supervisor.get("/api/v1/devices").json()["devices"]
            edge_stored = {(r["id"], r["plate"]) for r in reads}
            in_cloud = [(r["payload"]["id"], r["plate"]) for r in found]
            assert len(in_cloud) == len(set(in_cloud))  # each read once
            assert edge_stored <= set(in_cloud), (edge_stored, in_cloud)
            hourly = supervisor.get("/api/v1/rollups", params={"group_by": "hour"}).json()
        assert sum(row["plate_reads"] for row in hourly["rows"]) == len(in_cloud)
        assert [d["online"] for d in devices] == [True]
        assert devices[0]["stream_status"] == "online"
        assert edge.stop() == 0
