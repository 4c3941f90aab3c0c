"""Tenancy, people, devices, commands, events, plate reads and rollups.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.String(32)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_PLATE = sa.String(32).with_variant(sa.String(32, collation="C"), "postgresql")


def _fk(table: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{table}.id")


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "organisations",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("name", sa.String(120), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "regions",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("org_id", _ID, _fk("organisations"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.UniqueConstraint("org_id", "name", name="regions_org_name"),
    )
    op.create_table(
        "sites",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("org_id", _ID, _fk("organisations"), nullable=False),
        sa.Column("region_id", _ID, _fk("regions"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("org_id", "name", name="sites_org_name"),
    )
    op.create_index("sites_region", "sites", ["region_id"])
    op.create_table(
        "users",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("org_id", _ID, _fk("organisations"), nullable=False),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope_kind", sa.String(16), nullable=False),
        sa.Column("scope_id", _ID),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("user_id", _ID, _fk("users"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_index("refresh_tokens_family", "refresh_tokens", ["family"])
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("window", sa.BigInteger, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
    )
    op.create_table(
        "enrolment_tokens",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("org_id", _ID, _fk("organisations"), nullable=False),
        sa.Column("site_id", _ID, _fk("sites"), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float),
        sa.Column("device_id", _ID),
    )
    op.create_table(
        "devices",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("org_id", _ID, _fk("organisations"), nullable=False),
        sa.Column("site_id", _ID, _fk("sites"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("edge_id", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("revoked_at", sa.Float),
        sa.Column("enrolled_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float),
        sa.Column("status", sa.String(16)),
        sa.Column("stream_status", sa.String(16)),
        sa.Column("config_version", sa.Integer),
        sa.Column("edge_version", sa.String(40), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
    )
    op.create_index("devices_org", "devices", ["org_id"])
    op.create_index("devices_site", "devices", ["site_id"])
    op.create_table(
        "commands",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("org_id", _ID, _fk("organisations"), nullable=False),
        sa.Column("device_id", _ID, _fk("devices"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", _ID),
        sa.Column("sent_at", sa.Float),
        sa.Column("done_at", sa.Float),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("commands_status_device", "commands", ["status", "device_id"])
    op.create_index("commands_device", "commands", ["device_id", "id"])
    op.create_table(
        "events",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("site_id", _ID, nullable=False),
        sa.Column("device_id", _ID, _fk("devices"), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.UniqueConstraint("device_id", "key", name="events_device_key"),
    )
    op.create_index("events_site_ts", "events", ["site_id", "ts"])
    op.create_table(
        "plate_reads",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.BigInteger, sa.ForeignKey("events.id"), nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("site_id", _ID, nullable=False),
        sa.Column("device_id", _ID, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("plate", _PLATE, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("member_id", sa.String(64)),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    op.create_index("plate_reads_plate", "plate_reads", ["org_id", "plate", "ts"])
    op.create_index("plate_reads_ts", "plate_reads", ["org_id", "ts"])
    op.create_index("plate_reads_site_ts", "plate_reads", ["site_id", "ts"])
    op.create_index("plate_reads_member", "plate_reads", ["org_id", "member_id", "ts"])
    op.create_table(
        "rollups",
        sa.Column("site_id", _ID, _fk("sites"), primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("vehicles", sa.Integer, nullable=False),
        sa.Column("plate_reads", sa.Integer, nullable=False),
        sa.Column("member_recognitions", sa.Integer, nullable=False),
        sa.Column("rentals", sa.Integer, nullable=False),
        sa.Column("rental_total_s", sa.Float, nullable=False),
        sa.Column("observed_s", sa.Float, nullable=False),
        sa.Column("online_s", sa.Float, nullable=False),
    )
    op.create_index("rollups_bucket", "rollups", ["bucket"])
    op.create_table(
        "rollup_durations",
        sa.Column("site_id", _ID, _fk("sites"), primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("slot", sa.Integer, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
