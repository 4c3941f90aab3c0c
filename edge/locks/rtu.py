"""Modbus RTU bytes as they come back on the line: CRC and a classifier. Pure.

pymodbus does the framing of good answers; it quietly drops a frame with a bad CRC and bytes it
cannot parse. To count those (and to tell a CRC error from a silent board) the bus hands every
chunk it receives to :func:`classify`.
"""

from __future__ import annotations

from dataclasses import dataclass


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (poly 0xA001, init 0xFFFF) as sent on the wire: low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    """``frame`` followed by its CRC (low byte first)."""
    return frame + crc16(frame).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


KNOWN_FUNCTIONS = frozenset({1, 2, 3, 4, 5, 6, 15, 16})


def response_length(data: bytes) -> int | None:
    """Length of the response frame that starts ``data`` (unit, function, ...), if known."""
    if len(data) < 2:
        return None
    function = data[1]
    if function & 0x80:  # exception response: unit, function, code, crc
        return 5 if function & 0x7F in KNOWN_FUNCTIONS else None
    if function in (1, 2, 3, 4):  # reads: unit, function, byte count, data, crc
        return 5 + data[2] if len(data) >= 3 else None
    if function in (5, 6, 15, 16):  # writes echo address and value/count
        return 8
    return None


@dataclass(frozen=True, slots=True)
class Classified:
    """What a chunk of received bytes held."""

    frames: int  # well-formed frames (good CRC)
    crc_errors: int  # frames of the expected shape whose CRC is wrong
    garbage: int  # bytes that belong to no frame


def classify(data: bytes, unit: int | None = None) -> Classified:
    """Walk ``data``: good frames, frames with a bad CRC, and garbage bytes.

    A frame candidate starts with ``unit`` (any unit when None) and a known function code; a
    candidate whose CRC fails counts as a CRC error only where the bytes start at a frame
    boundary (the start of the chunk or right after a good frame), otherwise one garbage byte
    is skipped and the walk goes on.
    """
    frames = crc_errors = garbage = 0
    i, boundary = 0, True
    while i < len(data):
        rest = data[i:]
        size = response_length(rest) if unit is None or rest[0] == unit else None
        if size is not None and size <= len(rest):
            if crc_ok(rest[:size]):
                frames, i, boundary = frames + 1, i + size, True
                continue
            if boundary:
                crc_errors, i = crc_errors + 1, i + size
                continue
        garbage, i, boundary = garbage + 1, i + 1, False
    return Classified(frames, crc_errors, garbage)
