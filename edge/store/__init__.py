"""The edge's local SQLite store (events, outbox, config versions). Imports SQLAlchemy.

Not imported by ``edge`` itself: the service imports it where it wires the store in, so light
modules (``fleet_common.wire.edge``, ``edge.cli``, ``edge.config``) stay free of SQLAlchemy.
"""

from edge.errors import StoreError, StoreVersionError
from edge.store.schema import SCHEMA_VERSION, ConfigVersion, Event, OutboxItem, StoreStats
from edge.store.store import DB_FILENAME, Store, StoreCaps

__all__ = [
    "DB_FILENAME",
    "SCHEMA_VERSION",
    "ConfigVersion",
    "Event",
    "OutboxItem",
    "Store",
    "StoreCaps",
    "StoreError",
    "StoreStats",
    "StoreVersionError",
]
