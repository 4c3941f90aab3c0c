"""The effective config of devices: the base template version, then overrides by precedence.

- base: the template version of an active rollout that reached the device (its *pin*), else
  that of the most specific assignment naming one (device > site > region > organisation);
- then the overrides of the organisation, region, site and device assignments, in that order,
  deep-merged (:mod:`cloud_sync.configs.merge`): a site's value beats its region's.

A device with no layer at all has no effective config (the edge keeps its local one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, select

from cloud_sync.configs.merge import merge_layers
from cloud_sync.configs.templates import version_configs
from cloud_sync.db.tables import config_assignments, devices, rollout_devices, rollouts, sites
from fleet_common.wire.cloud import ConfigLayer

PRECEDENCE: Final = ("organisation", "region", "site", "device")  # lowest first
PINNING_DEVICE_STATES: Final = ("in_progress", "succeeded", "failed")
ACTIVE_ROLLOUT_STATES: Final = ("running", "paused")


@dataclass(frozen=True, slots=True)
class Placement:
    device_id: str
    org_id: str
    region_id: str
    site_id: str

    def scope_id(self, kind: str) -> str:
        return {
            "organisation": self.org_id,
            "region": self.region_id,
            "site": self.site_id,
            "device": self.device_id,
        }[kind]


@dataclass(slots=True)
class Effective:
    config: dict[str, Any] | None
    template_version_id: int | None = None
    rollout_id: str | None = None
    layers: list[ConfigLayer] = field(default_factory=list)


def placements(conn: Connection, device_ids: Iterable[str]) -> list[Placement]:
    ids = sorted(set(device_ids))
    found: list[Placement] = []
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(devices.c.id, devices.c.org_id, sites.c.region_id, devices.c.site_id)
            .join(sites, sites.c.id == devices.c.site_id)
            .where(devices.c.id.in_(ids[start : start + 500]))
        )
        found += [Placement(*row) for row in rows]
    return found


def pins(conn: Connection, device_ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    """device id → (rollout id, template version id) of the active rollout that reached it."""
    out: dict[str, tuple[str, int]] = {}
    for start in range(0, len(device_ids), 500):
        rows = conn.execute(
            select(rollout_devices.c.device_id, rollouts.c.id, rollouts.c.template_version_id)
            .join(rollouts, rollouts.c.id == rollout_devices.c.rollout_id)
            .where(
                rollout_devices.c.device_id.in_(device_ids[start : start + 500]),
                rollout_devices.c.state.in_(PINNING_DEVICE_STATES),
                rollouts.c.state.in_(ACTIVE_ROLLOUT_STATES),
            )
        )
        for row in rows:
            out[row.device_id] = (row.id, int(row.template_version_id))
    return out


def compute(conn: Connection, org_id: str, device_ids: Iterable[str]) -> dict[str, Effective]:
    """The effective config of each device of ``org_id`` among ``device_ids``."""
    placed = [p for p in placements(conn, device_ids) if p.org_id == org_id]
    if not placed:
        return {}
    assigned: dict[tuple[str, str], Any] = {
        (r.scope_kind, r.scope_id): r
        for r in conn.execute(
            select(config_assignments).where(config_assignments.c.org_id == org_id)
        )
    }
    pinned = pins(conn, [p.device_id for p in placed])
    wanted = {int(r.template_version_id) for r in assigned.values() if r.template_version_id}
    wanted |= {v for _, v in pinned.values()}
    configs = version_configs(conn, wanted)
    out: dict[str, Effective] = {}
    for place in placed:
        layers = [assigned.get((kind, place.scope_id(kind))) for kind in PRECEDENCE]
        present = [row for row in layers if row is not None]
        base_id: int | None = None
        for row in reversed(present):
            if row.template_version_id is not None:
                base_id = int(row.template_version_id)
                break
        rollout_id = None
        if place.device_id in pinned:
            rollout_id, base_id = pinned[place.device_id]
        if base_id is None and not present:
            out[place.device_id] = Effective(None)
            continue
        described = (
            [
                ConfigLayer(
                    source="rollout" if rollout_id else "template", template_version_id=base_id
                )
            ]
            if base_id
            else []
        )
        described += [
            ConfigLayer(
                source=row.scope_kind,
                scope_id=row.scope_id,
                template_version_id=row.template_version_id,
                overrides=row.overrides,
            )
            for row in present
        ]
        docs = ([configs.get(base_id, {})] if base_id else []) + [r.overrides for r in present]
        out[place.device_id] = Effective(merge_layers(docs), base_id, rollout_id, described)
    return out
