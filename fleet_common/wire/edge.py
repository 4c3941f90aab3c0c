"""The edge's wire types: what its HTTP API sends and takes, as pydantic models.

The edge serves them and its clients (the console, the cloud, tests) parse them, all from this
one module of the shared kernel: pydantic and the standard library only (a test imports it in a
fresh interpreter and fails if anything heavy comes along). Requests refuse unknown fields;
responses ignore them, so an older console keeps reading a newer edge.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from fleet_common.wire.base import RequestModel, ResponseModel
from fleet_common.wire.errors import ErrorBody as ErrorBody  # re-exported: every route documents it

StreamStatus = Literal["online", "degraded", "offline"]
HealthStatus = Literal["ok", "degraded", "failing"]
Role = Literal["viewer", "operator", "admin"]

# Response headers of the picture routes.
H_SEQ = "X-Frame-Seq"
H_CAPTURED_AT = "X-Frame-Captured-At"
H_AGE_MS = "X-Frame-Age-Ms"
H_STREAM_STATUS = "X-Stream-Status"


class PictureErrorBody(ErrorBody):
    """The error of a picture route (`no_frame`, `stale`): the stream's state beside it."""

    stream_status: StreamStatus | None = Field(None, description="On picture errors.")
    age_ms: float | None = Field(None, description="Age of the newest picture, if any.")


class SnapshotMeta(ResponseModel):
    seq: int = Field(description="Sequence number, increasing within one run of the edge.")
    captured_at: str = Field(description="When the frame arrived from the camera (RFC 3339).")
    age_ms: float = Field(description="Milliseconds since then.")
    width: int
    height: int
    bytes: int = Field(description="Size of the full-size JPEG.")
    keyframe: bool = Field(description="Decoded from a keyframe alone.")


class CacheStats(ResponseModel):
    snapshots: int
    bytes: int
    max_bytes: int


class SourceInfo(ResponseModel):
    scheme: str
    url: str = Field(description="Source URL with any password masked.")
    connected: bool
    last_error: str | None
    sessions: int = Field(description="Connections made since start (1 + reconnects).")
    codec: str | None
    keyframe_interval_s: float | None = Field(description="Measured camera GOP interval.")
    fps_in: float = Field(description="Frames received per second (recent).")
    fps_decoded: float = Field(description="Frames decoded per second (recent).")
    frames_received: int
    frames_decoded: int
    decode_ms: float | None = Field(description="Time to decode the last frame.")
    decode_lag_ms: float | None = Field(description="Arrival to decoded picture, last frame.")
    full_decode: bool = Field(description="Decoding every frame (else keyframes only).")


class SnapshotInfo(ResponseModel):
    stream_status: StreamStatus
    latest: SnapshotMeta | None
    source: SourceInfo
    cache: CacheStats


class SnapshotList(ResponseModel):
    snapshots: list[SnapshotMeta] = Field(description="Newest first.")


class ComponentHealth(ResponseModel):
    status: HealthStatus
    detail: str = ""


class Health(ResponseModel):
    status: HealthStatus
    id: str = Field(
        "",
        description="Stable device id (the zeroconf TXT `id`): tells two URLs of one edge apart.",
    )
    name: str
    site: str
    version: str
    uptime_s: float
    stream_status: StreamStatus
    components: dict[str, ComponentHealth]


class ApiKeyInfo(ResponseModel):
    id: str
    role: Role
    label: str
    created_at: str


class ApiKeyList(ResponseModel):
    keys: list[ApiKeyInfo]


# ---------------------------------------------------------------------- events (GET /api/events)
class EventOut(ResponseModel):
    """One event of the edge's log; also the `data` of each Server-Sent Event."""

    id: int = Field(description="Increasing id; send the last one seen as Last-Event-ID.")
    ts: str = Field(description="When it happened (RFC 3339).")
    kind: str = Field(
        description="plate.read, member.recognized, cart, alert, stream, recovery, config."
    )
    payload: dict[str, Any] = Field(description="Kind-specific fields (see the API docs).")


class EventList(ResponseModel):
    events: list[EventOut] = Field(description="Newest first.")


# ---------------------------------------------------------------------- live config (/api/config)
class ConfigDoc(ResponseModel):
    """A config version: the whole model as JSON, secrets masked as `***`."""

    version: int = Field(description="Config version (also the ETag of GET /api/config).")
    config: dict[str, Any] = Field(description="The config (schema: GET /api/config/schema).")


class ConfigApplied(ResponseModel):
    """The outcome of a PUT, PATCH or rollback."""

    version: int = Field(description="The running version now (unchanged if nothing changed).")
    config: dict[str, Any] = Field(description="The running config, secrets masked.")
    hot: list[str] = Field(description="Dotted keys applied in place.")
    restarted: list[str] = Field(description="Components restarted: camera, guards, discovery.")


class ConfigVersionInfo(ResponseModel):
    version: int
    created_at: str = Field(description="When the version was made (RFC 3339).")
    source: str = Field(description="startup, api, auto-rollback …")
    reason: str
    good: bool | None = Field(
        description="True: the stream came online with it; False: it failed; null: not judged."
    )


class ConfigHistory(ResponseModel):
    versions: list[ConfigVersionInfo] = Field(description="Newest first.")


class ConfigFieldError(ResponseModel):
    path: str = Field(description="Dotted key, e.g. `camera.source`; `(root)` for the body.")
    reason: str


class ConfigErrorBody(ErrorBody):
    """422 of the config routes: every problem with its key; nothing was changed."""

    errors: list[ConfigFieldError]


class ConfigRollbackRequest(RequestModel):
    version: int | None = Field(
        None, description="Version to go back to; omitted: the newest good one before the current."
    )


# ---------------------------------------------------------------------- cart locks (/api/carts)
CartStateName = Literal["locked", "unlocked", "in_use", "missing", "returned", "fault", "unknown"]


class CartInfo(ResponseModel):
    id: int = Field(description="Cart number (path parameter of the commands).")
    board: int = Field(description="Modbus unit id of its lock board.")
    lock: int = Field(description="Lock number on that board (1-based).")
    state: CartStateName = Field(
        description="locked (in its bay, the lock holds: the only free state); unlocked"
        " (released, cart still in its bay); in_use (out on a rental, even if the lock closed"
        " behind it); missing (gone from a bay nobody unlocked); returned (back, being locked);"
        " fault (bolt disagrees with the command); unknown (board not answering)."
    )
    previous: CartStateName | None = Field(description="The state before the last change.")
    changed_at: str = Field(description="When the state last changed (RFC 3339).")
    detail: str = Field(description="Why (for fault and unknown), else empty.")
    cart_present: bool | None = Field(description="The cart-present switch; null if unknown.")
    bolt_closed: bool | None = Field(description="The bolt sensor; null if unknown.")


class CartList(ResponseModel):
    enabled: bool = Field(description="False: this edge drives no lock boards (locks.enabled).")
    carts: list[CartInfo]
    boards_down: list[int] = Field(description="Unit ids of boards that do not answer.")


class CartCommand(RequestModel):
    request_id: str = Field(
        min_length=1,
        max_length=128,
        description="Client-chosen id: a repeat with the same id returns the first outcome and"
        " moves no lock twice.",
    )


class CartCommandResult(ResponseModel):
    cart: int
    action: Literal["lock", "unlock"]
    request_id: str
    state: CartStateName = Field(description="The state the sensors confirmed.")
    confirmed_at: str = Field(description="RFC 3339.")


# ---------------------------------------------------------------- plates (edge/plates)
PlateTrigger = Literal["handshake", "motion", "interval"]


class PlateBox(ResponseModel):
    xmin: int
    ymin: int
    xmax: int
    ymax: int


class PlateCandidate(ResponseModel):
    plate: str
    score: float


class VehicleInfo(ResponseModel):
    type: str
    score: float
    box: PlateBox | None = None


class MemberInfo(ResponseModel):
    id: str
    name: str
    plan: str
    status: str = Field(description="As in the member list, e.g. `active`, `suspended`.")
    match: Literal["exact", "fuzzy"] = Field(
        description="`fuzzy`: the read differs from the member's plate by one character."
    )
    plate: str = Field(description="The member's plate as listed.")


class PlateReadInfo(ResponseModel):
    """One stored read; also the payload of the `plate.read` event (the fields in the order
    the edge has always stored them)."""

    id: int = Field(description="Read id; the crop is at `crop_url` while kept.")
    plate: str = Field(description="Normalised: upper case letters and digits only.")
    text: str = Field(description="What the recogniser read, before normalising.")
    score: float = Field(description="Confidence in the text, 0..1.")
    dscore: float = Field(description="Confidence that this is a plate, 0..1.")
    recognizer: str = Field(description="`local` or `platerecognizer`.")
    trigger: PlateTrigger
    snapshot_seq: int = Field(description="The picture read (`/api/snapshots/{seq}` while kept).")
    captured_at: str = Field(description="When that picture arrived from the camera (RFC 3339).")
    box: PlateBox | None
    region: str | None = None
    vehicle: VehicleInfo | None = None
    format: str | None = Field(None, description="The plate format (regex) the text fits.")
    candidates: list[PlateCandidate] = Field(default_factory=list)
    member: MemberInfo | None = None
    latency_ms: float = Field(description="Time the recognition took.")
    crop_url: str | None = None


class PlateList(ResponseModel):
    reads: list[PlateReadInfo] = Field(description="Newest first.")
    next_before_id: int | None = Field(
        None, description="Pass as `before_id` for the next (older) page; null at the end."
    )


class RecognizeRequest(RequestModel):
    max_age_ms: int | None = Field(
        None, ge=0, le=10_000,
        description="Read a picture at most this old (default: plates.handshake_max_age_ms).",
    )  # fmt: skip
    timeout_s: float | None = Field(
        None, gt=0, le=60, description="Answer within this (default: plates.handshake_timeout_s)."
    )


class RecognizeResult(ResponseModel):
    """The handshake's answer: the read (or null: no plate) and the exact picture used."""

    read: PlateReadInfo | None
    duplicate: bool = Field(
        description="The plate was already read at this bay within the dedup window: `read` is"
        " that earlier stored read, and no new event was sent."
    )
    snapshot: SnapshotMeta
    recognizers: list[str] = Field(description="Recognisers asked, in order.")
    latency_ms: float = Field(description="From the request to the answer, picture wait included.")
    note: str | None = Field(None, description="Why there is no read, or a fallback taken.")


class PlatesStatus(ResponseModel):
    policy: str = Field(description="The policy in force (`auto` resolved).")
    recognizers: dict[str, dict[str, Any]] = Field(
        description="State of each recogniser (`state` first), e.g. quota and breaker of the cloud."
    )
    members: dict[str, Any] = Field(description="Member list: file, count, error.")
    vehicle_present: bool
    reads_stored: int | None = None
