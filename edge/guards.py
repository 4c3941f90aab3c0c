"""Resource guards: memory (drop caches, then restart), temperature (decode less when hot) and
disk (prune the store hard when the data folder's file system runs low).

No framework here: the readers are pure functions of file contents plus thin ``read_*``
wrappers taking a path (tests pass tmp files); the guards are small state machines fed one
reading at a time; :func:`run_guards` is the asyncio task that reads, checks and counts.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import math
import os
import sys
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
#: Called for every action a guard takes: ``(guard, action, detail)``, e.g.
#: ``("memory", "drop_caches", "RSS 260 MiB above the 250 MiB limit")``.
ActionCallback = Callable[[str, str, str], None]


# glibc's mallopt(3) parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Blocks at least this large get their own mapping, handed back to the system when freed.
MMAP_THRESHOLD_BYTES = 128 * 1024
#: malloc arenas: one for the main thread and one for all the others.
ARENA_MAX = 2


def tune_allocator() -> bool:
    """Keep glibc's heap from holding on to freed picture buffers; returns whether it applied.

    Call once, early, before the camera threads start. Two of glibc's defaults cost the edge
    ~90 MB of RSS that it no longer used (bench/README.md, bench/memory):

    - the mmap threshold rises to the size of the largest block freed (up to 32 MiB): after the
      first 6 MB frame is freed, every later frame, JPEG and tensor comes from the heap, whose
      free space is scattered between live objects and never returned. Fixed at 128 KiB (the
      default's starting value) each large buffer is a mapping of its own, unmapped when freed;
    - each thread that allocates gets an arena of its own (up to 8 per core), each keeping its
      freed memory. Two are plenty: the threads are few and mostly blocked in I/O.

    The same as ``MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2`` in the environment, but it
    holds however the edge is started (systemd, the demo, tests). Nothing on other C libraries.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl (Alpine) has no mallopt: nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1)
    return bool(mallopt(_M_ARENA_MAX, ARENA_MAX) == 1) and ok


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
        # Never the text itself: guards.thermal_path may point at any file (a key, a password).
        raise ValueError("not a thermal zone temperature (millidegrees)") from None
    return millidegrees / 1000.0


def read_free_bytes(path: Path) -> int:
    """Bytes available to this (unprivileged) process on the file system holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def read_rss_bytes(path: Path = PROC_SELF_STATUS) -> int:
    return parse_rss_bytes(path.read_text(encoding="ascii", errors="replace"))


def read_temperature_c(path: Path = DEFAULT_THERMAL_PATH) -> float | None:
    """The temperature, or None where there is no such thermal zone (a PC, a container)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    try:
        return parse_temperature_c(text)
    except ValueError:
        raise ValueError(f"{path} does not hold a temperature (millidegrees)") from None


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


class DiskGuard:
    """Low below ``min_free_bytes``; fine again only above ``resume_factor`` times that.

    ``on_low(free_bytes)`` and ``on_ok(free_bytes)`` are called on each change (the runner cuts
    the store's caps and restores them). Nothing else is written to the data folder: logs go to
    stderr (journald caps them).
    """

    def __init__(
        self,
        min_free_bytes: int,
        on_low: Callable[[int], object],
        on_ok: Callable[[int], object],
        *,
        resume_factor: float = 2.0,
    ) -> None:
        if min_free_bytes <= 0 or resume_factor < 1.0:
            raise ValueError("need min_free_bytes > 0 and resume_factor >= 1")
        self.min_free_bytes = min_free_bytes
        self.resume_bytes = int(min_free_bytes * resume_factor)
        self._on_low, self._on_ok = on_low, on_ok
        self.low = False

    def check(self, free_bytes: int) -> bool:
        """Feed one reading; returns whether the disk counts as low after it."""
        if not self.low and free_bytes < self.min_free_bytes:
            self.low = True
            log.warning(
                "disk: %d MiB free, below %d MiB: pruning the store hard",
                free_bytes >> 20, self.min_free_bytes >> 20,
            )  # fmt: skip
            self._on_low(free_bytes)
        elif self.low and free_bytes > self.resume_bytes:
            self.low = False
            log.info("disk: %d MiB free again: store caps restored", free_bytes >> 20)
            self._on_ok(free_bytes)
        return self.low


# ---------------------------------------------------------------------- the task
@dataclass(frozen=True, slots=True)
class GuardMetrics:
    """``actions`` is labelled ``guard, action``; the gauges are plain."""

    actions: Counter
    rss_bytes: Gauge
    temperature_c: Gauge
    disk_free_bytes: Gauge | None = None


def _read(
    rss_path: Path, thermal_path: Path | None, disk_path: Path | None
) -> tuple[int, float | None, int | None]:
    temp = read_temperature_c(thermal_path) if thermal_path is not None else None
    free = read_free_bytes(disk_path) if disk_path is not None else None
    return read_rss_bytes(rss_path), temp, free


async def run_guards(
    memory: MemoryGuard,
    temperature: TemperatureGuard,
    metrics: GuardMetrics,
    *,
    on_hot_change: Callable[[bool], None],
    on_action: ActionCallback | None = None,
    disk: DiskGuard | None = None,
    disk_path: Path | None = None,
    interval_s: float = 5.0,
    rss_path: Path = PROC_SELF_STATUS,
    thermal_path: Path | None = DEFAULT_THERMAL_PATH,
) -> None:
    """Check every ``interval_s`` until cancelled, or return once the memory guard gave up.

    Every action is counted and passed to ``on_action`` (the runner turns them into alert
    events). The reads go through ``asyncio.to_thread``: procfs is cheap, but a thermal driver
    may ask firmware or a bus, a ``statvfs`` may hang on a sick SD card, and one thread hop every
    few seconds costs nothing.
    """
    quiet = QuietLogger(log)

    def act(guard: str, action: str, detail: str) -> None:
        metrics.actions.labels(guard=guard, action=action).inc()
        if on_action is not None:
            on_action(guard, action, detail)

    while True:
        try:
            rss, temp, free = await asyncio.to_thread(
                _read, rss_path, thermal_path, disk_path if disk is not None else None
            )
        except (OSError, ValueError) as err:
            quiet.failure("guards: cannot read memory, temperature or disk space: %s", err)
            metrics.actions.labels(guard="guards", action="read_error").inc()
        else:
            quiet.reset("guards: readings available again")
            metrics.rss_bytes.set(rss)
            metrics.temperature_c.set(math.nan if temp is None else temp)
            before = memory.state
            after = memory.check(rss)
            if after != before:
                action = {"dropped": "drop_caches", "ok": "recovered", "exit": "exit"}[after]
                limit = memory.limit_bytes >> 20
                act("memory", action, f"RSS {rss >> 20} MiB, limit {limit} MiB")
            if after == "exit":
                return
            if disk is not None and free is not None:
                if metrics.disk_free_bytes is not None:
                    metrics.disk_free_bytes.set(free)
                was_low = disk.low
                if disk.check(free) != was_low:
                    minimum = disk.min_free_bytes >> 20
                    act("disk", "low" if disk.low else "ok",
                        f"{free >> 20} MiB free, minimum {minimum} MiB")  # fmt: skip
            if temp is not None:
                was_hot = temperature.hot
                if temperature.check(temp) != was_hot:
                    hot = temperature.hot
                    if hot:
                        log.warning("temperature %.1f °C above %.0f: decoding less", temp,
                                    temperature.hot_c)  # fmt: skip
                    else:
                        log.info("temperature %.1f °C: cool again, decoding as usual", temp)
                    on_hot_change(hot)
                    act("temperature", "hot" if hot else "cool",
                        f"{temp:.1f} °C; hot above {temperature.hot_c:g}, cool below"
                        f" {temperature.cool_c:g}")  # fmt: skip
        await asyncio.sleep(interval_s)
