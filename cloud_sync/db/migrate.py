"""Alembic run from code: ``init`` upgrades to the newest revision, ``serve`` checks it.

No ``alembic.ini``: the script folder ships inside the package and the configuration is built
here, so an installed wheel migrates its database with nothing else on the machine.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from cloud_sync.db import dialect
from cloud_sync.db.engine import Database
from cloud_sync.errors import SchemaError
from fleet_common.version import VERSION

log = logging.getLogger("cloud.db")

_SCRIPTS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None  # noqa: S101 - the package ships at least one migration
    return head


def current_revision(db: Database) -> str | None:
    with db.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the database to the newest revision in one transaction; (before, after).

    Two ``init`` at once on PostgreSQL wait for each other (an advisory lock), so the second
    finds the work done. SchemaError for a database written by a newer cloud."""
    config = _config()
    with db.write() as conn:
        dialect.migration_lock(conn)
        before = MigrationContext.configure(conn).get_current_revision()
        _refuse_newer(before)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    after = head_revision()
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)
    return before, after


def check_schema(db: Database) -> str:
    """The database's revision if it is this version's newest; SchemaError otherwise."""
    current = current_revision(db)
    head = head_revision()
    if current is None:
        raise SchemaError(
            f"{db.url} is not initialised: run `carwash-cloud init --db URL --org NAME` first"
        )
    _refuse_newer(current)
    if current != head:
        raise SchemaError(
            f"{db.url} has schema {current}, this cloud needs {head}: run `carwash-cloud init"
            " --db URL --org NAME` to migrate it (back up the database first)"
        )
    return current


def _refuse_newer(revision: str | None) -> None:
    """A revision this version does not know was written by a newer cloud: never touch it."""
    if revision is None:
        return
    try:
        ScriptDirectory.from_config(_config()).get_revision(revision)
    except CommandError as err:
        raise SchemaError(
            f"the database has schema {revision}, which this cloud ({VERSION}) does not know:"
            " it was written by a newer carwash-cloud. Upgrade carwash-cloud."
        ) from err
