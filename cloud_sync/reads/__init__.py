"""Supervisors' reads: devices, sites, rollups and plate search, each filtered by the caller's
scope (cloud_sync/auth/scope.py). Blocking: call from a worker thread."""
