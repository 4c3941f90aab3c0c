"""The cloud's API types: what edges and supervisors send to ``carwash-cloud`` and get back.

Pydantic and the standard library only: the edge's sync client and the console import this.
Times are RFC 3339 strings in UTC (:mod:`fleet_common.timefmt`) or Unix seconds where noted.

An ingest batch maps the edge's outbox rows one to one: ``key`` is the row's
``idempotency_key`` (unique per device; the cloud's idempotency key is the device id and this),
``seq`` its id, ``kind`` the event's kind (``plate.read``, ``cart``...), ``topic`` the outbox
topic, ``ts`` its ``created_at`` and ``payload`` its ``payload_json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from fleet_common.wire.base import RequestModel, ResponseModel

Role = Literal["admin", "operator", "viewer"]
ScopeKind = Literal["organisation", "region", "site"]
CommandKind = Literal["restart_stream", "read_plate", "resync_members"]
CommandStatus = Literal["pending", "sent", "succeeded", "failed", "expired"]
StreamStatus = Literal["online", "degraded", "offline", "unknown"]
EventKind = Literal[
    "plate.read", "member.recognized", "cart", "rental", "stream", "alert", "config", "recovery"
]
GroupBy = Literal["site", "region", "hour", "day"]

MAX_KEY = 64  # an event key (the edge's outbox idempotency key: a uuid4 hex)


# ---------------------------------------------------------------------- people
class LoginRequest(RequestModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=256)


class TokenPair(ResponseModel):
    access_token: str = Field(description="JWT (HS256); send as `Authorization: Bearer ...`.")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str = Field(description="Opaque, single use: `auth/refresh` rotates it.")
    role: Role
    scope: ScopeKind


# ---------------------------------------------------------------------- devices
class EnrollRequest(RequestModel):
    token: str = Field(min_length=1, max_length=256, description="The one-time enrolment token.")
    name: str = Field(default="", max_length=120, description="The edge's name (its bay).")
    edge_id: str = Field(default="", max_length=64, description="The edge's own stable id.")
    edge_version: str = Field(default="", max_length=40)


class EnrollResponse(ResponseModel):
    device_id: str
    device_key: str = Field(description="Shown once; send as `Authorization: Bearer ...`.")
    site_id: str
    heartbeat_interval_s: int


class DeviceKey(ResponseModel):
    device_id: str
    device_key: str = Field(description="The new key, shown once; the old one stops working.")


class CommandResult(RequestModel):
    id: int
    ok: bool
    detail: str = Field(default="", max_length=500)


class HeartbeatRequest(RequestModel):
    status: Literal["ok", "degraded", "failing"] = "ok"
    stream_status: StreamStatus = "unknown"
    config_version: int | None = Field(default=None, ge=0)
    edge_version: str = Field(default="", max_length=40)
    metrics: dict[str, float] = Field(
        default_factory=dict,
        max_length=32,
        description="Key figures: `fps`, `frame_age_ms`, `cpu_temp_c`, `outbox_rows`...",
    )
    command_results: list[CommandResult] = Field(default_factory=list, max_length=50)


class Command(ResponseModel):
    id: int
    kind: CommandKind
    args: dict[str, Any] = Field(default_factory=dict)


class HeartbeatResponse(ResponseModel):
    interval_s: int = Field(description="Send the next heartbeat within this many seconds.")
    commands: list[Command] = Field(default_factory=list)


class CommandRequest(RequestModel):
    kind: CommandKind
    args: dict[str, Any] = Field(default_factory=dict, max_length=16)


class CommandInfo(ResponseModel):
    id: int
    device_id: str
    kind: CommandKind
    args: dict[str, Any]
    status: CommandStatus
    created_at: str
    sent_at: str | None = None
    done_at: str | None = None
    detail: str = ""


class CommandList(ResponseModel):
    commands: list[CommandInfo]


class DeviceInfo(ResponseModel):
    id: str
    name: str
    site_id: str
    site: str
    region: str
    online: bool
    status: str | None
    stream_status: str | None
    last_heartbeat: str | None
    config_version: int | None
    edge_version: str
    metrics: dict[str, float]
    revoked: bool
    enrolled_at: str


class DeviceList(ResponseModel):
    devices: list[DeviceInfo]


# ---------------------------------------------------------------------- ingest
class IngestEvent(RequestModel):
    key: str = Field(min_length=1, max_length=MAX_KEY, description="Unique per device.")
    seq: int | None = Field(default=None, ge=0, description="The edge's outbox row id.")
    kind: EventKind
    topic: str = Field(default="", max_length=40)
    ts: str = Field(max_length=40, description="When the edge recorded it (RFC 3339).")
    payload: dict[str, Any]


class IngestBatch(RequestModel):
    events: list[IngestEvent]


class IngestResult(ResponseModel):
    accepted: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events stored before (a replay): nothing changed.")


# ---------------------------------------------------------------------- reads
class SiteInfo(ResponseModel):
    id: str
    name: str
    region_id: str
    region: str
    lat: float | None
    lon: float | None
    timezone: str
    devices: int


class SiteList(ResponseModel):
    sites: list[SiteInfo]


class RollupRow(ResponseModel):
    key: str = Field(description="Site id, region id, or the bucket's start (RFC 3339).")
    label: str = Field(description="Site or region name, or the bucket's start.")
    vehicles: int
    plate_reads: int
    member_recognitions: int
    rentals: int
    rental_mean_s: float | None
    rental_p95_s: float | None
    uptime: float | None = Field(description="Share of observed time the stream was online.")
    observed_s: float


class RollupList(ResponseModel):
    group_by: GroupBy
    rows: list[RollupRow]


class PlateReadInfo(ResponseModel):
    id: int
    ts: str
    plate: str
    score: float | None
    member_id: str | None
    site_id: str
    device_id: str
    payload: dict[str, Any]


class PlatePage(ResponseModel):
    reads: list[PlateReadInfo]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class Health(ResponseModel):
    status: Literal["ok"] = "ok"
    version: str
    database: str
    schema_revision: str | None
