"""The cloud's database: engine from a URL, tables, migrations, and the dialect differences.

SQLite (one file, WAL) by default; PostgreSQL for several replicas. Everything else in the
package is written once for both: the few statements that differ live in :mod:`.dialect`.
"""

from cloud_sync.db.engine import Database, open_database
from cloud_sync.db.migrate import check_schema, head_revision, upgrade

__all__ = ["Database", "check_schema", "head_revision", "open_database", "upgrade"]
