"""The store's file format: connection settings, tables, row types, and the migrations.

Why not Alembic: the database is one embedded file owned by one process on a device nobody logs
in to. Migrations must run by themselves at start-up, in order, each in one transaction, with no
``alembic.ini``, no script folder to ship, no branches to merge and no autogenerate (which has
SQLite's ALTER TABLE limits anyway). A list of functions and a one-row version table do that in a
few lines, and keep start-up on a Raspberry Pi fast.

Migrations are frozen history: they are plain SQL and never import the ``Table`` objects below
(which describe the *current* schema, for queries). To change the schema, append a migration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.pool import StaticPool

from edge.errors import StoreError, StoreVersionError

WRITE = "carwash_write"  # execution option: this transaction writes (BEGIN IMMEDIATE)
BUSY_TIMEOUT_MS = 5000
WAL_LIMIT_BYTES = 16 * 1024 * 1024  # the WAL file is truncated to this after a checkpoint


metadata = MetaData()
config_versions = Table(
    "config_versions", metadata,
    Column("version", Integer, primary_key=True), Column("created_at", Float),
    Column("source", Text), Column("reason", Text), Column("config_json", Text),
    Column("good", Integer),
)  # fmt: skip
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True), Column("ts", Float), Column("kind", Text),
    Column("payload_json", Text),
)  # fmt: skip
outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True), Column("event_id", Integer),
    Column("created_at", Float), Column("topic", Text), Column("payload_json", Text),
    Column("idempotency_key", Text), Column("attempts", Integer), Column("last_error", Text),
    Column("kind", Text), Column("rejected_at", Float),
)  # fmt: skip
counters = Table(
    "counters", metadata, Column("name", Text, primary_key=True), Column("value", Integer)
)
# Cart rentals (edge/locks/rentals.py).
rentals = Table(
    "rentals", metadata,
    Column("id", Integer, primary_key=True), Column("cart", Integer),
    Column("unlocked_at", Float), Column("taken_at", Float), Column("returned_at", Float),
    Column("duration_s", Float), Column("event_id", Integer),
)  # fmt: skip
# Plate reads (edge/plates/store.py): the read's summary in columns for the API's filters, the
# whole read as JSON, and the plate's crop (JPEG) while the crop cap keeps it.
plate_reads = Table(
    "plate_reads", metadata,
    Column("id", Integer, primary_key=True), Column("ts", Float), Column("captured_at", Float),
    Column("snapshot_seq", Integer), Column("plate", Text), Column("score", Float),
    Column("recognizer", Text), Column("trigger", Text), Column("member_id", Text),
    Column("payload_json", Text), Column("crop_jpeg", LargeBinary), Column("event_id", Integer),
)  # fmt: skip


# Rows as the store's API returns them.
@dataclass(frozen=True, slots=True)
class Event:
    id: int
    ts: float
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    event_id: int | None
    created_at: float
    topic: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    last_error: str | None
    kind: str | None = None  # the event's kind (the cloud's ingest needs it); None: unknown
    rejected_at: float | None = None  # the cloud refused the row: kept, no longer sent


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    version: int
    created_at: float
    source: str  # 'file', 'api', 'cloud', 'rollback', 'auto-rollback'
    reason: str
    config_json: str
    good: bool | None  # None: not judged yet


@dataclass(frozen=True, slots=True)
class StoreStats:
    rows: dict[str, int]
    file_bytes: int  # database + WAL + shared-memory index
    dropped: dict[str, int]  # rows pruned by the caps, since the file was created


def _v1_initial(conn: Connection) -> None:
    # AUTOINCREMENT: ids are never reused after pruning (event ids are the SSE ids clients
    # resume from; config versions are shown to people). An outbox row keeps its own payload,
    # so pruning its event leaves it sendable (ON DELETE SET NULL).
    for sql in (
        """CREATE TABLE config_versions (
            version INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL,
            source TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', config_json TEXT NOT NULL,
            good INTEGER CHECK (good IN (0, 1)))""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kind TEXT NOT NULL,
            payload_json TEXT NOT NULL)""",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id INTEGER REFERENCES events(id) ON DELETE SET NULL,
            created_at REAL NOT NULL, topic TEXT NOT NULL, payload_json TEXT NOT NULL,
            idempotency_key TEXT NOT NULL UNIQUE, attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT)""",
        "CREATE INDEX outbox_event_id ON outbox(event_id)",
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    ):
        conn.exec_driver_sql(sql)


def _v2_rentals(conn: Connection) -> None:
    # Cart rentals (edge/locks): unlock → cart taken → cart returned. The cloud gets each one
    # through the outbox row of its `cart` event (state `returned`); this table is the local
    # record the API and the console query.
    for sql in (
        """CREATE TABLE rentals (
            id INTEGER PRIMARY KEY AUTOINCREMENT, cart INTEGER NOT NULL,
            unlocked_at REAL NOT NULL, taken_at REAL NOT NULL, returned_at REAL NOT NULL,
            duration_s REAL NOT NULL, event_id INTEGER)""",
        "CREATE INDEX rentals_cart ON rentals(cart, returned_at)",
    ):
        conn.exec_driver_sql(sql)


def _v3_plate_reads(conn: Connection) -> None:
    # Plate reads (edge/plates). The cloud gets each read through the outbox row of its
    # `plate.read` event, written in the same transaction as the read.
    for sql in (
        """CREATE TABLE plate_reads (
            id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, captured_at REAL NOT NULL,
            snapshot_seq INTEGER NOT NULL, plate TEXT NOT NULL, score REAL NOT NULL,
            recognizer TEXT NOT NULL, trigger TEXT NOT NULL, member_id TEXT,
            payload_json TEXT NOT NULL, crop_jpeg BLOB, event_id INTEGER)""",
        "CREATE INDEX plate_reads_ts ON plate_reads(ts)",
        "CREATE INDEX plate_reads_plate ON plate_reads(plate)",
        "CREATE INDEX plate_reads_member ON plate_reads(member_id) WHERE member_id IS NOT NULL",
    ):
        conn.exec_driver_sql(sql)


def _v4_outbox_kind(conn: Connection) -> None:
    # The cloud's ingest needs each event's kind. The outbox row keeps its own copy: its event
    # may be pruned (the events cap) before the row is sent, after a long outage above all.
    # `rejected_at`: the cloud refused the row itself (a kind it does not know, a payload it
    # cannot take): kept for inspection, no longer sent, pruned with the others.
    for sql in (
        "ALTER TABLE outbox ADD COLUMN kind TEXT",
        "ALTER TABLE outbox ADD COLUMN rejected_at REAL",
        "UPDATE outbox SET kind = (SELECT kind FROM events WHERE events.id = outbox.event_id)",
    ):
        conn.exec_driver_sql(sql)


# Index i holds the migration from version i to version i + 1. Append only.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_initial, _v2_rentals, _v3_plate_reads, _v4_outbox_kind,
]  # fmt: skip
SCHEMA_VERSION = len(MIGRATIONS)


def create_store_engine(path: Path) -> Engine:
    """One SQLite connection (the store serialises its callers) with the pragmas set.

    Durability: WAL with ``synchronous=NORMAL``. A commit appends to the WAL with ``write()``
    before it returns; the WAL is fsynced only at checkpoints. So a committed transaction
    survives the process crashing or being killed (``kill -9``: the data is in the OS page
    cache); only an OS crash or a power cut may lose the last transactions, never corrupt the
    file. ``FULL`` (an fsync per commit) would cover power loss too, at a cost of milliseconds per
    commit on an SD card; ``tests/integration/test_store_crash.py`` checks the kill -9 guarantee.
    """
    engine = create_engine(
        f"sqlite:///{path}",
        poolclass=StaticPool,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver must not BEGIN by itself (see _on_begin)
        cur = dbapi_conn.cursor()
        try:
            mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: SQLite refused WAL mode (got {mode!r})")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Our own BEGIN makes DDL transactional too. Writers take the write lock up front, so a
        # read-then-write transaction never fails half-way with SQLITE_BUSY.
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def migrate(engine: Engine, path: Path) -> int:
    """Bring the file to :data:`SCHEMA_VERSION`, one transaction per migration; return it.

    Raises :class:`StoreVersionError` for a file written by a newer edge (nothing is changed).
    """
    writer = engine.execution_options(**{WRITE: True})
    with writer.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        if conn.exec_driver_sql("SELECT count(*) FROM schema_version").scalar_one() == 0:
            conn.exec_driver_sql("INSERT INTO schema_version (version) VALUES (0)")
    while True:
        with writer.begin() as conn:
            current = int(conn.exec_driver_sql("SELECT version FROM schema_version").scalar_one())
            if current > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"{path} has schema version {current}, but this edge knows only up to"
                    f" {SCHEMA_VERSION}: it was written by a newer edge. Upgrade the edge, or"
                    " move the file aside to start with an empty store."
                )
            if current == SCHEMA_VERSION:
                return current
            MIGRATIONS[current](conn)
            conn.execute(text("UPDATE schema_version SET version = :v"), {"v": current + 1})
