"""The edge's wire types: what its HTTP API sends and takes, as pydantic models.

Clients (the console, the cloud, tests) import this module, so it must stay light: pydantic and
the standard library only. A test imports it in a fresh interpreter and fails if OpenCV, PyAV,
pyserial, SQLAlchemy or Qt come along.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

StreamStatus = Literal["online", "degraded", "offline"]
HealthStatus = Literal["ok", "degraded", "failing"]
Role = Literal["viewer", "operator", "admin"]

# Response headers of the picture routes.
H_SEQ = "X-Frame-Seq"
H_CAPTURED_AT = "X-Frame-Captured-At"
H_AGE_MS = "X-Frame-Age-Ms"
H_STREAM_STATUS = "X-Stream-Status"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorBody(_Wire):
    """Every error response: a stable machine code and a sentence for people."""

    error: str = Field(description="Machine-readable code, e.g. `unauthorized`, `no_frame`.")
    message: str = Field(description="What went wrong, for people.")
    stream_status: StreamStatus | None = Field(None, description="On picture errors.")
    age_ms: float | None = Field(None, description="Age of the newest picture, if any.")


class SnapshotMeta(_Wire):
    seq: int = Field(description="Sequence number, increasing within one run of the edge.")
    captured_at: str = Field(description="When the frame arrived from the camera (RFC 3339).")
    age_ms: float = Field(description="Milliseconds since then.")
    width: int
    height: int
    bytes: int = Field(description="Size of the full-size JPEG.")
    keyframe: bool = Field(description="Decoded from a keyframe alone.")


class CacheStats(_Wire):
    snapshots: int
    bytes: int
    max_bytes: int


class SourceInfo(_Wire):
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


class SnapshotInfo(_Wire):
    stream_status: StreamStatus
    latest: SnapshotMeta | None
    source: SourceInfo
    cache: CacheStats


class SnapshotList(_Wire):
    snapshots: list[SnapshotMeta] = Field(description="Newest first.")


class ComponentHealth(_Wire):
    status: HealthStatus
    detail: str = ""


class Health(_Wire):
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


class ApiKeyInfo(_Wire):
    id: str
    role: Role
    label: str
    created_at: str


class ApiKeyList(_Wire):
    keys: list[ApiKeyInfo]


# ---------------------------------------------------------------------- events (GET /api/events)
class EventOut(_Wire):
    """One event of the edge's log; also the `data` of each Server-Sent Event."""

    id: int = Field(description="Increasing id; send the last one seen as Last-Event-ID.")
    ts: str = Field(description="When it happened (RFC 3339).")
    kind: str = Field(description="stream, recovery, alert, config, plate, cart.")
    payload: dict[str, Any] = Field(description="Kind-specific fields (see the API docs).")


class EventList(_Wire):
    events: list[EventOut] = Field(description="Newest first.")


# ---------------------------------------------------------------------- live config (/api/config)
class ConfigDoc(_Wire):
    """A config version: the whole model as JSON, secrets masked as `***`."""

    version: int = Field(description="Config version (also the ETag of GET /api/config).")
    config: dict[str, Any] = Field(description="The config (schema: GET /api/config/schema).")


class ConfigApplied(_Wire):
    """The outcome of a PUT, PATCH or rollback."""

    version: int = Field(description="The running version now (unchanged if nothing changed).")
    config: dict[str, Any] = Field(description="The running config, secrets masked.")
    hot: list[str] = Field(description="Dotted keys applied in place.")
    restarted: list[str] = Field(description="Components restarted: camera, guards, discovery.")


class ConfigVersionInfo(_Wire):
    version: int
    created_at: str = Field(description="When the version was made (RFC 3339).")
    source: str = Field(description="startup, api, auto-rollback …")
    reason: str
    good: bool | None = Field(
        description="True: the stream came online with it; False: it failed; null: not judged."
    )


class ConfigHistory(_Wire):
    versions: list[ConfigVersionInfo] = Field(description="Newest first.")


class ConfigFieldError(_Wire):
    path: str = Field(description="Dotted key, e.g. `camera.source`; `(root)` for the body.")
    reason: str


class ConfigErrorBody(_Wire):
    """422 of the config routes: every problem with its key; nothing was changed."""

    error: str = Field(description="`invalid_config`.")
    message: str
    errors: list[ConfigFieldError]


class ConfigRollbackRequest(_Wire):
    version: int | None = Field(
        None, description="Version to go back to; omitted: the newest good one before the current."
    )


# ---------------------------------------------------------------------- cart locks (/api/carts)
CartStateName = Literal["locked", "unlocked", "in_use", "returned", "fault", "unknown"]


class CartInfo(_Wire):
    id: int = Field(description="Cart number (path parameter of the commands).")
    board: int = Field(description="Modbus unit id of its lock board.")
    lock: int = Field(description="Lock number on that board (1-based).")
    state: CartStateName = Field(
        description="locked; unlocked (released, cart still in its bay); in_use (released and"
        " gone); returned (back, being locked); fault (bolt disagrees with the command);"
        " unknown (board not answering)."
    )
    previous: CartStateName | None = Field(description="The state before the last change.")
    changed_at: str = Field(description="When the state last changed (RFC 3339).")
    detail: str = Field(description="Why (for fault and unknown), else empty.")
    cart_present: bool | None = Field(description="The cart-present switch; null if unknown.")
    bolt_closed: bool | None = Field(description="The bolt sensor; null if unknown.")


class CartList(_Wire):
    enabled: bool = Field(description="False: this edge drives no lock boards (locks.enabled).")
    carts: list[CartInfo]
    boards_down: list[int] = Field(description="Unit ids of boards that do not answer.")


class CartCommand(_Wire):
    request_id: str = Field(
        min_length=1,
        max_length=128,
        description="Client-chosen id: a repeat with the same id returns the first outcome and"
        " moves no lock twice.",
    )


class CartCommandResult(_Wire):
    cart: int
    action: Literal["lock", "unlock"]
    request_id: str
    state: CartStateName = Field(description="The state the sensors confirmed.")
    confirmed_at: str = Field(description="RFC 3339.")


# ---------------------------------------------------------------- plates (edge/plates)
PlateTrigger = Literal["handshake", "motion", "interval"]


class PlateBox(_Wire):
    xmin: int
    ymin: int
    xmax: int
    ymax: int


class PlateCandidate(_Wire):
    plate: str
    score: float


class VehicleInfo(_Wire):
    type: str
    score: float
    box: PlateBox | None = None


class MemberInfo(_Wire):
    id: str
    name: str
    plan: str
    status: str = Field(description="As in the member list, e.g. `active`, `suspended`.")
    match: Literal["exact", "fuzzy"] = Field(
        description="`fuzzy`: the read differs from the member's plate by one character."
    )
    plate: str = Field(description="The member's plate as listed.")


class PlateReadInfo(_Wire):
    """One stored read; also the payload of the `plate.read` event."""

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
    candidates: list[PlateCandidate] = Field(default_factory=list)
    format: str | None = Field(None, description="The plate format (regex) the text fits.")
    member: MemberInfo | None = None
    latency_ms: float = Field(description="Time the recognition took.")
    crop_url: str | None = None


class PlateList(_Wire):
    reads: list[PlateReadInfo] = Field(description="Newest first.")
    next_before_id: int | None = Field(
        None, description="Pass as `before_id` for the next (older) page; null at the end."
    )


class RecognizeRequest(_Wire):
    max_age_ms: int | None = Field(
        None, ge=0, le=10_000,
        description="Read a picture at most this old (default: plates.handshake_max_age_ms).",
    )  # fmt: skip
    timeout_s: float | None = Field(
        None, gt=0, le=60, description="Answer within this (default: plates.handshake_timeout_s)."
    )


class RecognizeResult(_Wire):
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


class PlatesStatus(_Wire):
    policy: str = Field(description="The policy in force (`auto` resolved).")
    recognizers: dict[str, dict[str, Any]] = Field(
        description="State of each recogniser (`state` first), e.g. quota and breaker of the cloud."
    )
    members: dict[str, Any] = Field(description="Member list: file, count, error.")
    vehicle_present: bool
    reads_stored: int | None = None
