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
AssignmentScope = Literal["organisation", "region", "site", "device"]
ConfigOutcome = Literal["applied", "rejected", "rolled_back"]
RolloutState = Literal["running", "paused", "succeeded", "rolled_back", "aborted"]
RolloutDeviceState = Literal[
    "waiting", "in_progress", "succeeded", "failed", "rolled_back", "skipped"
]
WaveState = Literal["waiting", "running", "succeeded", "failed", "rolled_back", "skipped"]

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
    config_version: int | None = Field(
        default=None, ge=0, description="The edge's own (local) config version."
    )
    cloud_config_version: int | None = Field(
        default=None,
        ge=0,
        description="The `version` of the cloud config (`GET devices/config`) the edge runs now;"
        " with a healthy stream it is what rollouts wait for. None: no cloud config applied.",
    )
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
    cloud_config_version: int | None = None
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


# ---------------------------------------------------------------------- config: the device side
# GET /api/v1/devices/config (device key): the device's effective config. The ETag is the
# version in quotes (`"7"`); send it back as `If-None-Match` with `?wait=SECONDS` (<= 60) and
# the answer comes as soon as the version changes (200), or after the wait with 304 (no body).
# 404 `no_config` (after the wait, if any): nothing is assigned to this device; keep the local
# config. POST /api/v1/devices/config/report (204) says what became of a version.
class DeviceConfig(ResponseModel):
    version: int = Field(description="Per device, grows with every change; also the ETag.")
    config: dict[str, Any] = Field(
        description="A whole edge config document (EdgeConfig's JSON shape, as `carwash-edge"
        " config-schema` describes it): what it leaves out takes the edge's defaults."
    )
    rollout_id: str | None = Field(description="The rollout that delivered it, if any.")
    template_version_id: int | None = Field(description="The template version it is built on.")
    updated_at: str


class ConfigReport(RequestModel):
    version: int = Field(ge=1, description="The `version` of `GET devices/config` this is about.")
    outcome: ConfigOutcome = Field(
        description="`applied` (running it now), `rejected` (refused it; still on the previous"
        " one), `rolled_back` (applied it, then went back to the last good one by itself)."
    )
    message: str = Field(default="", max_length=500)


# ---------------------------------------------------------------------- config: templates
class TemplateRequest(RequestModel):
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=500)
    config: dict[str, Any] = Field(description="The first version: a whole edge config document.")
    comment: str = Field(default="", max_length=500)


class TemplateVersionRequest(RequestModel):
    config: dict[str, Any] = Field(description="A whole edge config document.")
    comment: str = Field(default="", max_length=500)


class TemplateVersionInfo(ResponseModel):
    id: int = Field(description="Unique across templates: what assignments and rollouts name.")
    template_id: str
    number: int = Field(description="1, 2, ... within the template.")
    config: dict[str, Any]
    comment: str
    created_at: str
    created_by: str | None


class TemplateInfo(ResponseModel):
    id: str
    name: str
    description: str
    latest_version: int
    created_at: str
    versions: list[TemplateVersionInfo] = Field(default_factory=list)


class TemplateList(ResponseModel):
    templates: list[TemplateInfo]


# ---------------------------------------------------------------------- config: assignments
class AssignmentRequest(RequestModel):
    scope: AssignmentScope
    scope_id: str | None = Field(
        default=None, max_length=64, description="Region, site or device id; none for the org."
    )
    template_version_id: int | None = Field(
        default=None, description="The base template version at this level; none: only overrides."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Merged (deep) over the base; a partial config."
    )


class AssignmentInfo(ResponseModel):
    id: int
    scope: AssignmentScope
    scope_id: str | None
    template_version_id: int | None
    overrides: dict[str, Any]
    updated_at: str
    updated_by: str | None


class AssignmentList(ResponseModel):
    assignments: list[AssignmentInfo]


class ConfigLayer(ResponseModel):
    source: str = Field(description="`template`, `rollout`, or the assignment's scope.")
    scope_id: str | None = None
    template_version_id: int | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)


class EffectiveConfig(ResponseModel):
    device_id: str
    config: dict[str, Any] = Field(description="What the device gets now.")
    version: int | None = Field(description="The delivered version; none until one is.")
    applied_version: int | None = Field(description="The version the device reports running.")
    template_version_id: int | None
    rollout_id: str | None
    layers: list[ConfigLayer] = Field(description="Base first, then overrides, lowest first.")


# ---------------------------------------------------------------------- config: rollouts
class RolloutTarget(RequestModel):
    organisation: bool = Field(default=False, description="Every device of the organisation.")
    regions: list[str] = Field(default_factory=list, max_length=500)
    sites: list[str] = Field(default_factory=list, max_length=5000)
    devices: list[str] = Field(default_factory=list, max_length=50000)


class RolloutRequest(RequestModel):
    template_version_id: int
    target: RolloutTarget
    waves: list[float] = Field(
        default_factory=lambda: [0.1, 1.0],
        min_length=1,
        max_length=20,
        description="Cumulative share of the target reached by the end of each wave, rising,"
        " the last 1.0: `[0.1, 1.0]` is a 10 % canary, then the rest. Each wave gets at least"
        " one device.",
    )
    failure_threshold: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="The share of a wave's devices that may fail; beyond it the rollout is"
        " rolled back (every device it reached gets its previous config back).",
    )
    device_timeout_s: float = Field(
        default=600.0,
        ge=1.0,
        le=86400.0,
        description="A device that has not applied the version with a healthy stream by then"
        " counts as failed.",
    )
    name: str = Field(default="", max_length=120)


class RolloutWave(ResponseModel):
    index: int
    share: float
    state: WaveState
    devices: int
    waiting: int
    in_progress: int
    succeeded: int
    failed: int
    started_at: str | None


class RolloutDevice(ResponseModel):
    device_id: str
    wave: int
    state: RolloutDeviceState
    reason: str
    version: int | None = Field(description="The config version delivered to it.")
    updated_at: str


class RolloutInfo(ResponseModel):
    id: str
    name: str
    state: RolloutState
    reason: str = Field(description="Why it is in this state (a failure, who paused it...).")
    template_version_id: int
    template_id: str
    template_version: int
    failure_threshold: float
    device_timeout_s: float
    created_at: str
    created_by: str | None
    updated_at: str
    waves: list[RolloutWave]
    devices: list[RolloutDevice] = Field(
        default_factory=list, description="Per device (only on `GET rollouts/{id}`)."
    )


class RolloutList(ResponseModel):
    rollouts: list[RolloutInfo]


# ---------------------------------------------------------------------- members
# GET /api/v1/devices/members (device key): the organisation's list, shaped as the edge's
# members file (edge/plates/members.py reads it as is; `version` is ignored there). The ETag is
# the version in quotes; `If-None-Match` with it answers 304.
class MemberEntry(RequestModel):
    plate: str = Field(min_length=1, max_length=32)
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(default="", max_length=200)
    plan: str = Field(default="", max_length=64)
    status: str = Field(default="active", max_length=32)


class MemberUpload(RequestModel):
    members: list[MemberEntry] = Field(max_length=200_000)


class MemberFile(ResponseModel):
    version: int = Field(description="Grows with every change; 0 before the first upload.")
    members: list[dict[str, str]] = Field(
        description="`{plate, id, name, plan, status}` each, plates normalised (A-Z, 0-9)."
    )


class MembersInfo(ResponseModel):
    version: int
    count: int
    updated_at: str | None
