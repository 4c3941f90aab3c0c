"""The camera's section (the source and how its stream is decoded) and the snapshot cache's."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator

from edge.config.base import SECRET_URL_KEY, Section, apply_class

SOURCE_SCHEMES = ("rtsp", "rtsps", "file", "synthetic", "usb")


class CameraConfig(Section):
    source: str = Field(
        "synthetic://",
        description=(
            "Camera URL: rtsp://[user:pass@]host[:port]/path, rtsps://..., file:///path/video.mp4"
            " (looped in real time), synthetic://?width=1280&height=720&fps=10 (a generated bay"
            " scene), usb:///dev/video0. Credentials in it (user info, or ?user=&password= as"
            " Dahua and Hikvision take them) are masked in the API, the logs and the health."
        ),
        json_schema_extra={**apply_class("restart:camera"), SECRET_URL_KEY: True},
    )
    username: str | None = Field(
        None,
        description="RTSP user name, if not in the URL. Never logged.",
        json_schema_extra=apply_class("restart:camera"),
    )
    password: SecretStr | None = Field(
        None,
        description="RTSP password, if not in the URL. Never logged.",
        json_schema_extra=apply_class("restart:camera"),
    )
    rtsp_transport: Literal["tcp", "udp"] = Field(
        "tcp",
        description="RTSP transport; TCP survives lossy Wi-Fi and NAT better.",
        json_schema_extra=apply_class("restart:camera"),
    )
    connect_timeout_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Seconds to wait for the camera to answer when connecting.",
        json_schema_extra=apply_class("restart:camera"),
    )
    read_timeout_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Seconds without data after which the stream is reopened.",
        json_schema_extra=apply_class("restart:camera"),
    )
    freshness_target_ms: int = Field(
        2500,
        ge=100,
        le=60_000,
        description=(
            "Oldest picture the edge may serve without being asked for a fresher one. While the"
            " camera's keyframe interval is within it, only keyframes are decoded (cheap);"
            " otherwise every frame is."
        ),
        json_schema_extra=apply_class("hot"),
    )
    offline_after_ms: int = Field(
        10_000,
        ge=500,
        description="Frame age after which the stream is reported offline (between the target"
        " and this it is degraded).",
        json_schema_extra=apply_class("hot"),
    )
    reconnect_max_s: float = Field(
        30.0,
        ge=1,
        le=600,
        description="Cap of the exponential reconnect backoff, in seconds.",
        json_schema_extra=apply_class("hot"),
    )
    demand_hold_s: float = Field(
        5.0,
        ge=0.5,
        le=300,
        description="After a request for a fresh picture, keep decoding every frame this long.",
        json_schema_extra=apply_class("hot"),
    )
    rollback_grace_s: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="After a config change that restarted the camera source, seconds the stream"
        " has to come online; otherwise the edge goes back to the last good config by itself.",
        json_schema_extra=apply_class("hot"),
    )
    max_gop_packets: int = Field(
        750,
        ge=10,
        le=10_000,
        description="Packets kept since the last keyframe (for on-demand decoding); a longer GOP"
        " falls back to decoding every frame.",
        json_schema_extra=apply_class("hot"),
    )

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.lower()
        if scheme not in SOURCE_SCHEMES:
            raise ValueError(
                f"unsupported scheme {scheme or '(none)'!r}; use one of {', '.join(SOURCE_SCHEMES)}"
            )
        return value

    def source_url_with_credentials(self) -> str:
        """The source URL with configured credentials put in (for the reader only)."""
        if self.username is None:
            return self.source
        parts = urlsplit(self.source)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        user = quote(self.username, safe="")
        pwd = quote(self.password.get_secret_value(), safe="") if self.password else ""
        netloc = f"{user}:{pwd}@{host}" if pwd else f"{user}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class SnapshotConfig(Section):
    history: int = Field(
        30,
        ge=1,
        le=1000,
        description="Snapshots kept in memory (newest first).",
        json_schema_extra=apply_class("hot"),
    )
    max_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024 * 1024,
        description="Cap on bytes held by the snapshot cache, JPEGs and scaled variants included"
        " (the oldest pictures go first; the newest always stays). 30 pictures of a 1080p camera"
        " hold ~6 MB (bench/memory).",
        json_schema_extra=apply_class("hot"),
    )
    jpeg_quality: int = Field(
        85,
        ge=30,
        le=100,
        description="JPEG quality of stored snapshots.",
        json_schema_extra=apply_class("hot"),
    )
    max_wait_ms: int = Field(
        3000,
        ge=0,
        le=30_000,
        description="Longest a request with ?max_age_ms= waits for a fresh enough picture.",
        json_schema_extra=apply_class("hot"),
    )
    long_poll_s: float = Field(
        25.0,
        gt=0,
        le=120,
        description="Longest a ?wait_newer_than= long-poll is held open.",
        json_schema_extra=apply_class("hot"),
    )
    min_width: int = Field(
        16,
        ge=8,
        description="Smallest width accepted in ?width=.",
        json_schema_extra=apply_class("hot"),
    )
