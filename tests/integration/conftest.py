"""Fixtures of the integration tier: the cloud's databases (one PostgreSQL cluster per session,
shared by every module; see tests/support/postgres.py and tests/support/cloud.py)."""

from tests.support.cloud import cloud_env, db_url, postgres_template, sqlite_template
from tests.support.postgres import postgres_cluster

__all__ = ["cloud_env", "db_url", "postgres_cluster", "postgres_template", "sqlite_template"]
