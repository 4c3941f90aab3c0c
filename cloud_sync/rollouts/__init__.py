"""Staged config rollouts: a template version, a target set, waves gated on device health,
per-device timeouts and automatic rollback. Pure rules in :mod:`.plan`, rows in :mod:`.store`,
the background step in :mod:`.engine`."""
