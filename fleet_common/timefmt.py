"""Time on the wire: RFC 3339 in UTC with a ``Z``, milliseconds, and its parsing.

One place for the format every API, event payload and log line uses, so the edge, the console
and the cloud agree on it to the character.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def rfc3339(ts: float | None = None) -> str:
    """``ts`` (a Unix time; now if None) as ``2026-12-04T15:17:18.123Z``."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 / ISO 8601 time as an aware datetime; one without an offset is taken as UTC.

    Raises ValueError on anything else (the caller turns it into its own error)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_timestamp(text: str) -> float:
    """An RFC 3339 time as a Unix time."""
    return parse_rfc3339(text).timestamp()
