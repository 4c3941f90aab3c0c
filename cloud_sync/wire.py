"""The cloud's wire types (what edges and the console send to and get from it).

Light on purpose, like :mod:`fleet_common.wire.edge`: pydantic and the standard library only.
The models live in :mod:`fleet_common.wire.cloud` (the edge's sync client imports them from
there without depending on this package); this module is the cloud's own name for them.
"""

from __future__ import annotations

from fleet_common.wire.cloud import (
    Command,
    CommandInfo,
    CommandKind,
    CommandList,
    CommandRequest,
    CommandResult,
    DeviceInfo,
    DeviceKey,
    DeviceList,
    EnrollRequest,
    EnrollResponse,
    EventKind,
    GroupBy,
    Health,
    HeartbeatRequest,
    HeartbeatResponse,
    IngestBatch,
    IngestEvent,
    IngestResult,
    LoginRequest,
    PlatePage,
    PlateReadInfo,
    RefreshRequest,
    Role,
    RollupList,
    RollupRow,
    ScopeKind,
    SiteInfo,
    SiteList,
    StreamStatus,
    TokenPair,
)
from fleet_common.wire.errors import ErrorBody

__all__ = [
    "Command", "CommandInfo", "CommandKind", "CommandList", "CommandRequest", "CommandResult",
    "DeviceInfo", "DeviceKey", "DeviceList", "EnrollRequest", "EnrollResponse", "ErrorBody",
    "EventKind", "GroupBy", "Health", "HeartbeatRequest", "HeartbeatResponse", "IngestBatch",
    "IngestEvent", "IngestResult", "LoginRequest", "PlatePage", "PlateReadInfo",
    "RefreshRequest", "Role", "RollupList", "RollupRow", "ScopeKind", "SiteInfo", "SiteList",
    "StreamStatus", "TokenPair",
]  # fmt: skip
