"""The licence plates' section (edge/plates): policy, formats, members, motion, readers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from edge.config.base import SECRET_URL_KEY, Section, apply_class

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


class PlateCloudConfig(Section):
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


class PlateLocalConfig(Section):
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


class PlateMotionConfig(Section):
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


class PlatesConfig(Section):
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
