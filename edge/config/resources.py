"""The guards' section (memory, temperature, disk) and the caps of the local store they prune."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from edge.config.base import Section, apply_class


class GuardsConfig(Section):
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


class StoreConfig(Section):
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
