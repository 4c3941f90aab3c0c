"""The edge's one configuration model, loaded from TOML once and passed down.

Every field is described (the descriptions are the configuration reference in the README and
the form the console generates) and carries units in its name. Unknown keys are an error, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import tomllib
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.errors import ConfigError
from fleet_common.problems import problem_lines

DEFAULT_CONFIG_PATH = Path("/etc/carwash/edge.toml")
# Written by the config API when the edge runs without a config file, and read at the next start.
LIVE_CONFIG_FILENAME = "edge.toml"
SOURCE_SCHEMES = ("rtsp", "rtsps", "file", "synthetic", "usb")


# How a changed key takes effect (the ``x-apply`` of its JSON schema; see edge/live_config.py):
# ``hot`` is applied in place; ``restart:<component>`` restarts only that component (the camera
# source, the guards, the zeroconf advertisement) while the HTTP server and the cache keep
# serving; ``restart:process`` keys are read once at start-up and the config API refuses to
# change them (edit the file and restart the service).
ApplyClass = Literal[
    "hot", "restart:camera", "restart:guards", "restart:discovery", "restart:locks",
    "restart:plates", "restart:process",
]  # fmt: skip
APPLY_KEY = "x-apply"
# A string field that may hold a URL with credentials (user info or query parameters): masked in
# the config API and in stored config versions like a SecretStr field (edge/live_config.py).
SECRET_URL_KEY = "x-secret-url"  # noqa: S105 - a schema key, not a secret


def apply_class(kind: ApplyClass) -> dict[str, JsonValue]:
    """``json_schema_extra`` of a field: how a change to it is applied."""
    return {APPLY_KEY: kind}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CameraConfig(_Section):
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


class SnapshotConfig(_Section):
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


Role = Literal["viewer", "operator", "admin"]


class HttpConfig(_Section):
    listen: str = Field(
        "127.0.0.1:8080",
        description="HOST:PORT the HTTP API listens on. Use 0.0.0.0:8080 to serve the LAN. Read"
        " at start-up only: change it in the file and restart (the config API refuses it).",
        json_schema_extra=apply_class("restart:process"),
    )
    metrics_requires_key: bool = Field(
        False,
        description="Require a viewer key for /metrics (open by default for Prometheus).",
        json_schema_extra=apply_class("hot"),
    )
    rate_limit_per_s: float = Field(
        100.0,
        gt=0,
        description="Requests per second allowed to one client (key or address).",
        json_schema_extra=apply_class("hot"),
    )
    rate_limit_burst: int = Field(
        200,
        ge=1,
        description="Requests one client may make at once before the rate applies.",
        json_schema_extra=apply_class("hot"),
    )
    mjpeg_max_fps: float = Field(
        10.0,
        gt=0,
        le=60,
        description="Highest frame rate of /api/stream.mjpeg.",
        json_schema_extra=apply_class("hot"),
    )
    sse_keepalive_s: float = Field(
        15.0,
        gt=0,
        le=300,
        description="Seconds between keepalive comments on an idle /api/events stream (keeps"
        " proxies and NAT from dropping it; a client that hears nothing this long reconnects).",
        json_schema_extra=apply_class("hot"),
    )

    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body accepted (JSON routes); a larger one gets 413.",
        json_schema_extra=apply_class("hot"),
    )
    max_streams_per_client: int = Field(
        8,
        ge=1,
        le=1000,
        description="Event (SSE) and MJPEG streams one client (API key) may hold open at once;"
        " one more gets 429.",
        json_schema_extra=apply_class("hot"),
    )
    max_connections: int = Field(
        256,
        ge=8,
        le=100_000,
        description="Connections and requests served at once (uvicorn's limit_concurrency);"
        " beyond it new requests get 503. Keep it below the process's open-file limit"
        " (LimitNOFILE in the systemd unit). Read at start-up only.",
        json_schema_extra=apply_class("restart:process"),
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a request's headers, from the connection"
        " (or its first byte after a keep-alive pause); a slower one is disconnected. Read at"
        " start-up only.",
        json_schema_extra=apply_class("restart:process"),
    )

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value


class DiscoveryConfig(_Section):
    enabled: bool = Field(
        True,
        description="Advertise this edge on the LAN with zeroconf (mDNS).",
        json_schema_extra=apply_class("restart:discovery"),
    )
    interfaces: list[str] | None = Field(
        None,
        description="IP addresses to advertise on. Default: where the API listens (only"
        " 127.0.0.1 when it listens there; every interface for 0.0.0.0).",
        json_schema_extra=apply_class("restart:discovery"),
    )


class GuardsConfig(_Section):
    rss_limit_mb: int = Field(
        350,
        ge=64,
        description="Resident memory (MiB, VmRSS: shared libraries included) above which the"
        " snapshot cache is trimmed; still above a few checks later, the edge exits non-zero for"
        " systemd to restart it. Keep it well below the unit's MemoryMax= (450M), where the"
        " kernel kills instead. Peaks measured by bench/memory (bench/README.md): a 1080p camera"
        " ~145 MB with plates off, ~290 MB with the offline reader (its models ~105 MB).",
        json_schema_extra=apply_class("restart:guards"),
    )
    hot_c: float = Field(
        80.0,
        ge=40,
        le=110,
        description="SoC temperature (°C) above which the edge decodes less: MJPEG viewers no"
        " longer force decoding every frame.",
        json_schema_extra=apply_class("restart:guards"),
    )
    cool_c: float = Field(
        70.0,
        ge=20,
        le=105,
        description="Temperature (°C) below which decoding is normal again.",
        json_schema_extra=apply_class("restart:guards"),
    )
    check_interval_s: float = Field(
        5.0,
        ge=0.5,
        le=300,
        description="How often memory and temperature are checked.",
        json_schema_extra=apply_class("restart:guards"),
    )
    thermal_path: Path = Field(
        Path("/sys/class/thermal/thermal_zone0/temp"),
        description="Thermal zone file (millidegrees). Where it does not exist the temperature"
        " guard does nothing.",
        json_schema_extra=apply_class("restart:guards"),
    )
    disk_min_free_mb: int = Field(
        200,
        ge=1,
        description="Free space (MiB) on the data folder's file system below which the store is"
        " pruned hard (its event and outbox caps cut to disk_low_keep_fraction) and a disk alert"
        " is raised, until twice this is free again. Logs go to stderr (journald caps them), so"
        " the store is the only thing the edge writes there.",
        json_schema_extra=apply_class("restart:guards"),
    )
    disk_low_keep_fraction: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Share of the store's event and outbox caps kept while the disk is low.",
        json_schema_extra=apply_class("restart:guards"),
    )

    @model_validator(mode="after")
    def _check_band(self) -> GuardsConfig:
        if self.cool_c >= self.hot_c:
            raise ValueError(f"cool_c ({self.cool_c}) must be below hot_c ({self.hot_c})")
        return self


class StoreConfig(_Section):
    max_events: int = Field(
        100_000,
        ge=100,
        description="Events kept in the local store; oldest pruned first.",
        json_schema_extra=apply_class("hot"),
    )
    max_outbox: int = Field(
        100_000,
        ge=100,
        description="Rows waiting to be sent to the cloud; beyond this the oldest are dropped"
        " (counted in carwash_edge_store_rows_dropped_total).",
        json_schema_extra=apply_class("hot"),
    )
    max_config_versions: int = Field(
        200,
        ge=2,
        description="Config versions kept (the newest good one always stays).",
        json_schema_extra=apply_class("hot"),
    )
    prune_every: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Check the caps every this many inserts.",
        json_schema_extra=apply_class("hot"),
    )
    max_plate_reads: int = Field(
        100_000,
        ge=100,
        description="Plate reads kept in the local store; oldest pruned first.",
        json_schema_extra=apply_class("hot"),
    )
    max_plate_crops: int = Field(
        20_000,
        ge=0,
        description="Newest plate reads that keep their plate crop (a JPEG of a few kB); older"
        " reads keep their text and lose the picture.",
        json_schema_extra=apply_class("hot"),
    )


# ---------------------------------------------------------------- cart locks (edge/locks)
# Every key restarts only the lock driver (it owns the serial port): the camera and the HTTP
# server keep running.
_LOCKS_APPLY: dict[str, JsonValue] = {APPLY_KEY: "restart:locks"}


class LockMapConfig(_Section):
    coil_base: int = Field(
        0, ge=0, le=65535, description="Coil address of the board's first lock (0-based).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    lock_sensor_base: int = Field(
        0, ge=0, le=65535,
        description="Discrete-input address of the first lock's bolt sensor (0-based).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    # Sentinels rather than None: TOML has no null, and the config is written back as TOML.
    cart_sensor_base: int = Field(
        -1, ge=-1, le=65535,
        description="Discrete-input address of the first cart-present switch (-1: right after"
        " the lock sensors).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    unlock_coil_on: bool = Field(
        True, description="A coil ON releases its lock (false: ON holds it).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    bolt_closed_on: bool = Field(
        True, description="A lock sensor reads ON while its bolt is closed.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    cart_present_on: bool = Field(
        True, description="A cart-present switch reads ON while a cart stands in its bay.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip


class LockBoardConfig(_Section):
    unit: int = Field(
        ..., ge=1, le=247, description="Modbus unit id (slave address) of the board.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    locks: int = Field(
        ..., ge=1, le=64, description="Locks (carts) on the board.", json_schema_extra=_LOCKS_APPLY
    )
    first_cart: int = Field(
        0, ge=0,
        description="Cart number of the board's first lock (0: right after the previous board's).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    map: LockMapConfig = Field(
        default_factory=LockMapConfig, description="Register map (default: see the README)."
    )


class LocksConfig(_Section):
    enabled: bool = Field(
        False,
        description="Drive cart lock boards over RS485 (Modbus RTU). Off: no serial port is"
        " opened and nothing of pyserial or pymodbus is loaded.",
        json_schema_extra=_LOCKS_APPLY,
    )
    port: str = Field(
        "/dev/ttyUSB0",
        description="Serial device of the RS485 adapter, or a pyserial URL (socket://, rfc2217://).",
        json_schema_extra=_LOCKS_APPLY,
    )
    baudrate: int = Field(
        19200, ge=1200, le=921_600, description="Bits per second.", json_schema_extra=_LOCKS_APPLY
    )
    parity: Literal["N", "E", "O"] = Field(
        "N", description="Parity: N(one), E(ven), O(dd).", json_schema_extra=_LOCKS_APPLY
    )
    stopbits: Literal[1, 2] = Field(1, description="Stop bits.", json_schema_extra=_LOCKS_APPLY)
    timeout_s: float = Field(
        0.1, ge=0.01, le=5,
        description="Seconds to wait for a board's answer before the request counts as lost.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    retries: int = Field(
        1, ge=0, le=5, description="Times a lost or corrupted request is sent again.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    poll_hz: float = Field(
        4.0, ge=0.2, le=20,
        description="Polls of every board per second. A board that stops answering shows its"
        " carts as unknown within two poll periods (keep (retries + 1) x timeout_s below one"
        " period).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    confirm_timeout_s: float = Field(
        2.0, gt=0, le=30,
        description="Seconds a lock/unlock command waits for the sensors to confirm it; an unlock"
        " not confirmed in time is taken back (the coil is set to hold again).",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    fault_after_s: float = Field(
        3.0, gt=0, le=300,
        description="Seconds a bolt sensor may disagree with the commanded state before the cart"
        " is reported as fault.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    unlock_hold_s: float = Field(
        30.0, gt=0, le=3600,
        description="An unlocked cart that nobody takes is locked again after this many seconds.",
        json_schema_extra=_LOCKS_APPLY,
    )  # fmt: skip
    boards: list[LockBoardConfig] = Field(
        default_factory=list, description="Lock boards on the bus.", json_schema_extra=_LOCKS_APPLY
    )

    @model_validator(mode="after")
    def _check_boards(self) -> LocksConfig:
        units = [b.unit for b in self.boards]
        if len(set(units)) != len(units):
            raise ValueError(f"two boards share a unit id: {sorted(units)}")
        carts: set[int] = set()
        next_cart = 1
        for board in self.boards:
            first = board.first_cart or next_cart
            numbers = set(range(first, first + board.locks))
            if numbers & carts:
                raise ValueError(f"board {board.unit}: cart numbers overlap another board's")
            carts |= numbers
            next_cart = first + board.locks
        if self.enabled and not self.boards:
            raise ValueError("locks are enabled but no board is configured")
        return self


_HOT = apply_class("hot")
_PLATES_APPLY = apply_class("restart:plates")

# The plate formats of the countries the chain runs in, as regexes over the normalised text
# (upper case, letters and digits only). The defaults cover France/Italy, the UK, the Netherlands,
# Spain and common US layouts (the synthetic camera draws these).
DEFAULT_PLATE_FORMATS = (
    r"[A-Z]{2}[0-9]{3}[A-Z]{2}",  # FR, IT: AB-123-CD
    r"[A-Z]{2}[0-9]{2}[A-Z]{3}",  # GB: AB12 CDE
    r"[0-9]{2}[A-Z]{3}[0-9]",  # NL: 12-ABC-3
    r"[0-9]{4}[A-Z]{3}",  # ES: 1234 ABC
    r"[0-9][A-Z]{3}[0-9]{3}",  # US-CA: 1ABC234
    r"[A-Z]{3}[0-9]{4}",  # US-NY, US-TX: ABC-1234
)


class PlateCloudConfig(_Section):
    token: SecretStr | None = Field(
        None,
        description="Plate Recognizer API token (Authorization: Token ...). Without one the cloud"
        " is never called. Never logged; masked in the config API.",
        json_schema_extra=_PLATES_APPLY,
    )
    url: str = Field(
        "https://api.platerecognizer.com/v1/plate-reader/",
        description="Snapshot API endpoint: the cloud, or an on-prem SDK such as"
        " http://127.0.0.1:8080/v1/plate-reader/.",
        json_schema_extra={**_PLATES_APPLY, SECRET_URL_KEY: True},
    )
    statistics_url: str | None = Field(
        "https://api.platerecognizer.com/v1/statistics/",
        description="Where the month's usage is read (GET, same token); none for an on-prem SDK.",
        json_schema_extra={**_PLATES_APPLY, SECRET_URL_KEY: True},
    )
    regions: list[str] = Field(
        default_factory=list,
        description="Region codes sent as `regions` to help the reader (e.g. fr, gb, us-ca).",
        json_schema_extra=_PLATES_APPLY,
    )
    mmc: bool = Field(
        False, description="Ask for make, model and colour (`mmc`; a paid feature).",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip
    engine_config: str | None = Field(
        None,
        description='JSON sent as the `config` field, e.g. {"mode": "fast"}.',
        json_schema_extra=_PLATES_APPLY,
    )
    rate_per_s: float = Field(
        1.0, gt=0, le=100,
        description="Calls per second the account allows (1 on a trial, 8 on a paid plan).",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip
    burst: int = Field(
        1, ge=1, le=100, description="Calls that may go at once after a quiet spell.",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip
    timeout_s: float = Field(
        5.0, gt=0, le=60, description="Seconds one call may take before it counts as failed.",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip
    retries: int = Field(
        2, ge=0, le=10,
        description="Times a call is tried again after a timeout or a 5xx (with back-off).",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip
    breaker_failures: int = Field(
        5, ge=1, le=100,
        description="Failed calls in a row that open the circuit breaker (calls stop).",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip
    breaker_reset_s: float = Field(
        30.0, gt=0, le=3600,
        description="Seconds the breaker stays open before one trial call is let through.",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip
    monthly_quota: int | None = Field(
        None, ge=0,
        description="Lookups per month; none: read it from statistics_url.",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip
    quota_reserve: int = Field(
        50, ge=0,
        description="Lookups kept in hand: calls stop when fewer than this remain this month.",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip
    max_upload_bytes: int = Field(
        3_000_000, ge=100_000, le=3_000_000,
        description="Pictures larger than this are scaled down before upload (the API takes 3 MB).",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip


class PlateLocalConfig(_Section):
    threads: int = Field(
        1, ge=1, le=8,
        description="CPU threads of the offline reader (ONNX Runtime); 1 leaves the rest to video.",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip
    search_max_side: int = Field(
        480, ge=160, le=1920,
        description="The region of interest is searched for plates at this size (pixels, longer"
        " side); the plates found are then read at full resolution.",
        json_schema_extra=_PLATES_APPLY,
    )  # fmt: skip


class PlateMotionConfig(_Section):
    enabled: bool = Field(
        True, description="Read a plate when a vehicle arrives in the region of interest.",
        json_schema_extra=_HOT,
    )  # fmt: skip
    fps: float = Field(
        4.0, gt=0, le=25, description="Pictures per second checked for a vehicle.",
        json_schema_extra=_HOT,
    )  # fmt: skip
    enter_fraction: float = Field(
        0.12, gt=0, lt=1,
        description="Share of the region that must differ from the empty bay for a vehicle to"
        " count as arrived.",
        json_schema_extra=_HOT,
    )  # fmt: skip
    exit_fraction: float = Field(
        0.04, gt=0, lt=1,
        description="Share below which the vehicle counts as gone (hysteresis: below"
        " enter_fraction).",
        json_schema_extra=_HOT,
    )  # fmt: skip
    enter_frames: int = Field(
        2, ge=1, le=50, description="Checks in a row above enter_fraction to start an episode.",
        json_schema_extra=_HOT,
    )  # fmt: skip
    exit_frames: int = Field(
        4, ge=1, le=100, description="Checks in a row below exit_fraction to end it.",
        json_schema_extra=_HOT,
    )  # fmt: skip
    burst_s: float = Field(
        15.0, gt=0, le=300,
        description="Seconds after arrival during which pictures are read until a plate is read"
        " with confidence.",
        json_schema_extra=_HOT,
    )  # fmt: skip

    @model_validator(mode="after")
    def _check_hysteresis(self) -> PlateMotionConfig:
        if self.exit_fraction >= self.enter_fraction:
            raise ValueError("exit_fraction must be below enter_fraction (hysteresis)")
        return self


class PlatesConfig(_Section):
    policy: Literal["auto", "local", "cloud", "local_then_cloud", "none"] = Field(
        "auto",
        description="Which reader reads: local (offline), cloud (Plate Recognizer),"
        " local_then_cloud (the cloud only when the local read is below cloud_below_score),"
        " none. auto: local without a cloud token, local_then_cloud with one.",
        json_schema_extra=_HOT,
    )
    roi: tuple[float, float, float, float] = Field(
        (0.0, 0.0, 1.0, 1.0),
        description="Region of interest as fractions of the picture: x0, y0, x1, y1. Plates and"
        " vehicles are looked for only there.",
        json_schema_extra=_HOT,
    )
    formats: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PLATE_FORMATS),
        description="Plate formats as regexes over the normalised text (A-Z, 0-9). Reads are"
        " fitted to them (O/0, I/1... confusions fixed); empty: any 4 to 10 letters and digits.",
        json_schema_extra=_HOT,
    )
    min_score: float = Field(
        0.5, ge=0, le=1, description="Reads below this confidence are dropped.",
        json_schema_extra=_HOT,
    )  # fmt: skip
    cloud_below_score: float = Field(
        0.9, ge=0, le=1,
        description="local_then_cloud: the cloud is asked when the local read scores below this.",
        json_schema_extra=_HOT,
    )  # fmt: skip
    dedup_window_s: float = Field(
        120.0, ge=0, le=86_400,
        description="The same plate at this bay within this many seconds is one read.",
        json_schema_extra=_HOT,
    )  # fmt: skip
    handshake_max_age_ms: int = Field(
        500, ge=0, le=10_000,
        description="The handshake reads a picture at most this old (it waits for one).",
        json_schema_extra=_HOT,
    )  # fmt: skip
    handshake_timeout_s: float = Field(
        3.0, gt=0, le=60,
        description="Seconds a handshake may take in all before it answers with an error.",
        json_schema_extra=_HOT,
    )  # fmt: skip
    interval_s: float = Field(
        0.0, ge=0, le=86_400,
        description="Also read every this many seconds (0: off), deduplicated like the rest.",
        json_schema_extra=_HOT,
    )  # fmt: skip
    members_file: Path | None = Field(
        None,
        description="Club members (JSON or CSV: plate, id, name, plan, status); re-read when the"
        " file changes.",
        json_schema_extra=_HOT,
    )
    member_max_distance: int = Field(
        1, ge=0, le=2,
        description="Characters a read may differ from a member's plate and still match.",
        json_schema_extra=_HOT,
    )  # fmt: skip
    motion: PlateMotionConfig = Field(
        default_factory=PlateMotionConfig, description="Vehicle presence trigger."
    )
    local: PlateLocalConfig = Field(
        default_factory=PlateLocalConfig, description="The offline reader."
    )
    cloud: PlateCloudConfig = Field(
        default_factory=PlateCloudConfig, description="Plate Recognizer's Snapshot API."
    )

    @field_validator("roi")
    @classmethod
    def _check_roi(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = v
        if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
            raise ValueError("expected 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
        return v

    @field_validator("formats")
    @classmethod
    def _check_formats(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"format {pattern!r} is not a regular expression: {err}") from None
        return v

    def effective_policy(self) -> Literal["local", "cloud", "local_then_cloud", "none"]:
        """``policy`` with ``auto`` resolved by whether a cloud token is configured."""
        if self.policy != "auto":
            return self.policy
        return "local_then_cloud" if self.cloud.token is not None else "local"


class EdgeConfig(_Section):
    """Everything an edge needs to know. Loaded from TOML; flags override."""

    name: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=64,
        description="Bay or device name shown in the console (defaults to the host name).",
        json_schema_extra=apply_class("hot"),
    )
    site: str = Field(
        "",
        max_length=64,
        description="Site (branch) this device belongs to.",
        json_schema_extra=apply_class("hot"),
    )
    data_dir: Path | None = Field(
        None,
        description="Folder for the API keys, store and logs (default: the per-user data folder,"
        " /var/lib/carwash on a Pi). Read at start-up only: change it in the file and restart"
        " (the config API refuses it).",
        json_schema_extra=apply_class("restart:process"),
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
        default_factory=GuardsConfig,
        description="Memory, temperature and disk guards (self-healing).",
    )
    locks: LocksConfig = Field(
        default_factory=LocksConfig,
        description="Cart lock boards on RS485 (Modbus RTU); off by default.",
    )
    plates: PlatesConfig = Field(
        default_factory=PlatesConfig,
        description="Licence plate reading: readers, triggers, members.",
    )

    def resolved_data_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else default_data_dir()


def default_data_dir() -> Path:
    """The per-user data folder (``/var/lib/carwash`` on a Pi comes from the config)."""
    from platformdirs import user_data_path

    return user_data_path("carwash-edge", appauthor=False)


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:8080`` for IPv6); port 0 picks a free one.

    Every interface is spelled out (``0.0.0.0`` or ``[::]``): a shorthand such as ``0:8080``
    or ``0.0:8080``, which the socket library would quietly take for ``0.0.0.0``, is refused,
    as is any IPv4 address not written as four decimal numbers (``127.1``, ``010.0.0.1``).
    """
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    if host.startswith("[") or host.endswith("]"):
        inner = host[1:-1] if host.startswith("[") and host.endswith("]") else ""
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address in brackets ([::1])") from None
        return inner, int(port_text)
    if ":" in host:
        raise ValueError(f"write an IPv6 address in brackets: [{host}]:{port_text}")
    _check_ipv4_spelling(host)
    return host, int(port_text)


def _check_ipv4_spelling(host: str) -> None:
    """Refuse what inet_aton takes for an IPv4 address but is not one written in full."""
    try:
        socket.inet_aton(host)
    except OSError:
        return  # a host name (``localhost``): bind resolves it
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        packed = ".".join(str(b) for b in socket.inet_aton(host))
        hint = " (every interface: write 0.0.0.0)" if packed == "0.0.0.0" else ""  # noqa: S104
        raise ValueError(
            f"write the IPv4 address in full: {host!r} would mean {packed}{hint}"
        ) from None


def is_every_interface(host: str) -> bool:
    """``0.0.0.0`` or ``::``: the API is reachable from every network the machine is on."""
    return host in ("0.0.0.0", "::")  # noqa: S104 - compared with, never bound here


def listen_url(host: str, port: int) -> str:
    """``http://HOST:PORT``, an IPv6 host in brackets (``http://[::1]:8080``)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def format_validation_error(err: ValidationError) -> str:
    """One line per problem, each naming the field path: ``camera.source: unsupported ...``."""
    return problem_lines(err.errors(include_input=False, include_url=False))


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


# Query parameters that carry credentials in camera URLs (Dahua/Hikvision:
# ``/cam/realmonitor?channel=1&user=admin&password=...``), matched case-insensitively.
SECRET_QUERY_KEYS: frozenset[str] = frozenset({
    "password", "passwd", "pass", "pwd", "token", "auth", "secret", "key", "apikey", "api_key",
    "access_token", "signature", "sig",
})  # fmt: skip
URL_MASK = "***"


def _split_netloc(netloc: str) -> tuple[str, str | None, str] | None:
    """``(user, password or None, host)`` of a netloc with user info, else None."""
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        return None
    user, colon, password = userinfo.partition(":")
    return user, (password if colon else None), host


def _query_pairs(query: str) -> list[tuple[str, str, str]]:
    """``(raw pair, name, raw value)`` of each ``&``-separated pair, as written (no decoding)."""
    pairs = []
    for raw in query.split("&"):
        name, _, value = raw.partition("=")
        pairs.append((raw, name, value))
    return pairs


def _is_secret_key(name: str) -> bool:
    return unquote(name).lower() in SECRET_QUERY_KEYS


def redact_url(url: str, mask: str = URL_MASK) -> str:
    """The URL with every credential replaced by ``mask``, for logs and the API.

    Credentials are the password of the user info (``rtsp://user:pass@host``) and the values of
    credential query parameters (``?user=admin&password=...``, see :data:`SECRET_QUERY_KEYS`).
    User names stay readable. :func:`unredact_url` reverses it against the original URL.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    creds = _split_netloc(netloc)
    if creds is not None and creds[1] is not None:
        netloc = f"{creds[0]}:{mask}@{creds[2]}"
    query = parts.query
    if query:
        query = "&".join(
            f"{name}={mask}" if _is_secret_key(name) and value else raw
            for raw, name, value in _query_pairs(query)
        )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def unredact_url(url: str, original: str, mask: str = URL_MASK) -> str:
    """``url`` with each credential shown as ``mask`` put back from ``original`` (same place:
    the user info's password, or the query parameter of the same name)."""
    parts, old = urlsplit(url), urlsplit(original)
    netloc = parts.netloc
    creds, old_creds = _split_netloc(netloc), _split_netloc(old.netloc)
    if creds is not None and creds[1] == mask and old_creds is not None and old_creds[1]:
        netloc = f"{creds[0]}:{old_creds[1]}@{creds[2]}"
    query = parts.query
    if query and mask in query:
        old_values = {name: value for _, name, value in _query_pairs(old.query)}
        query = "&".join(
            f"{name}={old_values[name]}"
            if value == mask and _is_secret_key(name) and old_values.get(name) else raw
            for raw, name, value in _query_pairs(query)
        )  # fmt: skip
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
