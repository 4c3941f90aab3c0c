"""Start and stop ``tests/support/rtsp_server.py`` (GStreamer RTSP server) from the venv.

The server runs under Debian's ``/usr/bin/python3`` (it needs ``gi``, which the venv lacks)::

    with RtspServer("live", width=320, height=240, fps=25, gop=25) as srv:
        container = av.open(srv.url, options={"rtsp_transport": "tcp"}, timeout=(5, 5))
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, NoReturn, Self

__all__ = ["SERVER_PYTHON", "SERVER_SCRIPT", "RtspServer", "RtspServerError"]

#: Debian's interpreter, which has PyGObject and the GStreamer typelibs.
SERVER_PYTHON = os.environ.get("CARWASH_RTSP_PYTHON", "/usr/bin/python3")
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")


class RtspServerError(RuntimeError):
    """The server did not start (its stderr is in the message)."""


class RtspServer:
    """One ``rtsp_server.py`` subprocess serving ``rtsp://127.0.0.1:PORT/stream``.

    ``port=0`` picks an ephemeral port; :meth:`restart` reuses the port it got. Started by
    :meth:`start` or by entering the context manager.
    """

    def __init__(
        self,
        mode: Literal["live", "file"] = "live",
        *,
        width: int = 640,
        height: int = 360,
        fps: int = 25,
        gop: int = 50,
        file: str | os.PathLike[str] | None = None,
        port: int = 0,
        log_pushes: str | os.PathLike[str] | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        if mode == "file" and file is None:
            raise ValueError("mode 'file' needs file=")
        self.mode = mode
        self.width, self.height, self.fps, self.gop = width, height, fps, gop
        self.file = None if file is None else Path(file)
        self.log_pushes = None if log_pushes is None else Path(log_pushes)
        self.startup_timeout = startup_timeout
        self._port = port
        self._url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("RTSP server not started")
        return self._url

    @property
    def port(self) -> int:
        """The bound port (the requested one before the first start)."""
        return self._port

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stderr_text(self) -> str:
        """What the server wrote on stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def command(self) -> list[str]:
        cmd = [
            SERVER_PYTHON,
            str(SERVER_SCRIPT),
            "--mode",
            self.mode,
            "--port",
            str(self._port),
            "--fps",
            str(self.fps),
        ]
        if self.mode == "live":
            cmd += ["--width", str(self.width), "--height", str(self.height)]
            cmd += ["--gop", str(self.gop)]
        else:
            cmd += ["--file", str(self.file)]
        if self.log_pushes is not None:
            cmd += ["--log-pushes", str(self.log_pushes)]
        return cmd

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        if self.is_running():
            raise RuntimeError("RTSP server already running")
        self._close_stderr()
        self._stderr = tempfile.TemporaryFile(prefix="rtsp_server-stderr-")  # noqa: SIM115
        proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # a ^C in the terminal goes to pytest only
        )
        self._proc = proc
        assert proc.stdout is not None
        line = b""
        deadline = time.monotonic() + self.startup_timeout
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._fail(f"RTSP server not ready after {self.startup_timeout:g} s")
                if not sel.select(remaining):
                    continue
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    code = proc.wait(timeout=5)
                    self._fail(f"RTSP server exited with {code} before READY")
                line += chunk
        text = line.decode(errors="replace").strip()
        if not text.startswith("READY rtsp://"):
            self._fail(f"unexpected first line {text!r} from the RTSP server")
        self._url = text.split(" ", 1)[1]
        self._port = int(self._url.rsplit(":", 1)[1].split("/", 1)[0])
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        self._proc = None
        return proc.returncode

    def restart(self, *, down_for: float = 0.0) -> Self:
        """Stop, wait ``down_for`` seconds, start again on the same port."""
        self.stop()
        if down_for > 0:
            time.sleep(down_for)
        return self.start()

    def _fail(self, message: str) -> NoReturn:
        self.stop()
        stderr = self.stderr_text()
        self._close_stderr()
        raise RtspServerError(f"{message}; its stderr:\n{stderr}")

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        self.stop()
        self._close_stderr()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RtspServer({self.mode!r}, url={self._url!r}, pid={self.pid})"
