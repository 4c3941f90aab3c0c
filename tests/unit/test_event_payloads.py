"""The typed event payloads (fleet_common.wire.events): every kind round-trips through JSON,
dumps the shape the edge has always sent, and every kind the edge emits has a model."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from fleet_common.wire.cloud import EventKind
from fleet_common.wire.edge import MemberInfo, PlateBox, PlateCandidate, VehicleInfo
from fleet_common.wire.events import (
    EVENT_PAYLOADS,
    CartPayload,
    ConfigPayload,
    EventPayload,
    MemberRecognizedPayload,
    PlateReadPayload,
    RecoveryPayload,
    RentalInfo,
    StreamPayload,
    alert,
    dump_payload,
    kind_of,
    parse_payload,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
AT = "2025-06-01T10:00:00.000Z"
MEMBER = MemberInfo(
    id="m-42", name="Ada", plan="gold", status="active", match="fuzzy", plate="AB123CD"
)
RENTAL = RentalInfo(unlocked_at=AT, taken_at=AT, returned_at=AT, duration_s=61.25)


def _read(**fields: Any) -> PlateReadPayload:
    base: dict[str, Any] = {
        "id": 7,
        "plate": "AB123CD",
        "text": "AB-123-CD",
        "score": 0.9312,
        "dscore": 0.88,
        "recognizer": "local",
        "trigger": "handshake",
        "snapshot_seq": 41,
        "captured_at": AT,
        "box": None,
        "latency_ms": 84.2,
    }
    return PlateReadPayload(**{**base, **fields})


def _cart(**fields: Any) -> CartPayload:
    base: dict[str, Any] = {
        "cart": "3",
        "change": "state",
        "state": "locked",
        "previous": None,
        "board": 1,
        "lock": 3,
        "at": AT,
        "changed_at": AT,
        "detail": "",
        "cart_present": None,
        "bolt_closed": None,
    }
    return CartPayload(**{**base, **fields})


# Each kind at least twice: every optional field set, and the least the edge sends.
SAMPLES: list[EventPayload] = [
    _read(),
    _read(
        box=PlateBox(xmin=1, ymin=2, xmax=30, ymax=12),
        region="fr",
        vehicle=VehicleInfo(type="Sedan", score=0.7, box=PlateBox(xmin=0, ymin=0, xmax=9, ymax=9)),
        format="^[A-Z]{2}[0-9]{3}[A-Z]{2}$",
        member=MEMBER,
        crop_url="/api/plates/7/crop.jpg",
        candidates=[
            PlateCandidate(plate="AB123CD", score=0.93),
            PlateCandidate(plate="A8123CD", score=0.4),
        ],
    ),
    MemberRecognizedPayload(read_id=7, plate="AB123CD", member=MEMBER, snapshot_seq=41),
    _cart(),
    _cart(state="returned", previous="in_use", cart_present=True, bolt_closed=False, rental=RENTAL),
    _cart(change="sensors", state="a_newer_edges_state", previous="locked", detail="why"),
    RENTAL,
    alert("stream_offline", "critical", True, "camera stream offline: refused"),
    alert("lock_fault", "info", False, "lock board 2 answers again", board=2),
    alert("cart_missing", "warning", True, "cart 4: gone", cart=4),
    StreamPayload(status="online", previous=None, age_ms=None, detail=""),
    StreamPayload(status="degraded", previous="online", age_ms=812.4, detail="late"),
    RecoveryPayload(component="camera", offline_s=12.5, sessions=3),
    ConfigPayload(
        version=4, action="rolled_back", source="api", restarted=["camera"], reason="back to 2"
    ),
]


def test_every_kind_has_samples() -> None:
    assert {kind_of(s) for s in SAMPLES} == set(EVENT_PAYLOADS)


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: f"{kind_of(p)}")
def test_every_kind_round_trips_through_json(payload: EventPayload) -> None:
    kind = kind_of(payload)
    sent = json.loads(json.dumps(dump_payload(payload)))  # as stored, as an SSE's data
    assert parse_payload(kind, sent) == payload
    assert EVENT_PAYLOADS[kind].model_validate_json(payload.model_dump_json()) == payload


def test_the_cloud_takes_exactly_the_kinds_with_a_model() -> None:
    assert set(get_args(EventKind)) == set(EVENT_PAYLOADS)


def test_the_dumps_have_the_shape_the_edge_always_sent() -> None:
    # A plate read: every key always there (null when empty), in the stored order.
    assert list(dump_payload(_read())) == [
        "id",
        "plate",
        "text",
        "score",
        "dscore",
        "recognizer",
        "trigger",
        "snapshot_seq",
        "captured_at",
        "box",
        "region",
        "vehicle",
        "format",
        "candidates",
        "member",
        "latency_ms",
        "crop_url",
    ]
    assert dump_payload(_read())["member"] is None
    # An alert names its board or its cart only when it has one; a cart as a string.
    assert dump_payload(alert("memory", "warning", True, "high")) == {
        "code": "memory",
        "severity": "warning",
        "active": True,
        "message": "high",
    }
    assert dump_payload(alert("cart_missing", "warning", True, "gone", cart=4))["cart"] == "4"
    # A cart event: nulls kept, `rental` only on the return that ends one.
    plain = dump_payload(_cart())
    assert "rental" not in plain
    assert plain["previous"] is None
    assert plain["cart_present"] is None
    assert dump_payload(_cart(rental=RENTAL))["rental"]["duration_s"] == 61.25
    assert dump_payload(StreamPayload(status="online", previous=None, age_ms=None, detail="")) == {
        "status": "online",
        "previous": None,
        "age_ms": None,
        "detail": "",
    }


def test_readers_ignore_new_fields_and_refuse_payloads_that_do_not_fit() -> None:
    newer = {
        **dump_payload(RecoveryPayload(component="camera", offline_s=1.0, sessions=2)),
        "added_later": 1,
    }
    assert parse_payload("recovery", newer) == RecoveryPayload(
        component="camera", offline_s=1.0, sessions=2
    )
    assert parse_payload("a.kind.from.the.future", {"x": 1}) is None
    with pytest.raises(ValidationError):
        parse_payload("plate.read", {"plate": "AB123CD"})
    with pytest.raises(ValidationError):
        parse_payload(
            "alert",
            {**dump_payload(alert("disk", "critical", True, "x")), "severity": "apocalyptic"},
        )
    with pytest.raises(ValidationError):
        RentalInfo(unlocked_at=AT, taken_at=AT, returned_at=AT, duration_s=float("inf"))


# ---------------------------------------------------------------------- the edge's emitters
_EMITS = {"emit", "emit_soon", "emit_written", "add_event", "add_event_in", "add_read"}
# Where a kind arrives as a variable: the log itself and the pass-throughs to it.
_FORWARDERS = {
    "edge/events.py",
    "edge/store/store.py",
    "edge/plates/store.py",
    "edge/live_config.py",
}


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _kind_arg(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "kind":
            return keyword.value
    if _name(call) in {"add_event_in", "add_read"}:  # (store/conn, kind, ...) or kind=
        return call.args[1] if len(call.args) > 1 and _name(call) == "add_event_in" else None
    return call.args[0] if call.args else None


def _scan(rel: str, source: str, kinds: dict[str, str], untyped: list[str]) -> None:
    """Add the kinds ``source`` (the file ``rel``) emits by name, and its untyped emits."""
    module = rel.removesuffix(".py").replace("/", ".")
    for call in _calls(ast.parse(source)):
        name, where = _name(call), f"{rel}:{call.lineno}"
        if name not in _EMITS:  # publish*: the kind comes from the payload's model
            continue
        if any(isinstance(a, ast.Dict) for a in [*call.args, *(k.value for k in call.keywords)]):
            untyped.append(f"{where}: a hand-built payload")
        arg = _kind_arg(call)
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            kinds[arg.value] = where
        elif isinstance(arg, ast.Name) and arg.id.isupper():  # a module constant
            kinds[getattr(importlib.import_module(module), arg.id)] = where
        elif rel not in _FORWARDERS and name != "add_read":
            untyped.append(f"{where}: kind {ast.unparse(arg) if arg else '?'}")


def test_every_kind_the_edge_emits_has_a_model_and_no_payload_is_hand_built() -> None:
    kinds: dict[str, str] = {}
    untyped: list[str] = []
    for path in sorted((ROOT / "edge").rglob("*.py")):
        _scan(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"), kinds, untyped)
    assert untyped == []
    assert "plate.read" in kinds  # the scan finds the emits at all
    missing = {k: where for k, where in kinds.items() if k not in EVENT_PAYLOADS}
    assert missing == {}


def test_the_scan_catches_hand_built_payloads_and_unknown_kinds() -> None:
    kinds: dict[str, str] = {}
    untyped: list[str] = []
    source = (
        "async def f(events, item):\n"
        "    await events.emit('alert', {'code': 'x'})\n"
        "    events.emit_soon(item.kind, item.payload)\n"
    )
    _scan("edge/somewhere.py", source, kinds, untyped)
    assert kinds == {"alert": "edge/somewhere.py:2"}
    assert sorted(untyped) == [
        "edge/somewhere.py:2: a hand-built payload",
        "edge/somewhere.py:3: kind item.kind",
    ]
