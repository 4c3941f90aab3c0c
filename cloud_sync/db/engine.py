"""Engines from a URL: ``sqlite:///path`` (WAL, foreign keys, busy timeout) or
``postgresql+psycopg://user@host:port/db``.

:class:`Database` hands out transactions: :meth:`Database.write` takes SQLite's write lock up
front (``BEGIN IMMEDIATE``), so a read-then-write transaction never fails half-way with
"database is locked"; on PostgreSQL both are plain transactions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cloud_sync.errors import DatabaseError, UsageError

WRITE: Final = "carwash_write"  # execution option: this transaction writes
BUSY_TIMEOUT_MS: Final = 10_000


@dataclass(frozen=True, slots=True)
class Database:
    engine: Engine
    dialect: str  # "sqlite" or "postgresql"

    @property
    def url(self) -> str:
        """The URL without its password (for logs and /api/v1/health)."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One writing transaction; committed on success, rolled back on an exception."""
        with _translated(), self.engine.execution_options(**{WRITE: True}).begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with _translated(), self.engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as err:
        # The first line only: the rest is the statement and its parameters.
        raise DatabaseError(f"database error: {str(err).splitlines()[0]}") from err


def open_database(url: str, *, pool_size: int = 10) -> Database:
    """An engine for ``url``; nothing is connected yet. UsageError for a URL we do not serve."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise UsageError(f"--db {url!r} is not a database URL (sqlite:///PATH or "
                         "postgresql+psycopg://USER@HOST:PORT/DB)") from err  # fmt: skip
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise UsageError("--db sqlite needs a file: sqlite:///PATH")
        engine = create_engine(
            parsed,
            pool_size=pool_size,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        )
        _sqlite_pragmas(engine)
        return Database(engine, "sqlite")
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise UsageError("--db PostgreSQL URLs use the psycopg driver: postgresql+psycopg://")
        engine = create_engine(
            parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
        return Database(engine, "postgresql")
    raise UsageError(f"--db: {backend!r} is not supported; use sqlite:/// or postgresql+psycopg://")


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver must not BEGIN by itself (see _on_begin)
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
