"""docs/metrics.md is generated from the real registries and follows Prometheus naming."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import create_engine
from sqlalchemy.pool import QueuePool

from cloud_sync.metrics import CloudMetrics
from tests.support.metrics_catalogue import DOC, promql_metric_names, rows, run_script

pytestmark = pytest.mark.unit

#: Existing names that break a rule below, kept so that dashboards and alerts do not break.
#: Renaming is M1's follow-up; a NEW metric must never be added here.
ALLOWED_OFFENDERS: frozenset[str] = frozenset()

#: The client library's standard process metrics: their names are Prometheus's own convention.
STANDARD = re.compile(r"process_\w+")
SECTION_PREFIX = {"edge": "carwash_edge_", "edge_sync": "carwash_edge_sync_",
                  "cloud": "carwash_cloud_"}  # fmt: skip
TIME_WORDS = frozenset({"duration", "latency", "lag", "age", "interval", "wait", "time",
                        "timestamp", "elapsed", "uptime", "delay", "timeout"})  # fmt: skip
SIZE_WORDS = frozenset({"bytes", "size", "memory", "rss"})
NOT_BASE_UNITS = frozenset({"ms", "millis", "milliseconds", "us", "microseconds", "minutes",
                            "hours", "days", "kb", "kib", "mb", "mib", "gb", "gib", "percent",
                            "fahrenheit", "kelvin"})  # fmt: skip
RESERVED_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created", "_info")


def naming_offences(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per row that breaks Prometheus naming, prefixed with the metric's name."""
    out = []
    for row in rows:
        name, kind, section = row["name"], row["type"], row["section"]
        if STANDARD.fullmatch(name):
            continue
        words = name.split("_")
        problems = []
        prefix = SECTION_PREFIX.get(section, "carwash_")
        if not name.startswith(prefix):
            problems.append(f"no {prefix} prefix")
        if kind == "counter" and row["series"] != [name + "_total"]:
            problems.append("a counter must be queried as NAME_total")
        if name.endswith(RESERVED_SUFFIXES):
            problems.append("ends in a suffix the exposition reserves (_total, _count, ...)")
        if TIME_WORDS & set(words) and not name.endswith("_seconds"):
            problems.append("a time must be in _seconds")
        if SIZE_WORDS & set(words) and not name.endswith("_bytes"):
            problems.append("a size must be in _bytes")
        if NOT_BASE_UNITS & set(words):
            problems.append("not a base unit (seconds, bytes, celsius, ratio)")
        out += [f"{name}: {p}" for p in problems]
    return out


def test_docs_metrics_md_is_up_to_date() -> None:
    fresh = run_script()
    assert DOC.read_text(encoding="utf-8") == fresh, (
        "docs/metrics.md is stale: python scripts/metrics_catalogue.py > docs/metrics.md"
    )


def test_catalogue_covers_edge_sync_and_cloud() -> None:
    names: dict[str, set[str]] = {row["section"]: set() for row in rows()}
    for row in rows():
        names[row["section"]].add(row["name"])
    assert {"edge", "edge_sync", "cloud"} <= names.keys()
    assert "carwash_edge_frame_age_seconds" in names["edge"]
    assert "carwash_edge_sync_outbox_rows" in names["edge_sync"]
    assert "carwash_cloud_db_pool_connections" in names["cloud"]  # a custom collector
    labels = {row["name"]: row["labels"] for row in rows()}
    assert labels["carwash_edge_http_request_duration_seconds"] == ["method", "route"]
    assert labels["carwash_cloud_db_pool_connections"] == ["state"]


def test_metric_names_are_unique_across_edge_and_cloud() -> None:
    names = [row["name"] for row in rows()]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_names_follow_prometheus_conventions() -> None:
    offences = [o for o in naming_offences(rows()) if o.split(":")[0] not in ALLOWED_OFFENDERS]
    assert offences == [], "\n".join(offences)


def test_allow_list_holds_only_existing_offenders() -> None:
    offenders = {o.split(":")[0] for o in naming_offences(rows())}
    assert offenders >= ALLOWED_OFFENDERS, "fixed: drop from ALLOWED_OFFENDERS"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"name": "edge_frames", "type": "gauge", "section": "edge"}, "no carwash_edge_ prefix"),
        ({"name": "carwash_edge_sync_x", "type": "gauge", "section": "cloud"},
         "no carwash_cloud_ prefix"),
        ({"name": "carwash_edge_queue_wait_ms", "type": "gauge", "section": "edge"},
         "a time must be in _seconds"),
        ({"name": "carwash_edge_frame_age", "type": "gauge", "section": "edge"},
         "a time must be in _seconds"),
        ({"name": "carwash_edge_cache_size", "type": "gauge", "section": "edge"},
         "a size must be in _bytes"),
        ({"name": "carwash_edge_cache_mb", "type": "gauge", "section": "edge"},
         "not a base unit"),
        ({"name": "carwash_edge_reads_total", "type": "gauge", "section": "edge"},
         "reserves"),
        ({"name": "carwash_edge_reads", "type": "counter", "section": "edge",
          "series": ["carwash_edge_reads"]}, "NAME_total"),
    ],
)  # fmt: skip
def test_naming_check_reports_offenders(row: dict[str, Any], problem: str) -> None:
    offences = naming_offences([{"series": [row["name"]], **row}])
    assert any(problem in o for o in offences), offences


def test_cloud_latency_bucket_label_used_by_the_rules() -> None:
    """rules.yml reads the 5 s bucket as le="5.0" (the histogram tops out at 5 s, so a p99 above
    it is the share of requests past that bucket)."""
    metrics = CloudMetrics(create_engine("sqlite://", poolclass=QueuePool))
    metrics.latency.labels("/x").observe(1.0)
    text = generate_latest(metrics.registry).decode()
    assert 'carwash_cloud_request_seconds_bucket{le="5.0",route="/x"} 1.0' in text


def test_promql_metric_names() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (instance, le) (rate(a_bucket{route="/x"}[5m])))'
        ' > 0.1 and on (instance) up{job="e"} == 0 unless b offset 5m * 1e3'
    )
    assert promql_metric_names(expr) == {"a_bucket", "up", "b"}
