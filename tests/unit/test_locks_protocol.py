"""Pure lock-board protocol code: RTU CRC and classification, the register map."""

from __future__ import annotations

import pytest
from pymodbus.framer.rtu import FramerRTU

from edge.config import LockBoardConfig, LocksConfig
from edge.locks.register_map import Span, build_maps, cart_index
from edge.locks.rtu import Classified, classify, crc16, with_crc
from edge.locks.state import Sensors

pytestmark = pytest.mark.unit

READ_REPLY = bytes([1, 2, 1, 0b101])  # unit 1, read discrete inputs, 1 byte


@pytest.mark.parametrize("frame", [READ_REPLY, b"\x11\x05\x00\xac\xff\x00", b"", b"\x00"])
def test_crc_matches_pymodbus(frame: bytes) -> None:
    assert crc16(frame).to_bytes(2, "little") == FramerRTU.compute_CRC(frame).to_bytes(2, "big")


def test_classify_tells_frames_crc_errors_and_garbage_apart() -> None:
    good = with_crc(READ_REPLY)
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])
    assert classify(good, 1) == Classified(1, 0, 0)
    assert classify(bad, 1) == Classified(0, 1, 0)
    assert classify(b"\x00\xfe\x13" + good, 1) == Classified(1, 0, 3)
    assert classify(good + good) == Classified(2, 0, 0)
    assert classify(good, 2) == Classified(0, 0, len(good))  # another unit's answer: not ours
    assert classify(b"") == Classified(0, 0, 0)
    write_echo = with_crc(b"\x01\x05\x00\x03\xff\x00")
    assert classify(write_echo + with_crc(b"\x01\x81\x02"), 1) == Classified(2, 0, 0)


def test_default_map_numbers_carts_across_boards() -> None:
    maps = build_maps([LockBoardConfig(unit=3, locks=4), LockBoardConfig(unit=5, locks=2)])
    first, second = maps
    assert [p.cart for p in first.points] == [1, 2, 3, 4]
    assert [p.cart for p in second.points] == [5, 6]
    assert first.coils == Span(0, 4)
    assert first.inputs == Span(0, 8)  # 4 lock sensors, then 4 cart switches
    assert first.points[1].cart_sensor == 5
    assert cart_index(maps)[6][0].unit == 5
    coils = [False, True, False, False]
    inputs = [True, False, True, True, True, False, True, True]
    decoded = first.decode(coils, inputs)
    assert decoded[2] == Sensors(released=True, bolt_closed=False, cart_present=False)
    assert decoded[1] == Sensors(released=False, bolt_closed=True, cart_present=True)
    with pytest.raises(ValueError, match="expected 4"):
        first.decode(coils[:2], inputs)


def test_a_custom_map_with_inverted_points() -> None:
    board = LockBoardConfig.model_validate({
        "unit": 1, "locks": 2, "first_cart": 10,
        "map": {"coil_base": 16, "lock_sensor_base": 100, "cart_sensor_base": 200,
                "unlock_coil_on": False, "bolt_closed_on": False},
    })  # fmt: skip
    (bm,) = build_maps([board])
    assert [p.cart for p in bm.points] == [10, 11]
    assert bm.coils == Span(16, 2)
    assert bm.inputs == Span(100, 102)
    assert bm.coil_value(unlock=True) is False
    inputs = [False] * 102
    inputs[1] = True  # address 101: the bolt sensor of cart 11 reads ON: open (inverted)
    decoded = bm.decode([True, False], inputs)
    assert decoded[10] == Sensors(released=False, bolt_closed=True, cart_present=False)
    assert decoded[11] == Sensors(released=True, bolt_closed=False, cart_present=False)


def test_locks_config_is_checked() -> None:
    assert LocksConfig().enabled is False
    with pytest.raises(ValueError, match="no board"):
        LocksConfig(enabled=True)
    with pytest.raises(ValueError, match="share a unit id"):
        LocksConfig.model_validate({"boards": [{"unit": 1, "locks": 2}, {"unit": 1, "locks": 2}]})
    with pytest.raises(ValueError, match="overlap"):
        LocksConfig.model_validate(
            {"boards": [{"unit": 1, "locks": 4}, {"unit": 2, "locks": 2, "first_cart": 3}]}
        )
