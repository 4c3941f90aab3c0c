"""The edge's one configuration model, loaded from TOML once and passed down.

Every field is described (the descriptions are the configuration reference in the README and
the form the console generates) and carries units in its name. Unknown keys are an error, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/carwash/edge.toml")
SOURCE_SCHEMES = ("rtsp", "rtsps", "file", "synthetic", "usb")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CameraConfig(_Section):
    source: str = Field(
        "synthetic://",
        description=(
            "Camera URL: rtsp://[user:pass@]host[:port]/path, rtsps://..., file:///path/video.mp4"
            " (looped in real time), synthetic://?width=1280&height=720&fps=10 (a generated bay"
            " scene), usb:///dev/video0."
        ),
    )
    username: str | None = Field(
        None, description="RTSP user name, if not in the URL. Never logged."
    )
    password: SecretStr | None = Field(
        None, description="RTSP password, if not in the URL. Never logged."
    )
    rtsp_transport: Literal["tcp", "udp"] = Field(
        "tcp", description="RTSP transport; TCP survives lossy Wi-Fi and NAT better."
    )
    connect_timeout_s: float = Field(
        5.0, gt=0, le=60, description="Seconds to wait for the camera to answer when connecting."
    )
    read_timeout_s: float = Field(
        5.0, gt=0, le=60, description="Seconds without data after which the stream is reopened."
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
    )
    offline_after_ms: int = Field(
        10_000,
        ge=500,
        description="Frame age after which the stream is reported offline (between the target"
        " and this it is degraded).",
    )
    reconnect_max_s: float = Field(
        30.0, ge=1, le=600, description="Cap of the exponential reconnect backoff, in seconds."
    )
    demand_hold_s: float = Field(
        5.0,
        ge=0.5,
        le=300,
        description="After a request for a fresh picture, keep decoding every frame this long.",
    )
    max_gop_packets: int = Field(
        750,
        ge=10,
        le=10_000,
        description="Packets kept since the last keyframe (for on-demand decoding); a longer GOP"
        " falls back to decoding every frame.",
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


class SnapshotConfig(_Section):
    history: int = Field(30, ge=1, le=1000, description="Snapshots kept in memory (newest first).")
    max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        description="Cap on bytes held by the snapshot cache, JPEGs and scaled variants included.",
    )
    jpeg_quality: int = Field(85, ge=30, le=100, description="JPEG quality of stored snapshots.")
    max_wait_ms: int = Field(
        3000,
        ge=0,
        le=30_000,
        description="Longest a request with ?max_age_ms= waits for a fresh enough picture.",
    )
    long_poll_s: float = Field(
        25.0, gt=0, le=120, description="Longest a ?wait_newer_than= long-poll is held open."
    )
    min_width: int = Field(16, ge=8, description="Smallest width accepted in ?width=.")


Role = Literal["viewer", "operator", "admin"]


class HttpConfig(_Section):
    listen: str = Field(
        "127.0.0.1:8080",
        description="HOST:PORT the HTTP API listens on. Use 0.0.0.0:8080 to serve the LAN.",
    )
    metrics_requires_key: bool = Field(
        False, description="Require a viewer key for /metrics (open by default for Prometheus)."
    )
    rate_limit_per_s: float = Field(
        100.0, gt=0, description="Requests per second allowed to one client (key or address)."
    )
    rate_limit_burst: int = Field(
        200, ge=1, description="Requests one client may make at once before the rate applies."
    )
    mjpeg_max_fps: float = Field(
        10.0, gt=0, le=60, description="Highest frame rate of /api/stream.mjpeg."
    )

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value


class DiscoveryConfig(_Section):
    enabled: bool = Field(True, description="Advertise this edge on the LAN with zeroconf (mDNS).")
    interfaces: list[str] | None = Field(
        None,
        description="IP addresses to advertise on. Default: where the API listens (only"
        " 127.0.0.1 when it listens there; every interface for 0.0.0.0).",
    )


class GuardsConfig(_Section):
    rss_limit_mb: int = Field(
        250,
        ge=64,
        description="Resident memory (MiB) above which the snapshot cache is trimmed; still above"
        " a few checks later, the edge exits non-zero for systemd to restart it.",
    )
    hot_c: float = Field(
        80.0,
        ge=40,
        le=110,
        description="SoC temperature (°C) above which the edge decodes less: MJPEG viewers no"
        " longer force decoding every frame.",
    )
    cool_c: float = Field(
        70.0, ge=20, le=105, description="Temperature (°C) below which decoding is normal again."
    )
    check_interval_s: float = Field(
        5.0, ge=0.5, le=300, description="How often memory and temperature are checked."
    )
    thermal_path: Path = Field(
        Path("/sys/class/thermal/thermal_zone0/temp"),
        description="Thermal zone file (millidegrees). Where it does not exist the temperature"
        " guard does nothing.",
    )

    @model_validator(mode="after")
    def _check_band(self) -> GuardsConfig:
        if self.cool_c >= self.hot_c:
            raise ValueError(f"cool_c ({self.cool_c}) must be below hot_c ({self.hot_c})")
        return self


class StoreConfig(_Section):
    max_events: int = Field(
        100_000, ge=100, description="Events kept in the local store; oldest pruned first."
    )
    max_outbox: int = Field(
        100_000,
        ge=100,
        description="Rows waiting to be sent to the cloud; beyond this the oldest are dropped"
        " (counted in carwash_edge_store_rows_dropped_total).",
    )
    max_config_versions: int = Field(
        200, ge=2, description="Config versions kept (the newest good one always stays)."
    )
    prune_every: int = Field(
        100, ge=1, le=10_000, description="Check the caps every this many inserts."
    )


class EdgeConfig(_Section):
    """Everything an edge needs to know. Loaded from TOML; flags override."""

    name: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=64,
        description="Bay or device name shown in the console (defaults to the host name).",
    )
    site: str = Field("", max_length=64, description="Site (branch) this device belongs to.")
    data_dir: Path | None = Field(
        None,
        description="Folder for the API keys, store and logs (default: the per-user data folder,"
        " /var/lib/carwash on a Pi).",
    )
    camera: CameraConfig = Field(
        default_factory=CameraConfig, description="The camera and how its stream is decoded."
    )
    snapshots: SnapshotConfig = Field(
        default_factory=SnapshotConfig, description="The in-memory cache of recent pictures."
    )
    http: HttpConfig = Field(
        default_factory=HttpConfig, description="The HTTP API: address, rate limit, metrics."
    )
    discovery: DiscoveryConfig = Field(
        default_factory=DiscoveryConfig, description="How consoles on the LAN find this edge."
    )
    store: StoreConfig = Field(
        default_factory=StoreConfig,
        description="Caps of the local SQLite store (DATA_DIR/edge.db).",
    )
    guards: GuardsConfig = Field(
        default_factory=GuardsConfig, description="Memory and temperature guards (self-healing)."
    )

    def resolved_data_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir
        from platformdirs import user_data_path

        return user_data_path("carwash-edge", appauthor=False)


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:8080`` for IPv6); port 0 picks a free one."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port_text)


def format_validation_error(err: ValidationError) -> str:
    """One line per problem, each naming the field path: ``camera.source: unsupported ...``."""
    lines = []
    for problem in err.errors():
        path = ".".join(str(p) for p in problem["loc"]) or "(root)"
        lines.append(f"{path}: {problem['msg']}")
    return "\n".join(lines)


def load_config(path: Path | None, overrides: dict[str, object] | None = None) -> EdgeConfig:
    """Read the TOML file (if any), apply dotted-key overrides, validate.

    Raises :class:`ConfigError` with every problem listed; nothing is half-applied.
    """
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise ConfigError(f"config file {path} does not exist") from err
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read config file {path}: {err}") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path} is not valid TOML: {err}") from err
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as err:
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid configuration{where}:\n{format_validation_error(err)}") from err


def _set_dotted(data: dict[str, object], dotted: str, value: object) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {key} is not a table in the config file")
        node = child
    node[leaf] = value


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and the API."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if parts.password is not None else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
