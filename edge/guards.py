"""Resource guards: memory (drop caches, then restart) and temperature (decode less when hot).

No framework here: the readers are pure functions of file contents plus thin ``read_*``
wrappers taking a path (tests pass tmp files); the guards are small state machines fed one
reading at a time; :func:`run_guards` is the asyncio task that reads, checks and counts.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prometheus_client import Counter, Gauge

from fleet_common.logs import QuietLogger

log = logging.getLogger("edge.guards")

PROC_SELF_STATUS = Path("/proc/self/status")
DEFAULT_THERMAL_PATH = Path("/sys/class/thermal/thermal_zone0/temp")

MemoryAction = Literal["ok", "dropped", "exit"]


# ---------------------------------------------------------------------- readers
def parse_rss_bytes(status_text: str) -> int:
    """Resident set size from the text of ``/proc/<pid>/status`` (``VmRSS:  12345 kB``)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            fields = line.split()
            if len(fields) == 3 and fields[1].isdigit() and fields[2] == "kB":
                return int(fields[1]) * 1024
            raise ValueError(f"malformed VmRSS line in process status: {line!r}")
    raise ValueError("no VmRSS line in process status")


def parse_temperature_c(text: str) -> float:
    """Degrees Celsius from a sysfs thermal zone's ``temp`` (millidegrees, e.g. ``48312``)."""
    value = text.strip()
    try:
        millidegrees = int(value)
    except ValueError:
        raise ValueError(f"not a thermal zone temperature (millidegrees): {value!r}") from None
    return millidegrees / 1000.0


def read_rss_bytes(path: Path = PROC_SELF_STATUS) -> int:
    return parse_rss_bytes(path.read_text(encoding="ascii", errors="replace"))


def read_temperature_c(path: Path = DEFAULT_THERMAL_PATH) -> float | None:
    """The temperature, or None where there is no such thermal zone (a PC, a container)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    return parse_temperature_c(text)


# ---------------------------------------------------------------------- guards
class MemoryGuard:
    """Above ``limit_bytes``: drop caches once, wait ``grace_checks`` checks, then give up.

    Giving up calls ``on_exit(reason)`` once; the runner logs the reason and exits non-zero so
    systemd restarts a clean process. Hysteresis: after dropping, memory counts as recovered
    only below ``resume_fraction`` of the limit, so RSS hovering at the limit does not drop
    caches on every check.
    """

    def __init__(
        self,
        limit_bytes: int,
        on_drop_caches: Callable[[], object],
        on_exit: Callable[[str], None],
        *,
        grace_checks: int = 3,
        resume_fraction: float = 0.9,
    ) -> None:
        if limit_bytes <= 0 or grace_checks < 1 or not 0.0 < resume_fraction <= 1.0:
            raise ValueError("need limit_bytes > 0, grace_checks >= 1, 0 < resume_fraction <= 1")
        self.limit_bytes = limit_bytes
        self.resume_bytes = int(limit_bytes * resume_fraction)
        self.grace_checks = grace_checks
        self._on_drop_caches = on_drop_caches
        self._on_exit = on_exit
        self.state: MemoryAction = "ok"
        self._checks_since_drop = 0

    def check(self, rss_bytes: int) -> MemoryAction:
        """Feed one reading; returns the state after it (``"exit"`` is final)."""
        if self.state == "exit":
            return "exit"
        if self.state == "ok":
            if rss_bytes > self.limit_bytes:
                self.state, self._checks_since_drop = "dropped", 0
                log.warning(
                    "memory: RSS %d MiB above the %d MiB limit: dropping caches",
                    rss_bytes >> 20, self.limit_bytes >> 20,
                )  # fmt: skip
                self._on_drop_caches()
            return self.state
        # "dropped": waiting for the process to come back under the limit.
        self._checks_since_drop += 1
        if rss_bytes < self.resume_bytes:
            self.state = "ok"
            log.info("memory: RSS back to %d MiB after dropping caches", rss_bytes >> 20)
        elif rss_bytes > self.limit_bytes and self._checks_since_drop >= self.grace_checks:
            self.state = "exit"
            self._on_exit(
                f"RSS {rss_bytes >> 20} MiB still above the {self.limit_bytes >> 20} MiB limit"
                f" {self._checks_since_drop} checks after dropping caches"
            )
        return self.state


class TemperatureGuard:
    """Hot above ``hot_c``, cool again only below ``cool_c``."""

    def __init__(self, hot_c: float, cool_c: float) -> None:
        if not cool_c < hot_c:
            raise ValueError(f"cool_c ({cool_c}) must be below hot_c ({hot_c})")
        self.hot_c = hot_c
        self.cool_c = cool_c
        self.hot = False

    def check(self, temp_c: float) -> bool:
        if not self.hot and temp_c > self.hot_c:
            self.hot = True
        elif self.hot and temp_c < self.cool_c:
            self.hot = False
        return self.hot


# ---------------------------------------------------------------------- the task
@dataclass(frozen=True, slots=True)
class GuardMetrics:
    """``actions`` is labelled ``guard, action``; the gauges are plain."""

    actions: Counter
    rss_bytes: Gauge
    temperature_c: Gauge


def _read(rss_path: Path, thermal_path: Path | None) -> tuple[int, float | None]:
    temp = read_temperature_c(thermal_path) if thermal_path is not None else None
    return read_rss_bytes(rss_path), temp


async def run_guards(
    memory: MemoryGuard,
    temperature: TemperatureGuard,
    metrics: GuardMetrics,
    *,
    on_hot_change: Callable[[bool], None],
    interval_s: float = 5.0,
    rss_path: Path = PROC_SELF_STATUS,
    thermal_path: Path | None = DEFAULT_THERMAL_PATH,
) -> None:
    """Check every ``interval_s`` until cancelled, or return once the memory guard gave up.

    The reads go through ``asyncio.to_thread``: procfs is cheap, but a thermal driver may ask
    firmware or a bus, and one thread hop every few seconds costs nothing.
    """
    quiet = QuietLogger(log)
    while True:
        try:
            rss, temp = await asyncio.to_thread(_read, rss_path, thermal_path)
        except (OSError, ValueError) as err:
            quiet.failure("guards: cannot read memory or temperature: %s", err)
            metrics.actions.labels(guard="guards", action="read_error").inc()
        else:
            quiet.reset("guards: readings available again")
            metrics.rss_bytes.set(rss)
            metrics.temperature_c.set(math.nan if temp is None else temp)
            before = memory.state
            after = memory.check(rss)
            if after != before:
                action = {"dropped": "drop_caches", "ok": "recovered", "exit": "exit"}[after]
                metrics.actions.labels(guard="memory", action=action).inc()
            if after == "exit":
                return
            if temp is not None:
                was_hot = temperature.hot
                if temperature.check(temp) != was_hot:
                    hot = temperature.hot
                    if hot:
                        log.warning("temperature %.1f °C above %.0f: decoding less", temp,
                                    temperature.hot_c)  # fmt: skip
                    else:
                        log.info("temperature %.1f °C: cool again, decoding as usual", temp)
                    action = "hot" if hot else "cool"
                    metrics.actions.labels(guard="temperature", action=action).inc()
                    on_hot_change(hot)
        await asyncio.sleep(interval_s)
