"""The whole config, :class:`EdgeConfig`, and how it is loaded from TOML."""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

from pydantic import Field, ValidationError

from edge.config.base import Section, apply_class
from edge.config.camera import CameraConfig, SnapshotConfig
from edge.config.http import DiscoveryConfig, HttpConfig
from edge.config.locks import LocksConfig
from edge.config.plates import PlatesConfig
from edge.config.resources import GuardsConfig, StoreConfig
from edge.errors import ConfigError
from fleet_common.problems import problem_lines

DEFAULT_CONFIG_PATH = Path("/etc/carwash/edge.toml")
# Written by the config API when the edge runs without a config file, and read at the next start.
LIVE_CONFIG_FILENAME = "edge.toml"


class EdgeConfig(Section):
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
