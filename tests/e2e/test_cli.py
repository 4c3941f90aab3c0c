"""The installed commands, run as an installer or operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.edge_process import EdgeProcess

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
