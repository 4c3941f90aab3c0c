"""The local store: migrations, one-transaction event + outbox, paging, caps, config versions."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection

from edge.store import SCHEMA_VERSION, Store, StoreCaps, StoreError, StoreVersionError, schema
from edge.store.schema import metadata

pytestmark = pytest.mark.unit


def _open(tmp_path: Path, **caps: int) -> Store:
    return Store.in_dir(tmp_path, StoreCaps(**caps))


def _raw(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "edge.db", isolation_level=None)


def test_migrates_an_empty_file_to_the_current_schema(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.close()
    db = _raw(tmp_path)
    try:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        for table in metadata.tables.values():  # the query model matches the migrated file
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table.name})")]
            assert columns == [c.name for c in table.columns]
    finally:
        db.close()


def test_reopening_is_idempotent_and_keeps_the_data(tmp_path: Path) -> None:
    store = _open(tmp_path)
    event_id = store.add_event("recovery", {"what": "stream"})
    store.close()
    for _ in range(2):
        store = _open(tmp_path)
        assert [e.id for e in store.events_after(0)] == [event_id]
        assert store.integrity_check() == "ok"
        store.close()
    db = _raw(tmp_path)
    assert db.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)
    db.close()


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    _open(tmp_path).close()
    db = _raw(tmp_path)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.close()
    with pytest.raises(StoreVersionError, match=r"newer edge.*move the file aside"):
        _open(tmp_path)
    db = _raw(tmp_path)
    assert db.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION + 1,)
    db.close()


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "edge.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        _open(tmp_path)


def test_event_and_outbox_row_commit_together(tmp_path: Path) -> None:
    store = _open(tmp_path)
    event_id = store.add_event("alert", {"level": "warn"}, outbox_topic="alerts")
    (item,) = store.outbox_batch(10)
    assert (item.event_id, item.topic, item.payload) == (event_id, "alerts", {"level": "warn"})
    assert item.idempotency_key
    assert item.attempts == 0
    store.add_event("stream.status", {"state": "online"})  # no topic: no outbox row
    assert len(store.outbox_batch(10)) == 1
    store.close()


def test_a_failure_between_event_and_outbox_commits_neither(tmp_path: Path) -> None:
    store = _open(tmp_path)
    before = store.add_event("alert", {"n": 1}, outbox_topic="alerts")
    db = _raw(tmp_path)  # the outbox insert fails after the event row was written
    db.execute("CREATE TRIGGER boom BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'x'); END")
    with pytest.raises(StoreError):
        store.add_event("alert", {"n": 2}, outbox_topic="alerts")
    assert store.latest_event_id() == before
    assert [i.payload for i in store.outbox_batch(10)] == [{"n": 1}]
    db.execute("DROP TRIGGER boom")
    db.close()
    assert store.add_event("alert", {"n": 3}, outbox_topic="alerts") == before + 1
    assert store.stats().rows == {"events": 2, "outbox": 2, "config_versions": 0}
    store.close()


def test_events_after_pages_in_order(tmp_path: Path) -> None:
    store = _open(tmp_path)
    assert store.latest_event_id() == 0
    ids = [store.add_event("recovery", {"i": i}) for i in range(25)]
    seen: list[int] = []
    cursor = 0
    while page := store.events_after(cursor, limit=10):
        assert len(page) <= 10
        seen += [e.id for e in page]
        cursor = page[-1].id
    assert seen == ids
    assert store.latest_event_id() == ids[-1]
    assert store.events_after(ids[-1]) == []
    assert store.events_after(ids[4], limit=1)[0].payload == {"i": 5}
    store.close()


def test_pruning_keeps_the_newest_rows_and_counts_the_drops(tmp_path: Path) -> None:
    drops: list[tuple[str, int]] = []
    caps = StoreCaps(max_events=10, max_outbox=5, prune_every=3)
    store = Store.in_dir(tmp_path, caps, on_drop=lambda table, n: drops.append((table, n)))
    ids = [store.add_event("k", {"i": i}, outbox_topic="t") for i in range(30)]
    stats = store.stats()
    # Pruning runs every 3 inserts: at most prune_every - 1 rows over the cap in between.
    assert 10 <= stats.rows["events"] < 10 + 3
    assert 5 <= stats.rows["outbox"] < 5 + 3
    assert [e.id for e in store.events_after(0, 100)] == ids[-stats.rows["events"] :]
    assert [i.event_id for i in store.outbox_batch(100)] == ids[-stats.rows["outbox"] :]
    assert stats.dropped["events"] == 30 - stats.rows["events"]
    assert stats.dropped["outbox"] == 30 - stats.rows["outbox"]
    assert sum(n for t, n in drops if t == "events") == stats.dropped["events"]
    assert sum(n for t, n in drops if t == "outbox") == stats.dropped["outbox"]
    assert stats.file_bytes > 0
    store.close()
    # Lower caps apply on open; the drop counts survive a restart.
    store = Store.in_dir(tmp_path, StoreCaps(max_events=4, max_outbox=2))
    stats = store.stats()
    assert (stats.rows["events"], stats.rows["outbox"]) == (4, 2)
    assert (stats.dropped["events"], stats.dropped["outbox"]) == (26, 28)
    assert [e.id for e in store.events_after(0)] == ids[-4:]
    store.close()


def test_outbox_ack_and_failed_attempts(tmp_path: Path) -> None:
    store = _open(tmp_path)
    for i in range(4):
        store.add_event("k", {"i": i}, outbox_topic="t")
    first, second, *_ = store.outbox_batch(2)
    store.outbox_failed([first.id, second.id], "HTTP 503")
    store.outbox_ack([first.id])
    batch = store.outbox_batch(10)
    assert [i.id for i in batch][:1] == [second.id]
    assert (batch[0].attempts, batch[0].last_error) == (1, "HTTP 503")
    assert len(batch) == 3
    assert len({i.idempotency_key for i in batch}) == 3
    store.close()


def test_config_versions_and_the_last_good_one(tmp_path: Path) -> None:
    store = _open(tmp_path, max_config_versions=3)
    assert store.last_good_config() is None
    v1 = store.save_config_version('{"a": 1}', "file", "start-up")
    store.mark_config_good(v1, True)
    v2 = store.save_config_version('{"a": 2}', "api", "operator changed quality")
    store.mark_config_good(v2, False)
    newer = [store.save_config_version(f'{{"a": {i}}}', "api", "") for i in range(3, 7)]
    assert [c.version for c in store.config_versions(10)] == [*reversed(newer[-3:]), v1]
    good = store.last_good_config()
    assert good is not None
    assert (good.version, good.config_json, good.source) == (v1, '{"a": 1}', "file")
    assert good.good is True
    assert store.config_version(v2) is None  # pruned; the last good one is kept
    latest = store.config_version(newer[-1])
    assert latest is not None
    assert latest.good is None
    assert store.stats().dropped["config_versions"] == 2
    with pytest.raises(StoreError, match="no config version 999"):
        store.mark_config_good(999, True)
    store.mark_config_good(newer[-1], True)
    assert store.last_good_config() == store.config_version(newer[-1])
    store.close()


def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _open(tmp_path).close()

    def broken(conn: Connection) -> None:
        conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError, match="migration bug"):
        _open(tmp_path)
    db = _raw(tmp_path)  # the DDL was rolled back with the version bump
    assert db.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchall() == []
    db.close()


def test_calls_from_several_threads_are_serialised(tmp_path: Path) -> None:
    store = _open(tmp_path)
    ids: list[int] = []

    def write() -> None:
        ids.extend(store.add_event("k", {}, outbox_topic="t") for _ in range(50))

    threads = [threading.Thread(target=write, name=f"store-writer-{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ids) == list(range(1, 201))
    assert store.stats().rows == {"events": 200, "outbox": 200, "config_versions": 0}
    store.close()


def test_outbox_rows_keep_their_kind_and_rejected_rows_are_not_pending(tmp_path: Path) -> None:
    store = _open(tmp_path)
    ids = [store.add_event(kind, {"i": i}, outbox_topic="t")
           for i, kind in enumerate(("plate.read", "cart", "test.tick"))]  # fmt: skip
    store.add_event("stream", {})  # no outbox row
    pending = store.outbox_pending(10)
    assert [(i.event_id, i.kind) for i in pending] == list(
        zip(ids, ("plate.read", "cart", "test.tick"), strict=True)
    )
    assert store.outbox_counts() == (3, 0)
    store.outbox_reject([pending[2].id], "kind test.tick: not one the cloud accepts")
    assert [i.kind for i in store.outbox_pending(10)] == ["plate.read", "cart"]
    assert store.outbox_counts() == (2, 1)
    (rejected,) = [i for i in store.outbox_batch(10) if i.rejected_at is not None]
    assert (rejected.attempts, rejected.last_error) == (
        1,
        "kind test.tick: not one the cloud accepts",
    )
    store.outbox_ack([pending[0].id])
    assert store.outbox_counts() == (1, 1)
    store.close()


def test_migration_4_gives_existing_outbox_rows_their_event_kind(tmp_path: Path) -> None:
    # A store at version 3 (before the outbox kept the kind), with one row whose event is gone.
    db = sqlite3.connect(tmp_path / "edge.db", isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (0)")
    engine = schema.create_store_engine(tmp_path / "edge.db")
    with engine.begin() as conn:
        for migration in schema.MIGRATIONS[:3]:
            migration(conn)
        conn.exec_driver_sql("UPDATE schema_version SET version = 3")
        conn.exec_driver_sql(
            "INSERT INTO events (id, ts, kind, payload_json) VALUES (1, 1.0, 'cart', '{}')"
        )
        for n, event_id in ((1, 1), (2, None)):
            conn.exec_driver_sql(
                "INSERT INTO outbox (event_id, created_at, topic, payload_json, idempotency_key)"
                " VALUES (?, 1.0, 't', '{}', ?)",
                (event_id, f"key{n}"),
            )
    engine.dispose()
    db.close()
    store = _open(tmp_path)
    assert [(i.idempotency_key, i.kind) for i in store.outbox_pending(10)] == [
        ("key1", "cart"), ("key2", None),
    ]  # fmt: skip
    store.close()
