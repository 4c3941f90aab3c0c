"""A real ``carwash-cloud serve`` process on an ephemeral port, with an organisation, a site,
an admin user, and enrolment tokens on demand (written to its SQLite file directly); and
:func:`serve`, a bare ``carwash-cloud serve`` on any database (the replica test, bench/fleet)."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cloud_sync import admin
from cloud_sync.auth.passwords import HashCost
from cloud_sync.db import open_database
from tests.conftest import ROOT
from tests.support.procs import stop_process

ADMIN = "admin@acme.test"
PASSWORD = "password-1"  # noqa: S105 - the test admin's password
_LISTENING = re.compile(r"listening on http://[\d.]+:(\d+)")


@dataclass
class Served:
    url: str
    pid: int
    lines: list[str] = field(default_factory=list)  # its stderr so far


@contextlib.contextmanager
def serve(
    db_url: str, timeout_s: float = 30.0, python_args: Sequence[str] = ()
) -> Iterator[Served]:
    """A real ``carwash-cloud serve --db DB_URL`` on 127.0.0.1:0 (the database initialised
    already); SIGTERM at the end (``kill`` after 20 s). ``python_args`` go before ``-m``
    (bench/fleet's ``-m cProfile -o FILE``)."""
    proc = subprocess.Popen(
        [sys.executable, *python_args, "-m", "cloud_sync", "serve", "--db", db_url,
         "--listen", "127.0.0.1:0"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    served = Served("", proc.pid)
    found = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            served.lines.append(line)
            match = _LISTENING.search(line)
            if match and not found.is_set():
                served.url = f"http://127.0.0.1:{match.group(1)}"
                found.set()

    reader = threading.Thread(target=pump, name="cloud-stderr", daemon=True)
    reader.start()
    try:
        if not found.wait(timeout_s):
            raise RuntimeError("the cloud did not start:\n" + "".join(served.lines))
        yield served
    finally:
        stop_process(proc, reader, 20.0)


class CloudProcess:
    def __init__(self, folder: Path) -> None:
        self.path = folder / "cloud.db"
        self.db_url = f"sqlite:///{self.path}"
        db = open_database(self.db_url)
        try:
            admin.init(db, "Acme")
            self.site_id = admin.site_add(db, "Bay site", "North")
            admin.add_user(db, ADMIN, "admin", PASSWORD, cost=HashCost(1, 1024, 1))
        finally:
            db.dispose()
        self.port = 0
        self.lines: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self) -> str:
        db = open_database(self.db_url)
        try:
            return admin.token_create(db, self.site_id, "1h")
        finally:
            db.dispose()

    def start(self, timeout_s: float = 30.0) -> None:
        self._proc = proc = subprocess.Popen(
            [sys.executable, "-m", "cloud_sync", "serve", "--db", self.db_url,
             "--listen", "127.0.0.1:0"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        found = threading.Event()

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.lines.append(line)
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    self.port = int(match.group(1))
                    found.set()

        self._pump = threading.Thread(target=pump, name="cloud-stderr", daemon=True)
        self._pump.start()
        if not found.wait(timeout_s):
            self.stop()
            raise RuntimeError("the cloud did not start:\n" + "".join(self.lines))

    def stop(self) -> int:
        if self._proc is None:
            return 0
        code = stop_process(self._proc, self._pump, 20.0)
        self._proc = None
        return code

    def events(self, device_id: str) -> list[tuple[str, str]]:
        """(key, kind) of every event the cloud stored for ``device_id``."""
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT key, kind FROM events WHERE device_id = ? ORDER BY id", (device_id,)
            ).fetchall()
        finally:
            db.close()
        return [(str(k), str(kind)) for k, kind in rows]
