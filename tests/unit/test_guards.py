from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from edge.guards import (
    DiskGuard,
    GuardMetrics,
    MemoryGuard,
    TemperatureGuard,
    parse_rss_bytes,
    parse_temperature_c,
    read_free_bytes,
    read_rss_bytes,
    read_temperature_c,
    run_guards,
)

pytestmark = pytest.mark.unit

MIB = 1024 * 1024

STATUS = """\
Name:\tcarwash-edge
Umask:\t0022
State:\tS (sleeping)
Tgid:\t812
Pid:\t812
VmPeak:\t  612340 kB
VmSize:\t  598112 kB
VmHWM:\t  143220 kB
VmRSS:\t  131072 kB
RssAnon:\t   98304 kB
Threads:\t9
"""


def _status(rss_kib: int) -> str:
    return STATUS.replace("131072", str(rss_kib))


# ---------------------------------------------------------------------- readers
def test_parse_rss_bytes_reads_vmrss_in_kib() -> None:
    assert parse_rss_bytes(STATUS) == 131072 * 1024


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no VmRSS"),
        ("Name:\tkthreadd\nState:\tS\n", "no VmRSS"),  # kernel threads have none
        ("VmRSS:\t  lots kB\n", "malformed VmRSS"),
        ("VmRSS:\t  1234 MB\n", "malformed VmRSS"),
        ("VmRSS:\n", "malformed VmRSS"),
    ],
)
def test_parse_rss_bytes_rejects_garbage(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rss_bytes(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("48312\n", 48.312), ("80000", 80.0), ("-5000\n", -5.0)]
)
def test_parse_temperature_c_reads_millidegrees(text: str, expected: float) -> None:
    assert parse_temperature_c(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "\n", "48.3", "hot", "48312 48000"])
def test_parse_temperature_c_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="millidegrees"):
        parse_temperature_c(text)


def test_read_wrappers_take_a_path(tmp_path: Path) -> None:
    status, temp = tmp_path / "status", tmp_path / "temp"
    status.write_text(STATUS)
    temp.write_text("71500\n")
    assert read_rss_bytes(status) == 128 * MIB
    assert read_temperature_c(temp) == pytest.approx(71.5)
    assert read_temperature_c(tmp_path / "no-thermal-zone") is None
    with pytest.raises(FileNotFoundError):
        read_rss_bytes(tmp_path / "missing")


# ---------------------------------------------------------------------- memory guard
class Calls:
    def __init__(self) -> None:
        self.drops = 0
        self.exits: list[str] = []

    def drop(self) -> None:
        self.drops += 1

    def exit(self, reason: str) -> None:
        self.exits.append(reason)


def _memory(calls: Calls, grace: int = 2) -> MemoryGuard:
    return MemoryGuard(100 * MIB, calls.drop, calls.exit, grace_checks=grace)


def test_memory_guard_drops_caches_and_recovers() -> None:
    calls = Calls()
    guard = _memory(calls)
    assert guard.check(50 * MIB) == "ok"
    assert guard.check(120 * MIB) == "dropped"
    assert calls.drops == 1
    assert guard.check(80 * MIB) == "ok"
    assert (calls.drops, calls.exits) == (1, [])


def test_memory_guard_exits_once_after_the_grace_period() -> None:
    calls = Calls()
    guard = _memory(calls, grace=2)
    assert guard.check(50 * MIB) == "ok"
    assert guard.check(120 * MIB) == "dropped"
    assert guard.check(115 * MIB) == "dropped"  # grace: one check after the drop
    assert calls.exits == []
    assert guard.check(110 * MIB) == "exit"
    assert calls.drops == 1
    assert len(calls.exits) == 1
    assert "110 MiB still above the 100 MiB limit" in calls.exits[0]
    assert guard.check(10 * MIB) == "exit"  # final: never called twice
    assert len(calls.exits) == 1


def test_memory_guard_hysteresis_does_not_flap_at_the_limit() -> None:
    calls = Calls()
    guard = _memory(calls, grace=2)
    guard.check(101 * MIB)
    # Hovering just under the limit (above the 90 % resume level): neither recovered nor fatal.
    for _ in range(5):
        assert guard.check(95 * MIB) == "dropped"
    assert (calls.drops, calls.exits) == (1, [])
    # Back above the limit once the grace is spent: give up at once, no second drop.
    assert guard.check(101 * MIB) == "exit"
    assert calls.drops == 1


def test_memory_guard_rejects_bad_settings() -> None:
    calls = Calls()
    with pytest.raises(ValueError, match="grace_checks"):
        MemoryGuard(0, calls.drop, calls.exit)
    with pytest.raises(ValueError, match="grace_checks"):
        MemoryGuard(MIB, calls.drop, calls.exit, grace_checks=0)


# ---------------------------------------------------------------------- temperature guard
def test_temperature_guard_hysteresis() -> None:
    guard = TemperatureGuard(hot_c=80, cool_c=70)
    readings = [60.0, 80.0, 80.5, 75.0, 70.0, 69.9, 79.0, 81.0]
    assert [guard.check(t) for t in readings] == [
        False, False, True, True, True, False, False, True,
    ]  # fmt: skip


def test_temperature_guard_needs_a_gap() -> None:
    with pytest.raises(ValueError, match="below hot_c"):
        TemperatureGuard(hot_c=70, cool_c=70)


# ---------------------------------------------------------------------- disk guard
def test_disk_guard_prunes_when_low_and_restores_with_hysteresis() -> None:
    calls: list[tuple[str, int]] = []
    guard = DiskGuard(
        100 * MIB, lambda free: calls.append(("low", free)), lambda free: calls.append(("ok", free))
    )
    readings = [500, 101, 99, 50, 150, 199, 201, 99]
    assert [guard.check(r * MIB) for r in readings] == [
        False, False, True, True, True, True, False, True,
    ]  # fmt: skip
    assert calls == [("low", 99 * MIB), ("ok", 201 * MIB), ("low", 99 * MIB)]
    with pytest.raises(ValueError, match="min_free_bytes"):
        DiskGuard(0, print, print)


def test_read_free_bytes_of_a_real_file_system(tmp_path: Path) -> None:
    assert 0 < read_free_bytes(tmp_path) < 1 << 60


# ---------------------------------------------------------------------- the task
def _metrics() -> tuple[GuardMetrics, CollectorRegistry]:
    r = CollectorRegistry()
    metrics = GuardMetrics(
        actions=Counter("guard_actions", "test", ["guard", "action"], registry=r),
        rss_bytes=Gauge("rss_bytes", "test", registry=r),
        temperature_c=Gauge("temperature_celsius", "test", registry=r),
    )
    return metrics, r


def _count(r: CollectorRegistry, guard: str, action: str) -> float:
    value = r.get_sample_value("guard_actions_total", {"guard": guard, "action": action})
    return 0.0 if value is None else value


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail("condition not met in time")


@pytest.mark.asyncio
async def test_run_guards_acts_and_counts_until_it_gives_up(tmp_path: Path) -> None:
    status, temp = tmp_path / "status", tmp_path / "temp"
    status.write_text(_status(300 * 1024))
    temp.write_text("85000\n")
    metrics, r = _metrics()
    calls = Calls()
    hot_changes: list[bool] = []
    await asyncio.wait_for(
        run_guards(
            MemoryGuard(250 * MIB, calls.drop, calls.exit, grace_checks=2),
            TemperatureGuard(80, 70),
            metrics,
            on_hot_change=hot_changes.append,
            interval_s=0.01,
            rss_path=status,
            thermal_path=temp,
        ),
        timeout=10,
    )  # returns by itself once the memory guard gives up
    assert calls.drops == 1
    assert len(calls.exits) == 1
    assert hot_changes == [True]
    assert _count(r, "memory", "drop_caches") == 1
    assert _count(r, "memory", "exit") == 1
    assert _count(r, "temperature", "hot") == 1
    assert r.get_sample_value("rss_bytes") == 300 * MIB
    assert r.get_sample_value("temperature_celsius") == pytest.approx(85.0)


@pytest.mark.asyncio
async def test_run_guards_recovers_cools_and_survives_bad_readings(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(_status(300 * 1024))
    metrics, r = _metrics()
    calls = Calls()
    hot_changes: list[bool] = []
    temp = tmp_path / "temp"
    temp.write_text("85000\n")

    def drop() -> None:  # the cache gives memory back, and the fan kicks in
        calls.drop()
        status.write_text(_status(100 * 1024))
        temp.write_text("65000\n")

    task = asyncio.create_task(
        run_guards(
            MemoryGuard(250 * MIB, drop, calls.exit),
            TemperatureGuard(80, 70),
            metrics,
            on_hot_change=hot_changes.append,
            interval_s=0.01,
            rss_path=status,
            thermal_path=temp,
        )
    )
    try:
        await _until(
            lambda: _count(r, "temperature", "cool") == _count(r, "memory", "recovered") == 1
        )
        temp.write_text("garbage\n")
        await _until(lambda: _count(r, "guards", "read_error") >= 1)
        temp.unlink()  # no thermal zone: memory is still guarded, temperature is NaN
        await _until(lambda: math.isnan(r.get_sample_value("temperature_celsius") or 0.0))
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert (calls.drops, calls.exits) == (1, [])
    assert hot_changes == [True, False]
    assert _count(r, "memory", "drop_caches") == 1
    assert r.get_sample_value("rss_bytes") == 100 * MIB


@pytest.mark.asyncio
async def test_run_guards_reports_every_action_and_watches_the_disk(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(_status(100 * 1024))
    metrics, r = _metrics()
    metrics = GuardMetrics(
        metrics.actions, metrics.rss_bytes, metrics.temperature_c,
        Gauge("disk_free_bytes", "test", registry=r),
    )  # fmt: skip
    actions: list[tuple[str, str, str]] = []
    lows: list[int] = []
    # Real free space of tmp_path: always below an absurd minimum.
    disk = DiskGuard(1 << 60, lows.append, lambda _free: None)
    temp = tmp_path / "temp"
    temp.write_text("85000\n")
    task = asyncio.create_task(
        run_guards(
            MemoryGuard(250 * MIB, Calls().drop, Calls().exit),
            TemperatureGuard(80, 70),
            metrics,
            on_hot_change=lambda _hot: None,
            on_action=lambda *a: actions.append(a),
            disk=disk,
            disk_path=tmp_path,
            interval_s=0.01,
            rss_path=status,
            thermal_path=temp,
        )
    )
    try:
        await _until(lambda: len(actions) >= 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted((g, a) for g, a, _ in actions) == [("disk", "low"), ("temperature", "hot")]
    assert next(d for g, _a, d in actions if g == "temperature").startswith("85.0 °C")
    assert len(lows) == 1
    assert _count(r, "disk", "low") == 1
    assert (r.get_sample_value("disk_free_bytes") or 0) > 0
