"""systemd integration: sd_notify datagrams to a real socket, the watchdog, ``carwash-edge run``.

systemd is played by an AF_UNIX datagram socket bound in tmp_path (or in the abstract namespace),
which is all ``$NOTIFY_SOCKET`` is.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge.systemd import SystemdNotifier
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

_LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")


class FakeSystemd:
    """The receiving end of ``$NOTIFY_SOCKET``: a non-blocking datagram socket."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.env_value}

    def drain(self) -> list[str]:
        """Every datagram received so far, without waiting."""
        messages = []
        while True:
            try:
                messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return messages

    def receive(self, timeout: float) -> str | None:
        """The next datagram, or None after ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except TimeoutError:
            return None
        finally:
            self.sock.setblocking(False)


def _bound(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    return sock


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    path = tmp_path / "notify.sock"
    assert len(os.fsencode(path)) < 108, "tmp_path too long for a unix socket address"
    with _bound(str(path)) as sock:
        yield FakeSystemd(sock, str(path))


def _notifier(systemd: FakeSystemd, **env: str) -> SystemdNotifier:
    return SystemdNotifier.from_env({**systemd.env, **env})


# ------------------------------------------------------------------ the notifier alone
def test_messages_arrive(systemd: FakeSystemd) -> None:
    notifier = _notifier(systemd, WATCHDOG_USEC="30000000")
    assert notifier.enabled
    assert notifier.watchdog_interval_s == 30.0
    notifier.ready("serving http://127.0.0.1:8080")
    notifier.status("camera offline\nreconnecting")
    notifier.watchdog_ping()
    notifier.stopping()
    assert systemd.drain() == [
        "READY=1\nSTATUS=serving http://127.0.0.1:8080",
        "STATUS=camera offline reconnecting",  # a newline would start a new assignment
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping",
    ]


def test_abstract_socket_names_work() -> None:
    name = f"carwash-test-{uuid.uuid4().hex}"
    with _bound(b"\0" + name.encode()) as sock:
        notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": "@" + name})
        notifier.ready("up")
        assert FakeSystemd(sock, "@" + name).drain() == ["READY=1\nSTATUS=up"]


def test_without_notify_socket_everything_is_a_no_op(systemd: FakeSystemd) -> None:
    notifier = SystemdNotifier.from_env({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled
    assert notifier.watchdog_interval_s is None
    notifier.ready("up")
    notifier.watchdog_ping()
    notifier.stopping()
    asyncio.run(asyncio.wait_for(notifier.run_watchdog(lambda: True), 1.0))  # returns at once
    assert systemd.drain() == []


def test_watchdog_pid_of_another_process_means_no_watchdog(systemd: FakeSystemd) -> None:
    other = _notifier(systemd, WATCHDOG_USEC="1000000", WATCHDOG_PID=str(os.getpid() + 1))
    assert other.enabled
    assert other.watchdog_interval_s is None
    other.watchdog_ping()
    asyncio.run(asyncio.wait_for(other.run_watchdog(lambda: True), 1.0))  # returns at once
    assert systemd.drain() == []
    ours = _notifier(systemd, WATCHDOG_USEC="1000000", WATCHDOG_PID=str(os.getpid()))
    assert ours.watchdog_interval_s == 1.0
    ours.watchdog_ping()
    assert systemd.drain() == ["WATCHDOG=1"]


@pytest.mark.parametrize("usec", ["", "0", "-5", "soon"])
def test_no_or_bad_watchdog_usec_means_no_watchdog(systemd: FakeSystemd, usec: str) -> None:
    assert _notifier(systemd, WATCHDOG_USEC=usec).watchdog_interval_s is None


def test_sending_never_raises_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with caplog.at_level(logging.DEBUG, logger="edge.systemd"):
        notifier.ready("up")
        notifier.status("still up")
        notifier.stopping()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cannot notify systemd" in warnings[0].getMessage()


# ------------------------------------------------------------------ the watchdog coroutine
@pytest.mark.asyncio
async def test_run_watchdog_pings_at_half_the_interval_only_while_healthy(
    systemd: FakeSystemd,
) -> None:
    notifier = _notifier(systemd, WATCHDOG_USEC="200000")  # pings every 0.1 s
    arrivals: list[float] = []

    def on_datagram() -> None:
        arrivals.extend(time.monotonic() for m in systemd.drain() if m == "WATCHDOG=1")

    healthy = True
    loop = asyncio.get_running_loop()
    loop.add_reader(systemd.sock.fileno(), on_datagram)
    task = asyncio.create_task(notifier.run_watchdog(lambda: healthy))
    try:
        await asyncio.sleep(1.05)
        on_datagram()
        assert 8 <= len(arrivals) <= 12, arrivals
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert 0.08 <= statistics.median(gaps) <= 0.13, gaps

        healthy = False
        on_datagram()  # whatever was sent while healthy
        before = len(arrivals)
        await asyncio.sleep(0.5)
        on_datagram()
        assert len(arrivals) == before, "pinged while not healthy"

        healthy = True
        await asyncio.sleep(0.35)
        on_datagram()
        assert len(arrivals) - before >= 2, "pings did not resume"
    finally:
        loop.remove_reader(systemd.sock.fileno())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.asyncio
async def test_run_watchdog_sends_nothing_while_the_loop_is_blocked(
    systemd: FakeSystemd,
) -> None:
    notifier = _notifier(systemd, WATCHDOG_USEC="100000")  # pings every 0.05 s
    task = asyncio.create_task(notifier.run_watchdog(lambda: True))
    try:
        await asyncio.sleep(0.3)
        assert len(systemd.drain()) >= 3, "no pings before the block"
        time.sleep(0.6)  # noqa: ASYNC251 - a stuck handler, on purpose
        assert systemd.drain() == [], "pinged while the loop was blocked"
        await asyncio.sleep(0.3)
        assert len(systemd.drain()) >= 3, "pings did not resume after the block"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# ------------------------------------------------------------------ carwash-edge run
@pytest.mark.parametrize("camera", ["online", "offline"])
def test_edge_run_notifies_systemd(systemd: FakeSystemd, tmp_path: Path, camera: str) -> None:
    """READY=1 once it listens, WATCHDOG=1 every 0.5 s, STOPPING=1 on SIGTERM, then exit 0.

    A dead camera does not stop the pings: the edge reconnects, systemd need not restart it.
    """
    source = (
        "synthetic://?width=320&height=180&fps=5"
        if camera == "online"
        else (tmp_path / "missing.mp4").as_uri()
    )
    cmd = [sys.executable, "-m", "edge", "run", "--listen", "127.0.0.1:0",
           "--data-dir", str(tmp_path), "--source", source]  # fmt: skip
    env = {**os.environ, **systemd.env, "WATCHDOG_USEC": "1000000", "PYTHONUNBUFFERED": "1"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    lines: list[str] = []
    listening = threading.Event()

    def pump() -> None:
        for line in proc.stderr or ():
            lines.append(line)
            if _LISTENING.search(line):
                listening.set()

    pump_thread = threading.Thread(target=pump, name="edge-stderr", daemon=True)
    pump_thread.start()
    try:
        ready = systemd.receive(timeout=20.0)
        assert ready is not None, "no READY=1:\n" + "".join(lines)
        assert ready.startswith("READY=1\nSTATUS=serving http://127.0.0.1:"), ready
        # "listening on" was written to stderr before READY=1 was sent: it is in the pipe.
        assert listening.wait(5.0), "READY=1 without 'listening on':\n" + "".join(lines)
        url = next(m.group(1) for line in lines if (m := _LISTENING.search(line)))
        assert url in ready
        health = httpx.get(f"{url}/api/health", timeout=5.0)
        assert health.status_code == 200
        if camera == "offline":
            assert health.json()["stream_status"] == "offline"

        pings = []
        deadline = time.monotonic() + 2.2
        while (left := deadline - time.monotonic()) > 0:
            message = systemd.receive(timeout=left)
            if message is not None:
                pings.append(message)
        assert set(pings) == {"WATCHDOG=1"}, pings
        assert len(pings) >= 3, pings  # every 0.5 s

        proc.send_signal(signal.SIGTERM)
        stopping = systemd.receive(timeout=5.0)
        while stopping == "WATCHDOG=1":
            stopping = systemd.receive(timeout=5.0)
        assert stopping is not None, "no STOPPING=1:\n" + "".join(lines)
        assert stopping.startswith("STOPPING=1"), stopping
        assert proc.wait(10.0) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pump_thread.join(5.0)
        proc.stderr.close()
