"""The cloud's settings: one frozen model, built by the command line and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

from cloud_sync.auth.passwords import HashCost
from cloud_sync.auth.sessions import LoginLimits


@dataclass(frozen=True, slots=True)
class CloudSettings:
    heartbeat_interval_s: int = 30  # what devices are told; offline after 3 missed
    key_cache_ttl_s: float = 5.0  # a revocation through another replica takes this long
    flush_interval_s: float = 1.0  # heartbeat buffer → database; pending commands reload
    max_body_bytes: int = 64 * 1024  # any JSON body but ingest's
    max_ingest_bytes: int = 4 * 1024 * 1024  # an ingest body as sent (gzip or not)
    max_decompressed_bytes: int = 16 * 1024 * 1024  # an ingest body once gunzipped
    max_batch_events: int = 500
    ingest_events_per_s: float = 50.0  # per device, per replica (cloud_sync/ingest/limits.py)
    ingest_burst: float = 2000.0
    pool_size: int = 10
    config_poll_s: float = 0.5  # long-polls re-check this often without a NOTIFY (SQLite)
    max_config_wait_s: float = 60.0  # the longest `?wait=` of GET devices/config
    rollout_interval_s: float = 1.0  # the rollout engine's step
    login: LoginLimits = field(default_factory=LoginLimits)
    hash_cost: HashCost = field(default_factory=HashCost)
