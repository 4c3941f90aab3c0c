"""The edge's wire types: what its HTTP API sends and takes, as pydantic models.

Clients (the console, the cloud, tests) import this module, so it must stay light: pydantic and
the standard library only. A test imports it in a fresh interpreter and fails if OpenCV, PyAV,
pyserial, SQLAlchemy or Qt come along.
"""

from __future__ import annotations

from typing import Literal

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
