"""The current schema, for queries (SQLAlchemy Core). Migrations never import this module: they
are frozen history (``migrations/versions``); a change here goes with a new migration.

Ids of tenants, users and devices are random hex strings (never guessable, never reused);
facts (events, plate reads, commands) have integer ids. Times are Unix seconds (floats);
rollup buckets are the Unix second at which their UTC hour starts.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# SQLite only makes an INTEGER PRIMARY KEY an auto-increment rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Plates compare byte-wise on PostgreSQL too, so a prefix is an index range scan.
PlateText = String(32).with_variant(String(32, collation="C"), "postgresql")

metadata = MetaData()

settings = Table(
    "settings", metadata,
    Column("key", String(64), primary_key=True), Column("value", Text, nullable=False),
)  # fmt: skip

organisations = Table(
    "organisations", metadata,
    Column("id", String(32), primary_key=True), Column("name", String(120), nullable=False),
    Column("created_at", Float, nullable=False),
)  # fmt: skip

regions = Table(
    "regions", metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(32), ForeignKey("organisations.id"), nullable=False),
    Column("name", String(120), nullable=False),
)  # fmt: skip

sites = Table(
    "sites", metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(32), ForeignKey("organisations.id"), nullable=False),
    Column("region_id", String(32), ForeignKey("regions.id"), nullable=False),
    Column("name", String(120), nullable=False), Column("lat", Float), Column("lon", Float),
    Column("timezone", String(64), nullable=False), Column("created_at", Float, nullable=False),
)  # fmt: skip

users = Table(
    "users", metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(32), ForeignKey("organisations.id"), nullable=False),
    Column("email", String(254), nullable=False), Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False), Column("scope_kind", String(16), nullable=False),
    Column("scope_id", String(32)), Column("disabled", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
)  # fmt: skip

refresh_tokens = Table(
    "refresh_tokens", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", String(32), ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False), Column("family", String(32), nullable=False),
    Column("expires_at", Float, nullable=False), Column("used_at", Float),
    Column("revoked", Boolean, nullable=False),
)  # fmt: skip

login_attempts = Table(
    "login_attempts", metadata,
    Column("key", String(300), primary_key=True), Column("window", BigInteger, primary_key=True),
    Column("failures", Integer, nullable=False),
)  # fmt: skip

enrolment_tokens = Table(
    "enrolment_tokens", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False),
    Column("org_id", String(32), ForeignKey("organisations.id"), nullable=False),
    Column("site_id", String(32), ForeignKey("sites.id"), nullable=False),
    Column("created_at", Float, nullable=False), Column("expires_at", Float, nullable=False),
    Column("used_at", Float), Column("device_id", String(32)),
)  # fmt: skip

devices = Table(
    "devices", metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(32), ForeignKey("organisations.id"), nullable=False),
    Column("site_id", String(32), ForeignKey("sites.id"), nullable=False),
    Column("name", String(120), nullable=False), Column("edge_id", String(64), nullable=False),
    Column("key_hash", String(64), nullable=False), Column("revoked_at", Float),
    Column("enrolled_at", Float, nullable=False), Column("last_seen", Float),
    Column("status", String(16)), Column("stream_status", String(16)),
    Column("config_version", Integer), Column("edge_version", String(40), nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("cloud_config_version", Integer),  # v0002
)  # fmt: skip

commands = Table(
    "commands", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("org_id", String(32), ForeignKey("organisations.id"), nullable=False),
    Column("device_id", String(32), ForeignKey("devices.id"), nullable=False),
    Column("kind", String(32), nullable=False), Column("args", JSON, nullable=False),
    Column("status", String(16), nullable=False), Column("created_at", Float, nullable=False),
    Column("created_by", String(32)), Column("sent_at", Float), Column("done_at", Float),
    Column("detail", Text, nullable=False),
)  # fmt: skip

events = Table(
    "events", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("org_id", String(32), nullable=False), Column("site_id", String(32), nullable=False),
    Column("device_id", String(32), ForeignKey("devices.id"), nullable=False),
    Column("key", String(64), nullable=False), Column("seq", BigInteger),
    Column("kind", String(32), nullable=False), Column("topic", String(40), nullable=False),
    Column("ts", Float, nullable=False), Column("received_at", Float, nullable=False),
    Column("payload", JSON, nullable=False),
)  # fmt: skip

plate_reads = Table(
    "plate_reads", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", BigInteger, ForeignKey("events.id"), nullable=False),
    Column("org_id", String(32), nullable=False), Column("site_id", String(32), nullable=False),
    Column("device_id", String(32), nullable=False), Column("ts", Float, nullable=False),
    Column("plate", PlateText, nullable=False), Column("score", Float),
    Column("member_id", String(64)), Column("payload", JSON, nullable=False),
)  # fmt: skip

rollups = Table(
    "rollups", metadata,
    Column("site_id", String(32), ForeignKey("sites.id"), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("vehicles", Integer, nullable=False), Column("plate_reads", Integer, nullable=False),
    Column("member_recognitions", Integer, nullable=False),
    Column("rentals", Integer, nullable=False), Column("rental_total_s", Float, nullable=False),
    Column("observed_s", Float, nullable=False), Column("online_s", Float, nullable=False),
)  # fmt: skip

# Rental durations per site and hour as a fixed histogram (cloud_sync/ingest/rollup.py
# DURATION_BOUNDS): the 95th percentile without reading raw events.
rollup_durations = Table(
    "rollup_durations", metadata,
    Column("site_id", String(32), ForeignKey("sites.id"), primary_key=True),
    Column("bucket", BigInteger, primary_key=True), Column("slot", Integer, primary_key=True),
    Column("count", Integer, nullable=False),
)  # fmt: skip

# ---------------------------------------------------------------------- v0002: config, members
config_templates = Table(
    "config_templates", metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(32), ForeignKey("organisations.id"), nullable=False),
    Column("name", String(120), nullable=False), Column("description", Text, nullable=False),
    Column("created_at", Float, nullable=False), Column("created_by", String(32)),
)  # fmt: skip

# Immutable: a version is inserted once and never updated.
config_template_versions = Table(
    "config_template_versions", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("template_id", String(32), ForeignKey("config_templates.id"), nullable=False),
    Column("number", Integer, nullable=False), Column("config", JSON, nullable=False),
    Column("comment", Text, nullable=False), Column("created_at", Float, nullable=False),
    Column("created_by", String(32)),
)  # fmt: skip

# One per (organisation, scope kind, scope id); the organisation's own has scope_id = org id.
config_assignments = Table(
    "config_assignments", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("org_id", String(32), ForeignKey("organisations.id"), nullable=False),
    Column("scope_kind", String(16), nullable=False),
    Column("scope_id", String(32), nullable=False),
    Column("template_version_id", BigInteger, ForeignKey("config_template_versions.id")),
    Column("overrides", JSON, nullable=False), Column("updated_at", Float, nullable=False),
    Column("updated_by", String(32)),
)  # fmt: skip

# What each device is served: its effective config, materialised; ``version`` grows per device
# with every change; ``seq`` is the change counter replicas poll on SQLite.
device_configs = Table(
    "device_configs", metadata,
    Column("device_id", String(32), ForeignKey("devices.id"), primary_key=True),
    Column("org_id", String(32), nullable=False),
    Column("version", Integer, nullable=False), Column("config", JSON, nullable=False),
    Column("digest", String(64), nullable=False), Column("template_version_id", BigInteger),
    Column("rollout_id", String(32)), Column("updated_at", Float, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("report_version", Integer), Column("report_outcome", String(16)),
    Column("report_message", Text), Column("report_at", Float),
)  # fmt: skip

rollouts = Table(
    "rollouts", metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(32), ForeignKey("organisations.id"), nullable=False),
    Column("name", String(120), nullable=False),
    Column("template_version_id", BigInteger, ForeignKey("config_template_versions.id"),
           nullable=False),
    Column("target", JSON, nullable=False), Column("waves", JSON, nullable=False),
    Column("failure_threshold", Float, nullable=False),
    Column("device_timeout_s", Float, nullable=False),
    Column("state", String(16), nullable=False), Column("reason", Text, nullable=False),
    Column("wave", Integer, nullable=False), Column("paused_at", Float),
    Column("created_at", Float, nullable=False), Column("created_by", String(32)),
    Column("updated_at", Float, nullable=False),
)  # fmt: skip

rollout_devices = Table(
    "rollout_devices", metadata,
    Column("rollout_id", String(32), ForeignKey("rollouts.id"), primary_key=True),
    Column("device_id", String(32), ForeignKey("devices.id"), primary_key=True),
    Column("wave", Integer, nullable=False), Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False), Column("version", Integer),
    Column("started_at", Float), Column("updated_at", Float, nullable=False),
)  # fmt: skip

member_lists = Table(
    "member_lists", metadata,
    Column("org_id", String(32), ForeignKey("organisations.id"), primary_key=True),
    Column("version", Integer, nullable=False), Column("updated_at", Float, nullable=False),
    Column("updated_by", String(32)),
)  # fmt: skip

members = Table(
    "members", metadata,
    Column("org_id", String(32), ForeignKey("organisations.id"), primary_key=True),
    Column("plate", String(32), primary_key=True),
    Column("member_id", String(64), nullable=False), Column("name", String(200), nullable=False),
    Column("plan", String(64), nullable=False), Column("status", String(32), nullable=False),
)  # fmt: skip
