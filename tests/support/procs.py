"""Helpers for the test suite's child processes (edges, consoles)."""

from __future__ import annotations

import signal
import subprocess
import threading


def stop_process(proc: subprocess.Popen[str], pump: threading.Thread | None, timeout: float) -> int:
    """SIGTERM, wait up to ``timeout`` (then SIGKILL), let the stderr pump finish; exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if pump is not None:
        pump.join(5.0)
    if proc.stderr is not None:
        proc.stderr.close()
    return proc.returncode
