"""The metrics catalogue as tests see it: scripts/metrics_catalogue.py run in a fresh interpreter
(its own registries, nothing shared with the test process), and PromQL's metric names."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "metrics_catalogue.py"
DOC = ROOT / "docs" / "metrics.md"

#: Series Prometheus itself makes (not in any registry of ours).
PROMETHEUS_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"})


def run_script(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@cache
def rows() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(run_script("--json")))


def series_names() -> frozenset[str]:
    """Every name a PromQL selector may use for our metrics."""
    return frozenset(s for row in rows() for s in row["series"])


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}|\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
})  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, keywords,
    label names in matchers or groupings, strings or durations."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {m for m in _IDENT.findall(text) if m.lower() not in _KEYWORDS}


def series_name(series: str) -> str:
    """The metric name of a promtool ``input_series`` selector (``name{label="v"}``)."""
    return series.split("{", 1)[0].strip()
