"""A real PostgreSQL for the cloud's tests: its own cluster on an ephemeral port, made once per
session (``pg_createcluster``, ~3 s) and dropped at the end; a fresh database per test, copied
from a migrated template (``CREATE DATABASE ... TEMPLATE``, tens of milliseconds).

Needs root (the cluster runs as the ``postgres`` user) and Debian's ``postgresql`` package;
tests that need it are skipped with the reason when either is missing on a developer's machine,
and fail under CI (``CI`` set), where scripts/test installs both: a skipped tier must not pass.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

VERSION = "15"


@dataclass(frozen=True)
class PostgresCluster:
    name: str
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> None:
        command = (
            f'psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p {self.port} -d {database} -c "{sql}"'
        )
        subprocess.run(
            ["su", "postgres", "-c", command],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing() -> str | None:
    """Why a cluster of our own cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "a PostgreSQL cluster of its own needs root"
    if shutil.which("pg_createcluster") is None:
        return "Debian's postgresql package is not installed"
    return None


@contextlib.contextmanager
def cluster(prefix: str = "carwash_test") -> Iterator[PostgresCluster]:
    """A cluster of its own on an ephemeral port (trust auth on 127.0.0.1), dropped at the end.
    Used by the tests' session fixture and by bench/fleet."""
    made = PostgresCluster(f"{prefix}_{os.getpid()}", _free_port())
    subprocess.run(
        ["pg_createcluster", VERSION, made.name, "-p", str(made.port), "--", "--auth=trust"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        subprocess.run(
            ["pg_ctlcluster", VERSION, made.name, "start"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield made
    finally:
        subprocess.run(
            ["pg_dropcluster", "--stop", VERSION, made.name], capture_output=True, timeout=120
        )


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    reason = missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}")
        pytest.skip(reason)
    with cluster() as made:
        yield made


_numbers = itertools.count()


def fresh_database(cluster: PostgresCluster, template: str | None = None) -> str:
    """A new empty database (or a copy of ``template``); its URL."""
    name = f"cloud_{os.getpid()}_{next(_numbers)}"
    cluster.psql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return cluster.url(name)
