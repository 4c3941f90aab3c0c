"""Alembic's environment: always run programmatically (cloud_sync/db/migrate.py) on a connection
that is already in a transaction, never from an ``alembic.ini``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):  # pragma: no cover - a mistake of ours
    raise TypeError("cloud_sync migrations run through cloud_sync.db.migrate only")
context.configure(
    connection=connection,
    target_metadata=None,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER TABLE is limited
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
