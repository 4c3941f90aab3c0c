"""``carwash-cloud``: the admin commands (in-process ``main``), and ``serve`` as a real process."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from cloud_sync.cli import main
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

_LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")


def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def test_admin_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'cloud.db'}"
    code, out, _ = run(capsys, monkeypatch, "init", "--db", db, "--org", "Acme")
    assert code == 0
    assert "database created" in out
    org_id = out.rsplit(": ", 1)[1]
    code, out, _ = run(capsys, monkeypatch, "init", "--db", db, "--org", "Acme")
    assert (code, out.rsplit(": ", 1)[1]) == (0, org_id)
    assert "up to date" in out
    code, site_id, _ = run(
        capsys,
        monkeypatch,
        "site",
        "add",
        "--db",
        db,
        "--name",
        "Bay 1",
        "--region",
        "North",
        "--lat",
        "52.5",
        "--lon",
        "13.4",
        "--timezone",
        "Europe/Berlin",
    )
    assert code == 0
    assert re.fullmatch(r"[0-9a-f]{32}", site_id)
    code, _, err = run(
        capsys, monkeypatch, "site", "add", "--db", db, "--name", "Bay 1", "--region", "North"
    )
    assert code == 2
    assert "exists already" in err
    code, _, err = run(
        capsys,
        monkeypatch,
        "site",
        "add",
        "--db",
        db,
        "--name",
        "X",
        "--region",
        "North",
        "--timezone",
        "Mars/Base",
    )
    assert code == 2
    assert "time zone" in err
    code, _, _ = run(
        capsys,
        monkeypatch,
        "user",
        "add",
        "--db",
        db,
        "--email",
        "a@acme.test",
        "--role",
        "viewer",
        "--site",
        "Bay 1",
        "--password-stdin",
        stdin="correct-horse\n",
    )
    assert code == 0
    code, _, err = run(
        capsys,
        monkeypatch,
        "user",
        "add",
        "--db",
        db,
        "--email",
        "b@acme.test",
        "--role",
        "admin",
        "--password-stdin",
        stdin="short\n",
    )
    assert code == 2
    assert "8 to 1024" in err
    assert (
        run(
            capsys,
            monkeypatch,
            "user",
            "passwd",
            "--db",
            db,
            "--email",
            "a@acme.test",
            "--password-stdin",
            stdin="another-horse\n",
        )[0]
        == 0
    )
    assert run(capsys, monkeypatch, "user", "disable", "--db", db, "--email", "a@acme.test")[0] == 0
    code, out, _ = run(capsys, monkeypatch, "user", "list", "--db", db)
    assert out == f"a@acme.test\tviewer\tsite:{site_id}\tdisabled"
    code, token, _ = run(
        capsys, monkeypatch, "token", "create", "--db", db, "--site", "Bay 1", "--expires-in", "30m"
    )
    assert code == 0
    assert token.startswith("cwe_")
    for bad in (["--site", "nope"], ["--site", site_id, "--expires-in", "forever"]):
        code, _, err = run(capsys, monkeypatch, "token", "create", "--db", db, *bad)
        assert code == 2
        assert err.startswith("carwash-cloud: ")
        assert "Traceback" not in err
    code, _, err = run(
        capsys, monkeypatch, "site", "add", "--db", "mysql://x/y", "--name", "n", "--region", "r"
    )
    assert code == 2
    assert "not supported" in err
    code, _, err = run(capsys, monkeypatch, "serve", "--db", f"sqlite:///{tmp_path / 'new.db'}")
    assert code == 1
    assert "not initialised" in err


def test_init_is_idempotent_on_every_database(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run(capsys, monkeypatch, "init", "--db", db_url, "--org", "Acme")
    second = run(capsys, monkeypatch, "init", "--db", db_url, "--org", "Acme")
    assert first[0] == second[0] == 0
    assert first[1].rsplit(": ", 1)[1] == second[1].rsplit(": ", 1)[1]
    assert "up to date" in first[1]  # the test database comes migrated


def test_serve_answers_and_stops_cleanly_on_sigterm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'cloud.db'}"
    run(capsys, monkeypatch, "init", "--db", db, "--org", "Acme")
    _, site_id, _ = run(
        capsys, monkeypatch, "site", "add", "--db", db, "--name", "S", "--region", "R"
    )
    _, token, _ = run(capsys, monkeypatch, "token", "create", "--db", db, "--site", site_id)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud_sync", "serve", "--db", db, "--listen", "127.0.0.1:0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            match = _LISTENING.search(line)
            if match and not url:
                url.append(match.group(1))
                found.set()

    reader = threading.Thread(target=pump, name="cloud-stderr", daemon=True)
    reader.start()
    try:
        assert found.wait(30), "".join(lines)
        with httpx.Client(base_url=url[0], timeout=10) as client:
            assert client.get("/api/v1/health").json()["schema_revision"] == "0002"
            enrolled = client.post("/api/v1/devices/enroll", json={"token": token}).json()
            key = {"Authorization": f"Bearer {enrolled['device_key']}"}
            beat = client.post(
                "/api/v1/devices/heartbeat", json={"stream_status": "online"}, headers=key
            )
            assert beat.json()["interval_s"] == 30
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        reader.join(5)
        if proc.stderr is not None:
            proc.stderr.close()
    log = "".join(lines)
    assert code == 0, log
    assert "SIGTERM received" in log
    assert "Traceback" not in log
