"""Start ``carwash-edge run`` as its users do, in a subprocess on an ephemeral port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.procs import stop_process

_LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")

# For edges on the time-coded test camera (tests/support/rtsp_server.py): its picture changes
# all over in every frame, which the plate trigger takes for a car that never leaves; the plate
# burst then decodes every frame and reads at 2 Hz, two cores' worth of noise in tests of the
# stream itself. tests/integration/test_plates*.py test the plates.
PLATES_OFF = '[plates]\npolicy = "none"\n'


class EdgeProcess:
    """``with EdgeProcess(data_dir, "--source", url) as edge: edge.url ...``"""

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        startup_s: float = 20.0,
        log_level: str = "debug",
        prefix: Sequence[str] = (),
    ) -> None:
        """``prefix``: a command that execs the rest (e.g. one entering a memory cgroup)."""
        self.log_level = log_level
        self.prefix = tuple(prefix)
        self.data_dir = data_dir
        self.args = args
        self.startup_s = startup_s
        self.url = ""
        self.lines: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._found = threading.Event()
        self._pump_thread: threading.Thread | None = None

    def start(self) -> EdgeProcess:
        cmd = [*self.prefix, sys.executable, "-m", "edge", "--log-level", self.log_level, "run",
               "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir), *self.args]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self._pump_thread = threading.Thread(target=self._pump, daemon=True, name="edge-stderr")
        self._pump_thread.start()
        if not self._found.wait(self.startup_s):
            self.stop()
            raise RuntimeError("edge did not start:\n" + self.log)
        return self

    def _pump(self) -> None:
        assert self._proc is not None
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.lines.append(line)
            match = _LISTENING.search(line)
            if match and not self.url:
                self.url = match.group(1)
                self._found.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def client(self, key: str | None = None, timeout: float = 10.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def wait_online(self, within_s: float = 20.0) -> None:
        deadline = time.monotonic() + within_s
        with self.client() as client:
            while time.monotonic() < deadline:
                if client.get("/api/health").json()["stream_status"] == "online":
                    return
                time.sleep(0.1)
        raise AssertionError("stream never came online:\n" + self.log[-3000:])

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait; returns the exit code (kills after ``timeout``)."""
        proc = self._proc
        if proc is None:
            return 0
        return stop_process(proc, self._pump_thread, timeout)

    def __enter__(self) -> EdgeProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
