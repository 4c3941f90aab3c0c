"""Config templates, assignments, delivered device configs, rollouts; members.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.String(32)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{table}.id")


def upgrade() -> None:
    op.add_column("devices", sa.Column("cloud_config_version", sa.Integer))
    op.create_table(
        "config_templates",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("org_id", _ID, _fk("organisations"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", _ID),
        sa.UniqueConstraint("org_id", "name", name="config_templates_org_name"),
    )
    op.create_table(
        "config_template_versions",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("template_id", _ID, _fk("config_templates"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", _ID),
        sa.UniqueConstraint("template_id", "number", name="config_template_versions_number"),
    )
    op.create_table(
        "config_assignments",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("org_id", _ID, _fk("organisations"), nullable=False),
        sa.Column("scope_kind", sa.String(16), nullable=False),
        sa.Column("scope_id", _ID, nullable=False),
        sa.Column("template_version_id", sa.BigInteger, _fk("config_template_versions")),
        sa.Column("overrides", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", _ID),
        sa.UniqueConstraint("org_id", "scope_kind", "scope_id", name="config_assignments_scope"),
    )
    op.create_table(
        "device_configs",
        sa.Column("device_id", _ID, _fk("devices"), primary_key=True),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("template_version_id", sa.BigInteger),
        sa.Column("rollout_id", _ID),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("report_version", sa.Integer),
        sa.Column("report_outcome", sa.String(16)),
        sa.Column("report_message", sa.Text),
        sa.Column("report_at", sa.Float),
    )
    op.create_index("device_configs_seq", "device_configs", ["seq"])
    op.create_table(
        "rollouts",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("org_id", _ID, _fk("organisations"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column(
            "template_version_id", sa.BigInteger, _fk("config_template_versions"), nullable=False
        ),
        sa.Column("target", sa.JSON, nullable=False),
        sa.Column("waves", sa.JSON, nullable=False),
        sa.Column("failure_threshold", sa.Float, nullable=False),
        sa.Column("device_timeout_s", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("paused_at", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", _ID),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("rollouts_state", "rollouts", ["state"])
    op.create_index("rollouts_org", "rollouts", ["org_id", "created_at"])
    op.create_table(
        "rollout_devices",
        sa.Column("rollout_id", _ID, _fk("rollouts"), primary_key=True),
        sa.Column("device_id", _ID, _fk("devices"), primary_key=True),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("started_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("rollout_devices_device", "rollout_devices", ["device_id", "state"])
    op.create_table(
        "member_lists",
        sa.Column("org_id", _ID, _fk("organisations"), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", _ID),
    )
    op.create_table(
        "members",
        sa.Column("org_id", _ID, _fk("organisations"), primary_key=True),
        sa.Column("plate", sa.String(32), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
    )
