"""A cloud config version applied through the edge's one config path (ConfigManager.patch).

The cloud's effective config is applied as a merge patch over the edge's running config: the
keys the cloud's templates set take the cloud's values, and every key they leave out keeps the
device's own value (its camera URL, name and site stay as installed, rather than falling back
to defaults). Keys read only at start-up (``restart:process``: listen address, data folder...)
keep their running values, as a rollback does: the cloud cannot change them.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from edge.errors import ConfigError
from edge.live_config import APPLY, PROCESS, plain
from edge.sync.service import ConfigResult
from fleet_common.wire.cloud import DeviceConfig

if TYPE_CHECKING:
    from edge.live_config import ConfigManager


def _lookup(data: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return False, None
        data = data[part]
    return True, data


def keep_process_keys(config: dict[str, Any], running: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every start-up-only key set to its running value (pure)."""
    out = copy.deepcopy(config)
    for path, kind in APPLY.items():
        if kind != PROCESS:
            continue
        found, value = _lookup(running, path)
        if not found:
            continue
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = copy.deepcopy(value)
    return out


class ConfigApplier:
    """``on_config`` for :class:`~edge.sync.service.SyncService`."""

    def __init__(self, manager: ConfigManager) -> None:
        self.manager = manager

    async def __call__(self, doc: DeviceConfig) -> ConfigResult:
        data = keep_process_keys(doc.config, plain(self.manager.edge.config))
        why = f"cloud config version {doc.version}"
        if doc.rollout_id:
            why += f" (rollout {doc.rollout_id})"
        try:
            applied = await self.manager.patch(data, source="cloud", reason=why)
        except ConfigError as err:
            return ConfigResult("rejected", str(err)[:500])
        return ConfigResult("applied", f"running as edge config version {applied.version}")
