"""A real X server (Xvfb) on a free display, the console as a subprocess on it, screenshots.

    with Xvfb(tmp_path) as display:
        with ConsoleProcess(display, tmp_path, "--edge", url, "--page", "wall") as console:
            console.wait_for("first picture on screen", 30)
            shot = display.screenshot(ARTIFACTS / "wall-2x2.png")
        assert_not_blank(shot)

Xvfb picks its own display number (``-displayfd``), so parallel runs never collide. Screenshots
are taken with ImageMagick's ``import -window root`` (Debian ``imagemagick``); the check for
"not blank" uses ``convert`` to get the pixel standard deviation and the number of colours.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from tests.support.procs import stop_process

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


class Xvfb:
    def __init__(self, size: str = "1280x800x24", startup_s: float = 10.0) -> None:
        self.size = size
        self.startup_s = startup_s
        self.display = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Xvfb:
        missing = [tool for tool in ("Xvfb", "import", "convert") if shutil.which(tool) is None]
        if missing:  # fail, not skip: a screenshot test that never runs proves nothing
            raise RuntimeError(f"missing {missing}: run scripts/test (it installs them)")
        read_fd, write_fd = os.pipe()
        self._proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", self.size, "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(write_fd)
        number = b""
        deadline = time.monotonic() + self.startup_s
        with os.fdopen(read_fd, "rb") as pipe:
            while not number.endswith(b"\n") and time.monotonic() < deadline:
                chunk = pipe.read(1)
                if not chunk:
                    break
                number += chunk
        if not number.strip().isdigit():
            self.stop()
            raise RuntimeError("Xvfb did not start (is the xvfb package installed?)")
        self.display = f":{int(number)}"
        return self

    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display, "QT_QPA_PLATFORM": "xcb"}

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["import", "-display", self.display, "-window", "root", str(path)],
            check=True, timeout=30, capture_output=True,
        )  # fmt: skip
        return path

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> Xvfb:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ConsoleProcess:
    """``carwash-console`` (``python -m console``) on ``display``, settings under ``home``."""

    def __init__(self, display: Xvfb, home: Path, *args: str) -> None:
        self.display = display
        self.home = home
        self.args = args
        self.lines: list[str] = []
        self.started = 0.0
        self._proc: subprocess.Popen[str] | None = None
        self._pump_thread: threading.Thread | None = None
        self._changed = threading.Condition()

    def start(self) -> ConsoleProcess:
        env = {
            **self.display.env(),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_STATE_HOME": str(self.home / "state"),
            "PYTHONUNBUFFERED": "1",
        }
        self.started = time.monotonic()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "console", "--no-discovery", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
        self._pump_thread = threading.Thread(target=self._pump, name="console-stderr")
        self._pump_thread.start()
        return self

    def _pump(self) -> None:
        assert self._proc is not None
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, within_s: float = 30.0) -> re.Match[str]:
        """The first log line matching ``pattern`` (a regular expression)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + within_s
        with self._changed:
            while True:
                for line in self.lines:
                    if found := regex.search(line):
                        return found
                left = deadline - time.monotonic()
                exited = self._proc is not None and self._proc.poll() is not None
                if left <= 0 or exited:
                    raise AssertionError(f"no {pattern!r} in the console's log:\n{self.log}")
                self._changed.wait(min(left, 0.5))

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def stop(self, timeout: float = 15.0) -> int:
        proc = self._proc
        if proc is None:
            return 0
        return stop_process(proc, self._pump_thread, timeout)

    def __enter__(self) -> ConsoleProcess:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def image_stats(path: Path) -> tuple[float, int]:
    """(standard deviation of the pixels, 0..1; number of distinct colours)."""
    out = subprocess.run(
        ["convert", str(path), "-format", "%[fx:standard_deviation] %k", "info:"],
        check=True, timeout=60, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1])


def assert_not_blank(path: Path, min_stddev: float = 0.05, min_colours: int = 64) -> None:
    stddev, colours = image_stats(path)
    assert stddev >= min_stddev, f"{path.name} looks blank: pixel std-dev {stddev:.3f}"
    assert colours >= min_colours, f"{path.name} looks blank: only {colours} colours"
