"""Alert rules: every code, its thresholds at and around the boundary, since-keeping, tracker."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from console.services.alerts import (
    M_BOARDS_DOWN,
    M_CARTS_FAULT,
    M_FRAME_AGE,
    M_TEMPERATURE,
    Alert,
    AlertThresholds,
    AlertTracker,
    evaluate,
)
from console.services.device import Device
from fleet_common.wire.edge import (
    CacheStats,
    ComponentHealth,
    Health,
    HealthStatus,
    SnapshotInfo,
    SnapshotMeta,
    SourceInfo,
    StreamStatus,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 15, 0, 0, tzinfo=UTC)
DEV = Device(key="dev-1", url="http://10.0.0.5:8080", name="bay 1", site="north",
             source="zeroconf", online=True)  # fmt: skip


def health(stream: StreamStatus = "online", /, **components: HealthStatus) -> Health:
    parts = {"camera": ComponentHealth(status="ok")}
    parts.update(
        {name: ComponentHealth(status=s, detail="bus timeout") for name, s in components.items()}
    )
    return Health(status="ok", id="dev-1", name="bay 1", site="north", version="1.0",
                  uptime_s=10.0, stream_status=stream, components=parts)  # fmt: skip


def info(age_ms: float | None = 100.0, stream: StreamStatus = "online") -> SnapshotInfo:
    latest = None
    if age_ms is not None:
        latest = SnapshotMeta(seq=5, captured_at="2026-11-24T14:59:59Z", age_ms=age_ms,
                              width=320, height=180, bytes=1000, keyframe=True)  # fmt: skip
    source = SourceInfo(
        scheme="synthetic", url="synthetic://", connected=True, last_error=None, sessions=1,
        codec=None, keyframe_interval_s=None, fps_in=5.0, fps_decoded=5.0, frames_received=10,
        frames_decoded=10, decode_ms=None, decode_lag_ms=None, full_decode=False,
    )  # fmt: skip
    return SnapshotInfo(stream_status=stream, latest=latest, source=source,
                        cache=CacheStats(snapshots=1, bytes=1000, max_bytes=10**6))  # fmt: skip


def codes(alerts: list[Alert]) -> list[tuple[str, str]]:
    return [(a.code, a.severity) for a in alerts]


def run(h: Health | None = None, i: SnapshotInfo | None = None, m: dict[str, float] | None = None,
        **kwargs: Any) -> list[Alert]:  # fmt: skip
    return evaluate(DEV, h, i, m or {}, now=NOW, **kwargs)


# ---------------------------------------------------------------------- healthy
def test_a_healthy_edge_has_no_alerts() -> None:
    assert run(health(), info(), {M_TEMPERATURE: 50.0, M_FRAME_AGE: 0.1}) == []


# ---------------------------------------------------------------------- offline
@pytest.mark.parametrize(
    ("gone_s", "offline"), [(0.0, False), (9.9, False), (10.0, False), (10.1, True), (3600, True)]
)
def test_unreachable_is_offline_only_after_the_grace(gone_s: float, offline: bool) -> None:
    alerts = run(last_seen=NOW - timedelta(seconds=gone_s))
    assert codes(alerts) == ([("offline", "critical")] if offline else [])
    if offline:
        assert alerts[0].since == NOW - timedelta(seconds=gone_s)  # when it stopped answering
        assert "no answer for" in alerts[0].message
        assert alerts[0].message.startswith("bay 1: ")


def test_unreachable_with_unknown_last_contact_is_offline_at_once() -> None:
    alerts = run()
    assert codes(alerts) == [("offline", "critical")]
    assert alerts[0].since == NOW
    assert alerts[0].key == "dev-1:offline"
    assert alerts[0].device_key == "dev-1"


def test_an_unreachable_edge_is_judged_on_reachability_only() -> None:
    # Metrics from an earlier scrape say nothing about now: no hot, no lock fault.
    alerts = run(None, None, {M_TEMPERATURE: 99.0, M_BOARDS_DOWN: 2.0})
    assert codes(alerts) == [("offline", "critical")]


@pytest.mark.parametrize(
    ("h", "i"),
    [
        (health("offline"), None),
        (None, info(None, "offline")),
        (health("online"), info(50, "offline")),
    ],
)
def test_stream_offline_is_offline(h: Health | None, i: SnapshotInfo | None) -> None:
    alerts = run(h, i)
    assert codes(alerts) == [("offline", "critical")]
    assert "camera stream offline" in alerts[0].message


def test_info_is_preferred_over_health_for_the_stream() -> None:
    # info is the more specific answer: it says online, health (older) said offline.
    assert run(health("offline"), info(100, "online")) == []


# ---------------------------------------------------------------------- stale
@pytest.mark.parametrize(("age_ms", "stale"), [(4999, False), (5000, False), (5001, True)])
def test_stale_from_snapshot_info(age_ms: float, stale: bool) -> None:
    alerts = run(health(), info(age_ms, "degraded"))
    assert codes(alerts) == ([("stale", "warning")] if stale else [])
    if stale:
        assert "5.0 s old" in alerts[0].message


@pytest.mark.parametrize(("seconds", "stale"), [(4.0, False), (6.0, True), (math.nan, False)])
def test_stale_from_the_metric_without_info(seconds: float, stale: bool) -> None:
    assert codes(run(health(), None, {M_FRAME_AGE: seconds})) == (
        [("stale", "warning")] if stale else []
    )


def test_no_stale_on_top_of_offline() -> None:
    assert codes(run(health("offline"), info(60_000, "offline"))) == [("offline", "critical")]


def test_custom_thresholds() -> None:
    strict = AlertThresholds(stale_ms=500, offline_after_s=1, hot_c=60, critical_hot_c=70)
    assert codes(run(health(), info(600), thresholds=strict)) == [("stale", "warning")]
    assert codes(run(last_seen=NOW - timedelta(seconds=2), thresholds=strict)) == [
        ("offline", "critical")
    ]
    assert codes(run(health(), info(), {M_TEMPERATURE: 65}, thresholds=strict)) == [
        ("hot", "warning")
    ]


# ---------------------------------------------------------------------- hot
@pytest.mark.parametrize(
    ("temp", "expected"),
    [
        (74.9, []),
        (75.0, [("hot", "warning")]),
        (84.9, [("hot", "warning")]),
        (85.0, [("hot", "critical")]),
        (math.nan, []),  # no thermal zone on this edge
        (math.inf, []),
    ],
)
def test_hot(temp: float, expected: list[tuple[str, str]]) -> None:
    alerts = run(health(), info(), {M_TEMPERATURE: temp})
    assert codes(alerts) == expected
    if expected:
        assert alerts[0].message == f"bay 1: {temp:.0f} °C"


# ---------------------------------------------------------------------- lock fault
@pytest.mark.parametrize(
    ("metrics", "components", "expected", "text"),
    [
        ({M_CARTS_FAULT: 1.0}, {}, "warning", "1 cart in fault"),
        ({M_CARTS_FAULT: 3.0}, {}, "warning", "3 carts in fault"),
        ({M_BOARDS_DOWN: 1.0}, {}, "critical", "1 lock board not answering"),
        ({M_BOARDS_DOWN: 2.0, M_CARTS_FAULT: 1.0}, {}, "critical",
         "2 lock boards not answering, 1 cart in fault"),
        ({}, {"locks": "degraded"}, "warning", "locks degraded: bus timeout"),
        ({}, {"locks": "failing"}, "critical", "locks failing: bus timeout"),
        ({M_CARTS_FAULT: 1.0}, {"locks": "failing"}, "critical", "1 cart in fault"),
    ],
)  # fmt: skip
def test_lock_fault(
    metrics: dict[str, float], components: dict[str, HealthStatus], expected: str, text: str
) -> None:
    alerts = run(health(**components), info(), metrics)
    assert codes(alerts) == [("lock_fault", expected)]
    assert alerts[0].message == f"bay 1: {text}"


def test_no_lock_fault_when_all_is_well() -> None:
    metrics = {M_CARTS_FAULT: 0.0, M_BOARDS_DOWN: 0.0, 'carwash_edge_lock_carts{state="locked"}': 4}
    assert run(health(locks="ok"), info(), metrics) == []


# ---------------------------------------------------------------------- several, order, since
def test_several_alerts_most_severe_first() -> None:
    alerts = run(health(), info(9000), {M_TEMPERATURE: 90.0, M_CARTS_FAULT: 1.0})
    assert codes(alerts) == [("hot", "critical"), ("lock_fault", "warning"), ("stale", "warning")]
    assert {a.key for a in alerts} == {"dev-1:hot", "dev-1:lock_fault", "dev-1:stale"}


def test_since_is_kept_while_the_condition_holds() -> None:
    first = run(health(), info(9000))
    later = evaluate(DEV, health(), info(12000), {}, now=NOW + timedelta(seconds=30),
                     previous=first)  # fmt: skip
    assert later[0].since == NOW
    assert "12 s old" in later[0].message
    # Once cleared and back, it starts again.
    back = evaluate(DEV, health(), info(9000), {}, now=NOW + timedelta(seconds=60),
                    previous=run(health(), info()))  # fmt: skip
    assert back[0].since == NOW + timedelta(seconds=60)


@pytest.mark.parametrize(("gone_s", "text"), [(12, "12 s"), (150, "2 min"), (3 * 3600, "3.0 h")])
def test_durations_read_well(gone_s: float, text: str) -> None:
    assert (
        run(last_seen=NOW - timedelta(seconds=gone_s))[0].message == f"bay 1: no answer for {text}"
    )


# ---------------------------------------------------------------------- tracker
def test_tracker_raises_keeps_and_clears() -> None:
    tracker = AlertTracker()
    t = NOW
    step = tracker.update(DEV, None, None, {}, now=t)  # never answered: grace starts now
    assert step.active == []
    step = tracker.update(DEV, None, None, {}, now=t + timedelta(seconds=11))
    assert codes(step.raised) == [("offline", "critical")]
    assert step.active[0].since == t

    step = tracker.update(DEV, None, None, {}, now=t + timedelta(seconds=20))
    assert step.raised == []  # still the same alert
    assert codes(step.active) == [("offline", "critical")]

    step = tracker.update(DEV, health(), info(), {M_TEMPERATURE: 80}, now=t + timedelta(seconds=21))
    assert codes(step.cleared) == [("offline", "critical")]
    assert codes(step.raised) == [("hot", "warning")]

    step = tracker.update(DEV, health(), info(), {M_TEMPERATURE: 90}, now=t + timedelta(seconds=22))
    assert codes(step.raised) == [("hot", "critical")]  # escalated: raised again
    assert step.active[0].since == t + timedelta(seconds=21)  # same condition, same since

    # Answering, then silent: the grace counts from the last answer.
    step = tracker.update(DEV, None, None, {}, now=t + timedelta(seconds=30))
    assert codes(step.active) == []
    assert codes(step.cleared) == [("hot", "critical")]
    step = tracker.update(DEV, None, None, {}, now=t + timedelta(seconds=33))
    assert codes(step.raised) == [("offline", "critical")]
    assert step.active[0].since == t + timedelta(seconds=22)


def test_tracker_keeps_devices_apart_and_forgets() -> None:
    other = Device(key="dev-2", url="http://10.0.0.6:8080", name="bay 2", site="north",
                   source="manual", online=False)  # fmt: skip
    tracker = AlertTracker(AlertThresholds(offline_after_s=0))
    tracker.update(DEV, health(), info(9000), {}, now=NOW)
    tracker.update(other, None, None, {}, now=NOW)
    tracker.update(other, None, None, {}, now=NOW + timedelta(seconds=1))
    assert [(a.device_key, a.code) for a in tracker.active()] == [
        ("dev-2", "offline"), ("dev-1", "stale"),
    ]  # fmt: skip
    assert codes(tracker.forget("dev-2")) == [("offline", "critical")]
    assert [a.device_key for a in tracker.active()] == ["dev-1"]
    assert tracker.forget("dev-2") == []
