"""The installed commands, run as an installer or operator runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.edge_process import PLATES_OFF, EdgeProcess
from tests.support.procs import stop_process

pytestmark = pytest.mark.e2e


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("module", ["edge", "console", "cloud_sync"])
def test_every_program_has_help_and_version(module: str) -> None:
    version = _run(module, "--version")
    assert version.returncode == 0
    assert version.stdout.strip().endswith("0.1.0")
    helptext = _run(module, "--help")
    assert helptext.returncode == 0
    assert "--log-json" in helptext.stdout
    assert "--log-level" in helptext.stdout


def test_check_config_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[camera]\nsource = "rtsp://10.0.0.2/stream"\n')
    assert _run("edge", "check-config", str(good)).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[camera]\nfreshness_target_ms = -1\n")
    result = _run("edge", "check-config", str(bad))
    assert result.returncode == 2
    assert "camera.freshness_target_ms" in result.stderr
    schema = json.loads(_run("edge", "config-schema").stdout)
    assert schema["additionalProperties"] is False
    assert "camera" in schema["properties"]


def test_keys_command_line(tmp_path: Path) -> None:
    created = _run("edge", "keys", "create", "--role", "operator", "--label", "till",
                   "--data-dir", str(tmp_path))  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("cwe_")
    listed = _run("edge", "keys", "list", "--data-dir", str(tmp_path))
    key_id = key.split("_")[1]
    assert key_id in listed.stdout
    assert "operator" in listed.stdout
    assert key not in listed.stdout
    assert _run("edge", "keys", "revoke", key_id, "--data-dir", str(tmp_path)).returncode == 0
    assert key_id not in _run("edge", "keys", "list", "--data-dir", str(tmp_path)).stdout
    assert _run("edge", "keys", "revoke", key_id, "--data-dir", str(tmp_path)).returncode == 1


def test_run_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    key = _run("edge", "keys", "create", "--role", "viewer", "--data-dir", str(tmp_path))
    with EdgeProcess(tmp_path, "--source", "synthetic://?width=320&height=180&fps=10",
                     "--name", "bay-e2e") as edge:  # fmt: skip
        edge.wait_online()
        with edge.client(key.stdout.strip()) as client:
            health = client.get("/api/health").json()
            assert health["name"] == "bay-e2e"
            assert health["status"] == "ok"
            assert client.get("/api/snapshot").status_code == 200
        started = time.monotonic()
        assert edge.stop() == 0
        assert time.monotonic() - started < 5
    assert "edge 'bay-e2e' stopped" in edge.log


def test_busy_port_is_a_clear_failure(tmp_path: Path) -> None:
    with EdgeProcess(tmp_path, "--source", "synthetic://?fps=2") as first:
        port = first.url.rsplit(":", 1)[1]
        second = _run("edge", "run", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path))
    assert second.returncode == 1
    assert "cannot serve on" in second.stderr


def test_bad_source_parameters_are_a_usage_error(tmp_path: Path) -> None:
    result = _run("edge", "run", "--source", "synthetic://?fps=zero", "--listen", "127.0.0.1:0",
                  "--data-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 2
    assert "fps" in result.stderr
    assert "Traceback" not in result.stderr


class _Edge:
    """``carwash-edge run`` with the arguments given as they are, its stderr collected; plates
    off (their reader's start-up is not what these tests are about)."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        config = data_dir / "edge.toml"
        config.write_text(PLATES_OFF)
        cmd = [sys.executable, "-m", "edge", "run", "--data-dir", str(data_dir),
               "--config", str(config), *args]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: list[str] = []
        self.listening = threading.Event()
        self._reader = threading.Thread(target=self._pump, daemon=True, name="edge-stderr")
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if "listening on http://" in line:
                self.listening.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def close(self) -> int:
        return stop_process(self.proc, self._reader, 20.0)


def test_common_flags_after_the_command_and_ctrl_c_is_130_without_a_traceback(
    tmp_path: Path,
) -> None:
    """The README's development line (``run ... --log-level debug``), then a Ctrl-C (SIGINT)
    once it serves: a clean stop with the exit code of an interruption."""
    edge = _Edge(tmp_path, "--source", "synthetic://?width=320&height=180&fps=5",
                 "--listen", "127.0.0.1:0", "--log-level", "debug")  # fmt: skip
    try:
        assert edge.listening.wait(30), edge.log
        edge.proc.send_signal(signal.SIGINT)
        assert edge.proc.wait(15) == 130
    finally:
        edge.close()
    assert " DEBUG " in edge.log  # the flag after the command took effect
    assert "SIGINT received: shutting down" in edge.log
    assert "Traceback" not in edge.log
    assert "stopped" in edge.lines[-1]


def test_ipv6_loopback_url_in_brackets_and_no_stray_zeroconf_error(tmp_path: Path) -> None:
    edge = _Edge(tmp_path, "--source", "synthetic://?width=320&height=180&fps=5",
                 "--listen", "[::1]:0")  # fmt: skip
    try:
        assert edge.listening.wait(30), edge.log
        url = next(line for line in edge.lines if "listening on" in line).split()[-1]
        assert url.startswith("http://[::1]:")
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/api/health").status_code == 200
    finally:
        assert edge.close() == 0
    assert "zeroconf advertising skipped on ::1" in edge.log
    assert "OSError" not in edge.log
    assert "Network is unreachable" not in edge.log


def test_every_interface_is_spelled_out_and_warned_about(tmp_path: Path) -> None:
    result = _run("edge", "run", "--listen", "0:0", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "write 0.0.0.0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "list", "--log-json"],
        ["--log-level", "error", "keys", "list", "--log-level", "debug"],
    ],
)
def test_common_flags_work_on_either_side_of_a_command(tmp_path: Path, argv: list[str]) -> None:
    result = _run("edge", *argv, "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
