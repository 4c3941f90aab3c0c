"""Every difference between SQLite and PostgreSQL the cloud relies on, in one place.

- upserts: ``INSERT ... ON CONFLICT`` (both speak it; SQLAlchemy builds it per dialect);
- claiming rows for work: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer at
  a time (``BEGIN IMMEDIATE``), so a plain select inside a write transaction is already a claim;
- wake-ups across replicas: ``NOTIFY``/``LISTEN`` on PostgreSQL, polling on SQLite (one file
  means one machine, so the poll is cheap);
- serialising migrations: an advisory lock on PostgreSQL, the write lock on SQLite.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Column, Connection, Select, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from cloud_sync.db.engine import Database

log = logging.getLogger("cloud.db")

_MIGRATION_LOCK: Final = 0x6361727761736801  # "carwash" + 1: pg_advisory_xact_lock's key


def _insert(conn: Connection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def insert_ignore(
    conn: Connection, table: Table, keys: Sequence[str], returning: Sequence[Column[Any]] = ()
) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING [RETURNING ...]``: execute it with the rows
    (``conn.execute(stmt, rows)``: executemany, compiled once) or give it ``.values(...)``."""
    stmt = _insert(conn, table).on_conflict_do_nothing(index_elements=list(keys))
    return stmt.returning(*returning) if returning else stmt  # type: ignore[no-any-return]


def upsert_add(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    added: Sequence[str],
) -> None:
    """Insert ``rows``; where a row with the same ``keys`` exists, add the ``added`` columns
    to it instead. One statement; the rows must have distinct keys (sort them: two writers that
    lock rows in the same order cannot deadlock)."""
    if not rows:
        return
    stmt = _insert(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + stmt.excluded[name] for name in added},
    )
    conn.execute(stmt, list(rows))  # executemany: one cached statement, not one per row count


def for_claim(conn: Connection, query: Select[Any]) -> Select[Any]:
    """``query`` as a claim of rows no other replica is claiming now (call in a write
    transaction): ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the write lock does it."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def migration_lock(conn: Connection) -> None:
    """Serialise migrations of one database (two ``init`` at once): until this transaction
    ends. SQLite's ``BEGIN IMMEDIATE`` already holds the only write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})


def notify(conn: Connection, channel: str, payload: str = "") -> None:
    """Wake the replicas listening on ``channel`` once this transaction commits (PostgreSQL);
    nothing on SQLite, whose listeners poll."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})


class Listener:
    """Blocking wake-ups on one channel, for a worker thread: :meth:`wait` returns True when
    notified (PostgreSQL ``LISTEN``), False when ``timeout`` passed. On SQLite it only waits
    for ``timeout``: callers poll, as they must anyway (a notification can be missed while a
    listener reconnects)."""

    def __init__(self, db: Database, channel: str) -> None:
        self._db = db
        self._channel = channel
        self._conn: Any = None
        self._closed = threading.Event()

    def wait(self, timeout: float) -> bool:
        if self._db.dialect != "postgresql":
            self._closed.wait(timeout)
            return False
        deadline = time.monotonic() + timeout
        try:
            conn = self._connect()
            for _ in conn.notifies(timeout=max(0.0, deadline - time.monotonic()), stop_after=1):
                return True
        except Exception as err:  # any driver failure: reconnect next time, poll now
            log.debug("listener on %s failed: %s", self._channel, err)
            self._drop()
            self._closed.wait(max(0.0, deadline - time.monotonic()))
        return False

    def _connect(self) -> Any:
        if self._conn is None:
            import psycopg

            url = self._db.engine.url.set(drivername="postgresql")
            self._conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
            self._conn.execute(f'LISTEN "{self._channel}"')
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                conn.close()

    def close(self) -> None:
        """Stop listening; call from the thread that waits, or once no :meth:`wait` runs."""
        self._closed.set()
        self._drop()
