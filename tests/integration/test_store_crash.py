"""The store under ``kill -9``: a committed event (and its outbox row) is never lost.

A subprocess writes events in a loop and prints each id after its commit returned; the test kills
it at a random point of its loop (after 5..200 ids; often mid-transaction), then reopens the file:
it must open cleanly, pass SQLite's integrity check, and hold every printed id with its outbox row.
WAL with ``synchronous=NORMAL`` is enough for this: the commit is in the OS page cache, which a
killed process does not take with it.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.store import Store
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 50


def _write_then_kill(db: Path, stop_after: int) -> list[int]:
    """Start a writer, read ``stop_after`` committed ids, SIGKILL it; return the ids read."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.store_writer", str(db)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    ids: list[int] = []
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        while len(ids) < stop_after:
            line = proc.stdout.readline()
            assert line, f"writer died: {proc.stderr.read()}"
            ids.append(int(line))
        proc.kill()  # SIGKILL: no atexit, no rollback, no close
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -9
    return ids


@pytest.mark.timeout(120)
def test_every_printed_event_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    started = time.monotonic()
    committed: list[int] = []
    for kill in range(KILLS):
        committed += _write_then_kill(db, rng.randint(5, 200))
        store = Store.open(db)
        try:
            assert store.integrity_check() == "ok", f"after kill {kill + 1}"
            present = {e.id for e in store.events_after(0, limit=len(committed) + 1000)}
            missing = sorted(set(committed) - present)
            assert not missing, f"after kill {kill + 1}: committed ids lost: {missing[:20]}"
            with_outbox = {i.event_id for i in store.outbox_batch(len(committed) + 1000)}
            assert set(committed) <= with_outbox, f"after kill {kill + 1}: outbox rows lost"
        finally:
            store.close()
    elapsed = time.monotonic() - started
    print(f"{KILLS} kills, {len(committed)} committed events checked in {elapsed:.1f} s")
