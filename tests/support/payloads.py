"""Event payloads as a real edge sends them, built from the typed models (for cloud tests)."""

from __future__ import annotations

from typing import Any

from fleet_common.wire.edge import MemberInfo, PlateTrigger
from fleet_common.wire.events import (
    CartPayload,
    MemberRecognizedPayload,
    PlateReadPayload,
    RentalInfo,
    dump_payload,
)

AT = "2026-05-28T20:26:40.500Z"


def member(member_id: str, plate: str = "AB123CD") -> MemberInfo:
    return MemberInfo(id=member_id, name="Ada", plan="gold", status="active", match="exact",
                      plate=plate)  # fmt: skip


def plate_read(
    plate: str,
    *,
    read_id: int = 1,
    score: float = 0.9,
    trigger: PlateTrigger = "motion",
    member_id: str | None = None,
) -> dict[str, Any]:
    return dump_payload(PlateReadPayload(
        id=read_id, plate=plate, text=plate, score=score, dscore=0.9, recognizer="local",
        trigger=trigger, snapshot_seq=read_id, captured_at=AT, box=None, latency_ms=10.0,
        member=None if member_id is None else member(member_id, plate),
    ))  # fmt: skip


def member_recognized(member_id: str, plate: str = "X", read_id: int = 1) -> dict[str, Any]:
    return dump_payload(MemberRecognizedPayload(
        read_id=read_id, plate=plate, member=member(member_id, plate), snapshot_seq=read_id
    ))  # fmt: skip


def cart(cart_id: int, state: str, *, duration_s: float | None = None) -> dict[str, Any]:
    rental = None
    if duration_s is not None:
        rental = RentalInfo(unlocked_at=AT, taken_at=AT, returned_at=AT, duration_s=duration_s)
    return dump_payload(CartPayload(
        cart=str(cart_id), change="state", state=state, previous=None, board=1, lock=cart_id,
        at=AT, changed_at=AT, detail="", cart_present=True, bolt_closed=True, rental=rental,
    ))  # fmt: skip
