"""The rollout's rules as pure functions: how a target splits into waves, when a device has
succeeded or failed, when a wave is done or has failed.

Rollout states: ``running`` → ``succeeded`` | ``rolled_back`` | ``aborted``, and
``running`` ⇄ ``paused``. Device states: ``waiting`` (its wave has not started) →
``in_progress`` (its config was delivered) → ``succeeded`` | ``failed``; on a rollback every
reached device becomes ``rolled_back`` and every waiting one ``skipped``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from cloud_sync.devices.presence import is_online
from cloud_sync.errors import Invalid

HEALTHY_STREAM: Final = "online"
TERMINAL: Final = frozenset({"succeeded", "failed"})


def check_waves(waves: Sequence[float]) -> None:
    last = 0.0
    for share in waves:
        if not last < share <= 1.0:
            raise Invalid("waves are cumulative shares rising within (0, 1], e.g. [0.1, 1.0]")
        last = share
    if not math.isclose(last, 1.0):
        raise Invalid("the last wave must reach the whole target (1.0)")


def split(rollout_id: str, device_ids: Sequence[str], waves: Sequence[float]) -> list[list[str]]:
    """The devices of each wave: a stable shuffle (by hash of rollout and device, so a canary
    spreads over sites), cut at the cumulative shares; every wave gets at least one device,
    and waves left without any are dropped."""
    order = sorted(device_ids, key=lambda d: hashlib.sha256(f"{rollout_id}:{d}".encode()).digest())
    out: list[list[str]] = []
    taken = 0
    for share in waves:
        end = min(len(order), max(taken + 1, math.ceil(share * len(order) - 1e-9)))
        if end > taken:
            out.append(order[taken:end])
        taken = end
    return out


@dataclass(frozen=True, slots=True)
class DeviceView:
    """What the engine knows of one in-progress device (its row, heartbeat and report)."""

    version: int  # the version delivered to it
    started_at: float
    last_seen: float | None
    status: str | None  # the heartbeat's status
    stream_status: str | None
    cloud_config_version: int | None  # what the heartbeat says it runs
    report_version: int | None
    report_outcome: str | None
    report_message: str
    report_at: float | None


Verdict = tuple[Literal["succeeded", "failed"], str] | None


def judge(view: DeviceView, now: float, timeout_s: float, interval_s: float) -> Verdict:
    """Succeeded: it runs the version (its report or its heartbeat says so) and a heartbeat
    since shows a healthy stream. Failed: it rejected the version or rolled it back, went
    offline, or neither happened within ``timeout_s``. None: still in progress."""
    reported = view.report_version == view.version
    if reported and view.report_outcome in ("rejected", "rolled_back"):
        why = view.report_outcome.replace("_", " ")
        return "failed", f"{why} by the device" + (
            f": {view.report_message}" if view.report_message else ""
        )
    applied_at = view.report_at if reported and view.report_outcome == "applied" else None
    runs = view.cloud_config_version == view.version or applied_at is not None
    fresh = view.last_seen is not None and view.last_seen >= max(view.started_at, applied_at or 0.0)
    healthy = view.stream_status == HEALTHY_STREAM and view.status != "failing"
    if runs and fresh and healthy and view.cloud_config_version in (None, view.version):
        return "succeeded", "applied; stream online"
    waited = now - view.started_at
    if waited > 3 * interval_s and not is_online(view.last_seen, now, interval_s):
        return "failed", "device offline"
    if waited > timeout_s:
        if not runs:
            return "failed", f"timeout after {timeout_s:g} s: version not applied"
        return "failed", f"timeout after {timeout_s:g} s: stream {view.stream_status or 'unknown'}"
    return None


WaveVerdict = Literal["running", "done", "failed"]


def wave_verdict(states: Sequence[str], threshold: float) -> WaveVerdict:
    """``failed`` as soon as failures pass ``threshold`` (a share of the wave), ``done`` once
    every device is succeeded or failed, else ``running``."""
    failed = sum(1 for s in states if s == "failed")
    if states and failed > threshold * len(states):
        return "failed"
    if all(s in TERMINAL for s in states):
        return "done"
    return "running"
