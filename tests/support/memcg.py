"""A real kernel memory limit for a test's subprocess, like systemd's ``MemoryMax=``.

:meth:`MemoryLimit.create` picks the first that works here:

1. a child of this process's own cgroup with the memory controller: ``memory.max`` (cgroup v2)
   or ``memory.limit_in_bytes`` (v1, as on the project's CI machines: a hybrid hierarchy whose
   v1 memory controller is writable by root). Being a child of our own cgroup, whatever the
   machine accounts for this test still includes it;
2. ``systemd-run --scope -p MemoryMax=`` where systemd is PID 1.

``RLIMIT_AS`` (prlimit) is not an equivalent: it caps address space, not resident memory, and
the edge's thread stacks and libraries reserve far more address space than they use.
A subprocess enters the limit by running under :meth:`prefix` (a command that execs the rest).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MemoryLimit", "MemoryLimitUnavailable", "parse_memory_max"]

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


class MemoryLimitUnavailable(RuntimeError):
    """Neither a memory cgroup nor systemd-run can be used here (the reasons are in it)."""


def parse_memory_max(unit_text: str) -> int:
    """Bytes of the ``MemoryMax=`` line of a systemd unit (``300M``, ``1G``, ``314572800``)."""
    for line in unit_text.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "MemoryMax":
            value = value.strip().upper()
            number, unit = (value[:-1], value[-1]) if value[-1:] in "KMG" else (value, "")
            return int(number) * _UNITS[unit]
    raise ValueError("no MemoryMax= line in the unit")


@dataclass
class MemoryLimit:
    """``limit_bytes`` on what runs under :meth:`prefix`; :meth:`remove` when done."""

    limit_bytes: int
    kind: str  # "cgroup2", "cgroup1" or "systemd-run"
    path: Path | None = None  # the cgroup directory (not for systemd-run)

    @classmethod
    def create(cls, limit_bytes: int) -> MemoryLimit:
        why: list[str] = []
        for make in (cls._cgroup, cls._systemd_run):
            try:
                return make(limit_bytes)
            except (OSError, MemoryLimitUnavailable) as err:
                why.append(str(err))
        raise MemoryLimitUnavailable("; ".join(why))

    @classmethod
    def _cgroup(cls, limit_bytes: int) -> MemoryLimit:
        v1_base = v2_base = None
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, rel = line.split(":", 2)
            if controllers == "":
                v2_base = Path("/sys/fs/cgroup") / rel.lstrip("/")
            elif "memory" in controllers.split(","):
                v1_base = Path("/sys/fs/cgroup/memory") / rel.lstrip("/")
        name = f"carwash-test-{secrets.token_hex(4)}"
        if v1_base is not None and (v1_base / "memory.limit_in_bytes").exists():
            path = v1_base / name
            path.mkdir()
            try:
                (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                with contextlib.suppress(OSError):  # no swap on the kernel: nothing to set
                    (path / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
            except OSError:
                path.rmdir()
                raise
            return cls(limit_bytes, "cgroup1", path)
        if v2_base is not None and v2_base.is_dir():
            path = v2_base / name
            path.mkdir()
            if not (path / "memory.max").exists():
                path.rmdir()
                raise MemoryLimitUnavailable(f"no memory controller delegated to {v2_base}")
            (path / "memory.max").write_text(str(limit_bytes))
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
            return cls(limit_bytes, "cgroup2", path)
        raise MemoryLimitUnavailable("no writable memory cgroup")

    @classmethod
    def _systemd_run(cls, limit_bytes: int) -> MemoryLimit:
        if shutil.which("systemd-run") is None or not Path("/run/systemd/system").is_dir():
            raise MemoryLimitUnavailable("systemd is not running here")
        return cls(limit_bytes, "systemd-run")

    def prefix(self) -> list[str]:
        """A command prefix that runs the rest inside the limit (same pid: exec)."""
        if self.kind == "systemd-run":
            return ["systemd-run", "--quiet", "--scope", "-p", f"MemoryMax={self.limit_bytes}",
                    "-p", "MemorySwapMax=0", "--"]  # fmt: skip
        assert self.path is not None
        return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(self.path)]

    def oom_kills(self) -> int | None:
        """Processes the kernel killed for the limit (None where it does not say)."""
        if self.path is None:
            return None
        name = "memory.events" if self.kind == "cgroup2" else "memory.oom_control"
        for line in (self.path / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return None

    def peak_bytes(self) -> int | None:
        """The cgroup's highest charge (RSS and page cache), where the kernel keeps it."""
        if self.path is None:
            return None
        name = "memory.max_usage_in_bytes" if self.kind == "cgroup1" else "memory.peak"
        file = self.path / name
        return int(file.read_text()) if file.exists() else None

    def remove(self) -> None:
        """Remove the cgroup (its processes must have ended)."""
        if self.path is not None and self.path.exists():
            os.rmdir(self.path)
