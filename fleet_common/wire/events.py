"""The payloads of the edge's events, one model per kind, and the outbox topics.

The edge builds every payload from these models (``model_dump(mode="json")`` gives exactly the
dict it has always sent and stored); the console and the cloud parse them with the same classes
(:func:`parse_payload`). They are response models: a field a newer edge adds is ignored by an
older reader. A field that is absent from today's payloads when it has no value (an alert's
``board``/``cart``, a cart event's ``rental``) is left out of the dump when it is None; every
other None is sent as ``null``, as before.

An event reaches the cloud through the edge's outbox, under a topic: ``plates`` (plate reads),
``carts`` (cart state changes, rentals inside the ``returned`` ones) and ``events`` (the rest).
Cart sensor changes stay on the edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import Field

from fleet_common.wire.base import ResponseModel
from fleet_common.wire.edge import MemberInfo, PlateReadInfo, StreamStatus

# ---------------------------------------------------------------------- kinds and topics
PLATE_READ: Final = "plate.read"
MEMBER_RECOGNIZED: Final = "member.recognized"
CART: Final = "cart"
RENTAL: Final = "rental"  # taken by the cloud; the edge sends rentals inside `cart` events
ALERT: Final = "alert"
STREAM: Final = "stream"
RECOVERY: Final = "recovery"
CONFIG: Final = "config"

OutboxTopic = Literal["plates", "carts", "events"]
TOPIC_PLATES: Final = "plates"  # plate.read: the cloud's ingest of reads
TOPIC_CARTS: Final = "carts"  # cart state changes (a return carries its rental)
TOPIC_EVENTS: Final = "events"  # member.recognized, alert, stream, recovery, config

Severity = Literal["info", "warning", "critical"]


def _none(value: object) -> bool:
    return value is None


# ---------------------------------------------------------------------- payloads
PlateReadPayload = PlateReadInfo  # the stored read is the event's payload (`GET /api/plates`)


class MemberRecognizedPayload(ResponseModel):
    """`member.recognized`: a read matched the member list (sent after its `plate.read`)."""

    read_id: int = Field(description="The read (`plate.read` payload `id`).")
    plate: str
    member: MemberInfo
    snapshot_seq: int


class RentalInfo(ResponseModel):
    """A finished rental: inside the `cart` event of the return (and the cloud's `rental`)."""

    unlocked_at: str = Field(description="RFC 3339.")
    taken_at: str = Field(description="RFC 3339.")
    returned_at: str = Field(description="RFC 3339.")
    duration_s: float = Field(allow_inf_nan=False, description="From the unlock to the return.")


class CartPayload(ResponseModel):
    """`cart`: a change of state (`change` = `state`, topic `carts`) or of the sensors only
    (`change` = `sensors`, kept on the edge)."""

    cart: str = Field(description="Cart number, as a string.")
    change: Literal["state", "sensors"]
    # Plain strings, not CartStateName: a state a newer edge adds must not make an older
    # reader drop the event (the console shows such a state as the edge's own string).
    state: str = Field(description="A cart state (see CartInfo.state).")
    previous: str | None
    board: int = Field(description="Modbus unit id of its lock board.")
    lock: int = Field(description="Lock number on that board (1-based).")
    at: str = Field(description="When this happened (RFC 3339).")
    changed_at: str = Field(description="When the state last changed (RFC 3339).")
    detail: str
    cart_present: bool | None
    bolt_closed: bool | None
    rental: RentalInfo | None = Field(
        None, exclude_if=_none, description="On the return that ends a rental, else absent."
    )


class AlertPayload(ResponseModel):
    """`alert`: raised (`active`) or cleared. ``board`` or ``cart`` says which one, for the
    alerts of the cart locks; absent otherwise."""

    code: str = Field(
        description="stream_offline, stream_stale, memory, hot, disk, lock_fault, cart_missing,"
        " config_rollback."
    )
    severity: Severity
    active: bool
    message: str
    board: int | None = Field(None, exclude_if=_none)
    cart: str | None = Field(None, exclude_if=_none)


def alert(
    code: str,
    severity: Severity,
    active: bool,
    message: str,
    *,
    board: int | None = None,
    cart: int | None = None,
) -> AlertPayload:
    """An ``alert`` payload: the one builder of the edge's alerts (the stream watch's, the
    guards', the cart locks', the config's automatic rollback)."""
    return AlertPayload(
        code=code, severity=severity, active=active, message=message, board=board,
        cart=None if cart is None else str(cart),
    )  # fmt: skip


class StreamPayload(ResponseModel):
    """`stream`: the camera stream's status changed."""

    status: StreamStatus
    previous: StreamStatus | None
    age_ms: float | None = Field(description="Age of the newest picture, if any.")
    detail: str


class RecoveryPayload(ResponseModel):
    """`recovery`: a component is back after being offline."""

    component: str
    offline_s: float
    sessions: int


class ConfigPayload(ResponseModel):
    """`config`: a new config version is running."""

    version: int
    action: str = Field(description="applied, rolled_back, auto_rolled_back.")
    source: str
    restarted: list[str]
    reason: str


EventPayload = (
    PlateReadInfo
    | MemberRecognizedPayload
    | CartPayload
    | RentalInfo
    | AlertPayload
    | StreamPayload
    | RecoveryPayload
    | ConfigPayload
)

EVENT_PAYLOADS: Final[Mapping[str, type[EventPayload]]] = {
    PLATE_READ: PlateReadPayload,
    MEMBER_RECOGNIZED: MemberRecognizedPayload,
    CART: CartPayload,
    RENTAL: RentalInfo,
    ALERT: AlertPayload,
    STREAM: StreamPayload,
    RECOVERY: RecoveryPayload,
    CONFIG: ConfigPayload,
}
_KIND_OF: Final[Mapping[type[EventPayload], str]] = {m: k for k, m in EVENT_PAYLOADS.items()}


def kind_of(payload: EventPayload) -> str:
    """The event kind whose payload ``payload`` is."""
    return _KIND_OF[type(payload)]


def dump_payload(payload: EventPayload) -> dict[str, Any]:
    """The payload as the edge sends and stores it (JSON types)."""
    return payload.model_dump(mode="json")


def parse_payload(kind: str, data: Mapping[str, Any]) -> EventPayload | None:
    """The typed payload of an event of ``kind``; None for a kind with no model here (a newer
    edge's). Raises :class:`pydantic.ValidationError` when ``data`` does not fit."""
    model = EVENT_PAYLOADS.get(kind)
    return None if model is None else model.model_validate(data)
