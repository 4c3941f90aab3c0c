"""The edge's one configuration model, loaded from TOML once and passed down.

Every field is described (the descriptions are the configuration reference in the README and
the form the console generates) and carries units in its name. Unknown keys are an error, so a
typo never silently falls back to a default.

One module per section: ``camera`` (and the snapshot cache), ``http`` (and discovery, listen
addresses), ``resources`` (guards, store caps), ``locks``, ``plates``; ``base`` holds what they
share (the section base, ``x-apply``, the secret markers, URL redaction) and ``model`` the whole
:class:`EdgeConfig` and :func:`load_config`. Import from ``edge.config``; the modules inside
import each other, never this package.
"""

from edge.config.base import (
    APPLY_KEY,
    SECRET_QUERY_KEYS,
    SECRET_URL_KEY,
    URL_MASK,
    ApplyClass,
    apply_class,
    redact_url,
    unredact_url,
)
from edge.config.camera import SOURCE_SCHEMES, CameraConfig, SnapshotConfig
from edge.config.http import (
    DiscoveryConfig,
    HttpConfig,
    is_every_interface,
    listen_url,
    parse_listen,
)
from edge.config.locks import LockBoardConfig, LockMapConfig, LocksConfig
from edge.config.model import (
    DEFAULT_CONFIG_PATH,
    LIVE_CONFIG_FILENAME,
    EdgeConfig,
    default_data_dir,
    format_validation_error,
    load_config,
)
from edge.config.plates import (
    DEFAULT_PLATE_FORMATS,
    PlateCloudConfig,
    PlateLocalConfig,
    PlateMotionConfig,
    PlatesConfig,
)
from edge.config.resources import GuardsConfig, StoreConfig

__all__ = [
    "APPLY_KEY",
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_PLATE_FORMATS",
    "LIVE_CONFIG_FILENAME",
    "SECRET_QUERY_KEYS",
    "SECRET_URL_KEY",
    "SOURCE_SCHEMES",
    "URL_MASK",
    "ApplyClass",
    "CameraConfig",
    "DiscoveryConfig",
    "EdgeConfig",
    "GuardsConfig",
    "HttpConfig",
    "LockBoardConfig",
    "LockMapConfig",
    "LocksConfig",
    "PlateCloudConfig",
    "PlateLocalConfig",
    "PlateMotionConfig",
    "PlatesConfig",
    "SnapshotConfig",
    "StoreConfig",
    "apply_class",
    "default_data_dir",
    "format_validation_error",
    "is_every_interface",
    "listen_url",
    "load_config",
    "parse_listen",
    "redact_url",
    "unredact_url",
]
