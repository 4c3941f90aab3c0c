"""The edge's local store: events (the SSE log), the cloud outbox, and config versions.

Every method **blocks** (SQLite file I/O, up to the busy timeout): the service calls it through a
worker thread (``asyncio.to_thread``), never on the event loop. Calls are serialised by a lock, so
there is one writer at a time; the service still uses one store from one worker at a time.
Every size is capped; the oldest rows are pruned in the same transaction as an insert (every
``prune_every`` inserts, so the cost is amortised), and dropped rows are counted.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from edge.datadir import ensure_private_dir, private_file
from edge.errors import StoreError
from edge.store import schema
from edge.store.schema import WRITE, ConfigVersion, Event, OutboxItem, StoreStats
from edge.store.schema import config_versions as cv
from edge.store.schema import events as ev
from edge.store.schema import outbox as ob

DB_FILENAME = "edge.db"
MAX_ROWID = 2**63 - 1
TABLES = ("events", "outbox", "config_versions")
DropCallback = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class StoreCaps:
    """Most rows kept per table; the oldest go first. Config versions keep the last good one."""

    max_events: int = 100_000
    max_outbox: int = 100_000
    max_config_versions: int = 200
    prune_every: int = 100  # inserts per table between two pruning passes


class Store:
    """Open with :meth:`open` (or :meth:`in_dir`); :meth:`close` when done."""

    def __init__(self, path: Path, caps: StoreCaps, on_drop: DropCallback | None) -> None:
        self.path, self.caps, self._on_drop = path, caps, on_drop
        self._engine = schema.create_store_engine(path)
        self._writer = self._engine.execution_options(**{WRITE: True})
        self._lock = threading.RLock()
        self._inserts = dict.fromkeys(TABLES, 0)

    @classmethod
    def open(
        cls, path: Path, caps: StoreCaps | None = None, *, on_drop: DropCallback | None = None
    ) -> Store:
        """Open (creating if needed) and migrate the file; prune to the caps once."""
        # Plate reads and config history are for the edge's user only: the folder 0700 when
        # made here, the database 0600 (SQLite gives -wal and -shm the database's mode).
        try:
            ensure_private_dir(path.parent)
            for name in (
                path,
                path.with_name(f"{path.name}-wal"),
                path.with_name(f"{path.name}-shm"),
            ):
                if name == path or name.exists():
                    private_file(name)
        except OSError as err:
            raise StoreError(f"cannot open the store {path}: {err}") from err
        store = cls(path, caps or StoreCaps(), on_drop)
        try:
            schema.migrate(store._engine, path)
            with store._tx(write=True) as conn:
                dropped = store._prune_in(conn, force=True)
        except SQLAlchemyError as err:
            store.close()
            raise StoreError(f"cannot open the store {path}: {err}") from err
        except BaseException:
            store.close()
            raise
        store._report(dropped)
        return store

    @classmethod
    def in_dir(cls, data_dir: Path, caps: StoreCaps | None = None, **kw: Any) -> Store:
        """The store of an edge: ``DATA_DIR/edge.db``."""
        return cls.open(data_dir / DB_FILENAME, caps, **kw)

    def close(self) -> None:
        with self._lock:
            self._engine.dispose()

    def transaction(self, *, write: bool) -> AbstractContextManager[Connection]:
        """One transaction, for queries that live in another domain's store module (e.g.
        ``edge/locks/rentals.py``): serialised with every other caller; SQLAlchemy errors
        become :class:`StoreError`. Blocking, like every method here."""
        return self._tx(write)

    @contextmanager
    def _tx(self, write: bool) -> Iterator[Connection]:
        with self._lock:
            try:
                with (self._writer if write else self._engine).begin() as conn:
                    yield conn
            except SQLAlchemyError as err:
                raise StoreError(f"store {self.path}: {err}") from err

    # ------------------------------------------------------------------ events and outbox
    def add_event(
        self, kind: str, payload: Mapping[str, Any], *, outbox_topic: str | None = None
    ) -> int:
        """Append an event (and, with a topic, its outbox row, in the same transaction)."""
        with self.writing() as conn:
            return self.add_event_in(conn, kind, payload, outbox_topic=outbox_topic)

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction for :meth:`add_event_in` and another domain's rows (a plate
        read and its event commit together); the caps are applied before the commit."""
        with self._tx(write=True) as conn:
            yield conn
            dropped = self._prune_in(conn)
        self._report(dropped)

    def add_event_in(
        self, conn: Connection, kind: str, payload: Mapping[str, Any], *,
        outbox_topic: str | None = None,
    ) -> int:  # fmt: skip
        """:meth:`add_event` inside a :meth:`writing` transaction."""
        body, now = json.dumps(payload, separators=(",", ":")), time.time()
        event_id = int(
            conn.execute(
                insert(ev).values(ts=now, kind=kind, payload_json=body).returning(ev.c.id)
            ).scalar_one()
        )
        self._inserts["events"] += 1
        if outbox_topic is not None:
            conn.execute(
                insert(ob).values(
                    event_id=event_id, created_at=now, topic=outbox_topic,
                    payload_json=body, idempotency_key=uuid.uuid4().hex, attempts=0, kind=kind,
                )
            )  # fmt: skip
            self._inserts["outbox"] += 1
        return event_id

    def events_after(self, event_id: int, limit: int = 100) -> list[Event]:
        """Events with an id above ``event_id``, oldest first (resuming an SSE stream)."""
        query = select(ev).where(ev.c.id > event_id).order_by(ev.c.id).limit(limit)
        with self._tx(write=False) as conn:
            rows = conn.execute(query).all()
        return [Event(r.id, r.ts, r.kind, json.loads(r.payload_json)) for r in rows]

    def latest_event_id(self) -> int:
        """The newest event id, 0 with none."""
        with self._tx(write=False) as conn:
            return int(conn.execute(select(func.coalesce(func.max(ev.c.id), 0))).scalar_one())

    def outbox_batch(self, limit: int = 100) -> list[OutboxItem]:
        """The oldest unsent outbox rows (rejected ones too)."""
        with self._tx(write=False) as conn:
            rows = conn.execute(select(ob).order_by(ob.c.id).limit(limit)).all()
        return [_outbox_item(r) for r in rows]

    def outbox_pending(self, limit: int = 100) -> list[OutboxItem]:
        """The oldest rows still to send: not acknowledged, not rejected (the sync client)."""
        query = select(ob).where(ob.c.rejected_at.is_(None)).order_by(ob.c.id).limit(limit)
        with self._tx(write=False) as conn:
            rows = conn.execute(query).all()
        return [_outbox_item(r) for r in rows]

    def outbox_reject(self, ids: Iterable[int], error: str) -> None:
        """Stop sending these rows (the cloud refused them as they are); they stay, with the
        reason, until pruned by the outbox cap."""
        with self._tx(write=True) as conn:
            conn.execute(
                update(ob)
                .where(ob.c.id.in_(list(ids)))
                .values(rejected_at=time.time(), attempts=ob.c.attempts + 1, last_error=error)
            )

    def outbox_counts(self) -> tuple[int, int]:
        """(rows still to send, rows rejected)."""
        rejected = func.count(ob.c.rejected_at)  # counts the non-NULL ones
        with self._tx(write=False) as conn:
            total, refused = conn.execute(select(func.count(), rejected).select_from(ob)).one()
        return int(total) - int(refused), int(refused)

    def outbox_ack(self, ids: Iterable[int]) -> None:
        """Forget rows the cloud accepted."""
        with self._tx(write=True) as conn:
            conn.execute(delete(ob).where(ob.c.id.in_(list(ids))))

    def outbox_failed(self, ids: Iterable[int], error: str) -> None:
        """Count a failed delivery attempt of these rows."""
        with self._tx(write=True) as conn:
            conn.execute(
                update(ob)
                .where(ob.c.id.in_(list(ids)))
                .values(attempts=ob.c.attempts + 1, last_error=error)
            )

    # ------------------------------------------------------------------ config versions
    def save_config_version(self, config_json: str, source: str, reason: str = "") -> int:
        """Record a config that is about to be applied; its number is the new version."""
        values = {"created_at": time.time(), "source": source, "reason": reason}
        with self._tx(write=True) as conn:
            stmt = insert(cv).values(config_json=config_json, **values).returning(cv.c.version)
            version = int(conn.execute(stmt).scalar_one())
            self._inserts["config_versions"] += 1
            dropped = self._prune_in(conn)
        self._report(dropped)
        return version

    def config_versions(self, limit: int = 50) -> list[ConfigVersion]:
        """The newest versions first."""
        with self._tx(write=False) as conn:
            rows = conn.execute(select(cv).order_by(cv.c.version.desc()).limit(limit)).all()
        return [_config(r) for r in rows]

    def config_version(self, version: int) -> ConfigVersion | None:
        if not 0 <= version <= MAX_ROWID:  # no such row, and SQLite could not even bind it
            return None
        with self._tx(write=False) as conn:
            row = conn.execute(select(cv).where(cv.c.version == version)).first()
        return _config(row) if row is not None else None

    def mark_config_good(self, version: int, good: bool) -> None:
        """Judge a version (good: the stream came up with it); unknown versions are an error."""
        with self._tx(write=True) as conn:
            result = conn.execute(update(cv).where(cv.c.version == version).values(good=good))
            if result.rowcount == 0:
                raise StoreError(f"no config version {version}")

    def last_good_config(self) -> ConfigVersion | None:
        """The newest version marked good (the rollback target), if any."""
        query = select(cv).where(cv.c.good == 1).order_by(cv.c.version.desc()).limit(1)
        with self._tx(write=False) as conn:
            row = conn.execute(query).first()
        return _config(row) if row is not None else None

    # ------------------------------------------------------------------ size
    def stats(self) -> StoreStats:
        with self._tx(write=False) as conn:
            count = {t: select(func.count()).select_from(schema.metadata.tables[t]) for t in TABLES}
            rows = {t: int(conn.execute(q).scalar_one()) for t, q in count.items()}
            counted = conn.exec_driver_sql("SELECT name, value FROM counters").all()
        dropped = {str(name): int(value) for name, value in counted}
        files = [self.path, *(self.path.with_name(self.path.name + x) for x in ("-wal", "-shm"))]
        size = sum(p.stat().st_size for p in files if p.exists())
        return StoreStats(rows, size, {t: int(dropped.get(f"dropped.{t}", 0)) for t in TABLES})

    def integrity_check(self) -> str:
        """SQLite's own check: ``"ok"`` or the problems found."""
        with self._tx(write=False) as conn:
            return "\n".join(str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check"))

    def _prune_in(self, conn: Connection, *, force: bool = False) -> dict[str, int]:
        """Delete the oldest rows over the caps; count them in the same transaction."""
        caps, dropped = self.caps, {}
        if force or self._inserts["events"] >= caps.prune_every:
            # Event ids are gap-free (AUTOINCREMENT, deletes only at the old end): id arithmetic
            # keeps exactly the newest rows, with a range delete on the primary key.
            newest = select(func.max(ev.c.id)).scalar_subquery()
            n = conn.execute(delete(ev).where(ev.c.id <= newest - caps.max_events)).rowcount
            dropped["events"], self._inserts["events"] = n, 0
        if force or self._inserts["outbox"] >= caps.prune_every:
            excess = conn.execute(select(func.count()).select_from(ob)).scalar_one()
            excess -= caps.max_outbox
            if excess > 0:
                oldest = select(ob.c.id).order_by(ob.c.id).limit(excess).scalar_subquery()
                dropped["outbox"] = conn.execute(delete(ob).where(ob.c.id.in_(oldest))).rowcount
            self._inserts["outbox"] = 0
        if force or self._inserts["config_versions"] >= 1:
            newest = select(func.max(cv.c.version)).scalar_subquery()
            keep = select(cv.c.version).where(cv.c.good == 1).order_by(cv.c.version.desc())
            stmt = delete(cv).where(
                cv.c.version <= newest - caps.max_config_versions,
                cv.c.version.not_in(keep.limit(1).scalar_subquery()),
            )
            dropped["config_versions"], self._inserts["config_versions"] = (
                conn.execute(stmt).rowcount, 0
            )  # fmt: skip
        dropped = {t: n for t, n in dropped.items() if n > 0}
        for table, n in dropped.items():
            conn.exec_driver_sql(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (f"dropped.{table}", n),
            )
        return dropped

    def _report(self, dropped: dict[str, int]) -> None:
        if self._on_drop is not None:  # after the commit: metrics count what really went
            for table, n in dropped.items():
                self._on_drop(table, n)


def _outbox_item(r: Any) -> OutboxItem:
    return OutboxItem(
        r.id, r.event_id, r.created_at, r.topic, json.loads(r.payload_json), r.idempotency_key,
        r.attempts, r.last_error, kind=r.kind, rejected_at=r.rejected_at,
    )  # fmt: skip


def _config(row: Any) -> ConfigVersion:
    good = None if row.good is None else bool(row.good)
    return ConfigVersion(row.version, row.created_at, row.source, row.reason, row.config_json, good)
