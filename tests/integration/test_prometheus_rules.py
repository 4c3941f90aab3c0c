"""resources/monitoring: promtool accepts the example config and the rules, the rules' unit tests
pass (and fail on a broken rule), and every metric they name is in the catalogue."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.metrics_catalogue import (
    PROMETHEUS_SERIES,
    ROOT,
    promql_metric_names,
    series_name,
    series_names,
)

pytestmark = pytest.mark.integration

MONITORING = ROOT / "resources" / "monitoring"


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe is not None, "promtool not found: apt-get install prometheus (scripts/test does)"
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def load(name: str) -> Any:
    return yaml.safe_load((MONITORING / name).read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [rule for group in load("rules.yml")["groups"] for rule in group["rules"]]


def test_promtool_check_config() -> None:
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_check_rules() -> None:
    done = promtool("check", "rules", "rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_test_rules() -> None:
    done = promtool("test", "rules", "rules_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    shutil.copy(MONITORING / "rules_test.yml", tmp_path)
    text = (MONITORING / "rules.yml").read_text(encoding="utf-8")
    broken = text.replace(
        "carwash_edge_temperature_celsius > 80", "carwash_edge_temperature_celsius > 90"
    )
    assert broken != text
    (tmp_path / "rules.yml").write_text(broken, encoding="utf-8")
    done = promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
    assert done.returncode != 0
    assert "EdgeCpuHot" in done.stdout + done.stderr


def test_rules_use_only_metrics_in_the_catalogue() -> None:
    known = series_names() | PROMETHEUS_SERIES
    unknown = {rule["alert"]: sorted(promql_metric_names(rule["expr"]) - known) for rule in rules()}
    assert {alert: names for alert, names in unknown.items() if names} == {}
    used = set().union(*(promql_metric_names(rule["expr"]) for rule in rules()))
    assert "carwash_edge_frame_age_seconds" in used  # the parser does find names


def test_rule_tests_feed_only_metrics_in_the_catalogue() -> None:
    known = series_names() | PROMETHEUS_SERIES
    fed = {
        series_name(series["series"])
        for case in load("rules_test.yml")["tests"]
        for series in case["input_series"]
    }
    assert sorted(fed - known) == []


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in load("rules_test.yml")["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules()}
    assert len(alerts) == len(rules()), "alert names must be unique"
    assert sorted(alerts - firing) == []
    assert sorted(alerts - quiet) == []


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("amtool")
    assert exe is not None, "amtool not found: apt-get install prometheus-alertmanager"
    return subprocess.run(
        [exe, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120, check=False
    )


def test_amtool_check_config() -> None:
    done = amtool("check-config", "alertmanager.yml")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "alertname=EdgeStreamOffline"], "ops-slack,ops-webhook,ops-email"),
        (["severity=warning", "alertname=EdgeCpuHot"], "ops-webhook,ops-email"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receivers: str) -> None:
    done = amtool("config", "routes", "test", "--config.file=alertmanager.yml",
                  f"--verify.receivers={receivers}", *labels)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_alertmanager_routes_only_alerts_the_rules_raise() -> None:
    """Every alertname the routing and inhibition name matches an alert of rules.yml."""
    alerts = {rule["alert"] for rule in rules()}
    text = (MONITORING / "alertmanager.yml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    patterns = [
        m.split("=", 1)[1].strip("~\"'")
        for inhibit in config["inhibit_rules"]
        for m in inhibit["source_matchers"] + inhibit["target_matchers"]
        if m.startswith("alertname=")  # =~ too; not the negative !~
    ]
    assert patterns
    for pattern in patterns:
        assert any(re.fullmatch(pattern, a) for a in alerts), pattern
