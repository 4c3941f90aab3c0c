"""``GET /api/v1/rollups``: sums of hourly rollup rows, grouped by site, region, hour or day.

Cost: one grouped query over the rollup rows of the visible sites in the range (sites x hours)
and one over their duration histograms; never a scan of raw events.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Connection, func, select

from cloud_sync.auth.scope import Principal, site_clause
from cloud_sync.db.tables import regions, rollup_durations, rollups, sites
from cloud_sync.errors import Invalid
from cloud_sync.ingest import rollup
from fleet_common.timefmt import rfc3339
from fleet_common.wire.cloud import GroupBy, RollupRow

MAX_RANGE_S: Final = 400 * rollup.DAY


def _group(table: Any, group_by: GroupBy) -> tuple[list[Any], Any]:
    """The grouping columns (key, label) for ``table`` (rollups or rollup_durations)."""
    if group_by == "site":
        return [table.c.site_id, sites.c.name], sites.join(regions)
    if group_by == "region":
        return [sites.c.region_id, regions.c.name], sites.join(regions)
    return [table.c.bucket], sites.join(regions)


def query_rollups(
    conn: Connection, who: Principal, start: float, end: float, group_by: GroupBy
) -> list[RollupRow]:
    if end <= start:
        raise Invalid("`to` must be after `from`")
    if end - start > MAX_RANGE_S:
        raise Invalid("the range is longer than 400 days")
    low, high = rollup.hour_bucket(start), end

    def ranged(table: Any, *columns: Any) -> Any:
        keys, joined = _group(table, group_by)
        return (
            select(*keys, *columns)
            .select_from(table.join(joined, sites.c.id == table.c.site_id))
            .where(site_clause(who), table.c.bucket >= low, table.c.bucket < high)
            .group_by(*keys)
        )  # fmt: skip

    sums = [func.sum(rollups.c[name]).label(name) for name in (*rollup.COUNTS, *rollup.SUMS)]
    groups: dict[tuple[str, str], rollup.Delta] = {}  # (key, label) → sums
    width = 2 if group_by in ("site", "region") else 1
    for row in conn.execute(ranged(rollups, *sums)):
        delta = groups.setdefault(_key(row, group_by, width), rollup.Delta())
        delta.add(_sums(row))
    hist = ranged(rollup_durations, rollup_durations.c.slot, func.sum(rollup_durations.c.count))
    for row in conn.execute(hist.group_by(rollup_durations.c.slot)):
        delta = groups.setdefault(_key(row, group_by, width), rollup.Delta())
        slot, n = int(row[width]), int(row[width + 1])
        delta.durations[slot] = delta.durations.get(slot, 0) + n
    return [_row(key, label, d) for (key, label), d in sorted(groups.items())]


def _sums(row: Any) -> rollup.Delta:
    sums = rollup.Delta()
    for name in (*rollup.COUNTS, *rollup.SUMS):
        setattr(sums, name, row._mapping[name] or 0)
    return sums


def _key(row: Any, group_by: GroupBy, width: int) -> tuple[str, str]:
    """(key, label): a site or region id and its name; a bucket's start twice (RFC 3339
    in UTC sorts like the time itself)."""
    if width == 2:
        return str(row[0]), str(row[1])
    bucket = int(row[0])
    start = rfc3339(rollup.day_bucket(bucket) if group_by == "day" else bucket)
    return start, start


def _row(key: str, label: str, d: rollup.Delta) -> RollupRow:
    return RollupRow(
        key=key, label=label, vehicles=d.vehicles,
        plate_reads=d.plate_reads, member_recognitions=d.member_recognitions, rentals=d.rentals,
        rental_mean_s=round(d.rental_total_s / d.rentals, 3) if d.rentals else None,
        rental_p95_s=rollup.percentile(d.durations),
        uptime=round(d.online_s / d.observed_s, 4) if d.observed_s > 0 else None,
        observed_s=d.observed_s,
    )  # fmt: skip
