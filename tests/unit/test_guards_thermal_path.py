"""H1 §2: ``guards.thermal_path`` pointed at another file never puts that file's text in an
error or the log (it used to log the start of the file, e.g. a key's first line)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from edge.guards import (
    GuardMetrics,
    MemoryGuard,
    TemperatureGuard,
    parse_temperature_c,
    read_temperature_c,
    run_guards,
)

pytestmark = pytest.mark.unit

SECRET = "cwe_deadbeef_s3cret-first-line"  # noqa: S105 - a fake one, to be looked for


def _secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "api_keys.txt"
    path.write_text(f"{SECRET}\nmore secrets\n", encoding="utf-8")
    return path


def test_a_file_that_is_no_temperature_is_named_not_quoted(tmp_path: Path) -> None:
    path = _secret_file(tmp_path)
    with pytest.raises(ValueError, match="does not hold a temperature") as caught:
        read_temperature_c(path)
    assert SECRET not in str(caught.value)
    assert str(path) in str(caught.value)
    with pytest.raises(ValueError, match="millidegrees") as parsed:
        parse_temperature_c(SECRET)
    assert SECRET not in str(parsed.value)


class _Seen(logging.Handler):
    """Collects records and sets ``event`` at the first warning."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if record.levelno >= logging.WARNING:
            self.event.set()


@pytest.mark.asyncio
async def test_the_guards_log_never_shows_the_files_text(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("VmRSS:\t  1024 kB\n", encoding="ascii")
    registry = CollectorRegistry()
    metrics = GuardMetrics(
        actions=Counter("guard_actions", "test", ["guard", "action"], registry=registry),
        rss_bytes=Gauge("rss_bytes", "test", registry=registry),
        temperature_c=Gauge("temperature_celsius", "test", registry=registry),
    )
    seen = _Seen()
    logger = logging.getLogger("edge")
    logger.addHandler(seen)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    task = asyncio.create_task(
        run_guards(
            MemoryGuard(1 << 40, lambda: None, lambda _reason: None),
            TemperatureGuard(80, 70),
            metrics,
            on_hot_change=lambda _hot: None,
            interval_s=0.01,
            rss_path=status,
            thermal_path=_secret_file(tmp_path),
        )
    )
    try:
        await asyncio.wait_for(seen.event.wait(), timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        logger.removeHandler(seen)
        logger.setLevel(old_level)
    text = "\n".join(r.getMessage() for r in seen.records)
    assert "does not hold a temperature" in text
    assert SECRET not in text
