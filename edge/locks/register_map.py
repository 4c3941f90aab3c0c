"""Which Modbus points belong to which cart: pure, built from the ``locks.boards`` config.

Default map of a board with N locks (unit id from the config; addresses are 0-based PDU
addresses, what pymodbus and most tools call address 0 is register 00001 in the old notation):

==================  ===============  ==========================================
point               address          meaning
==================  ===============  ==========================================
coil i              ``i``            ON releases (unlocks) lock i
discrete input i    ``i``            ON: lock i's bolt is closed (locked)
discrete input N+i  ``N + i``        ON: a cart stands in bay i (present switch)
==================  ===============  ==========================================

Each base and each polarity can be changed per board (``locks.boards[].map``). A poll reads the
board's coils in one request and its inputs in one request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.config import LockBoardConfig
from edge.locks.state import Sensors


@dataclass(frozen=True, slots=True)
class LockPoints:
    """One cart's lock: its coil and its two inputs on one board."""

    cart: int
    unit: int
    index: int  # 0-based lock number on the board
    coil: int
    lock_sensor: int
    cart_sensor: int


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    count: int


@dataclass(frozen=True, slots=True)
class BoardMap:
    unit: int
    points: tuple[LockPoints, ...]
    unlock_coil_on: bool = True
    bolt_closed_on: bool = True
    cart_present_on: bool = True

    @property
    def coils(self) -> Span:
        """The coils to read in one request."""
        return _span([p.coil for p in self.points])

    @property
    def inputs(self) -> Span:
        """The discrete inputs to read in one request."""
        return _span([a for p in self.points for a in (p.lock_sensor, p.cart_sensor)])

    def coil_value(self, unlock: bool) -> bool:
        """The coil value that releases (``unlock``) or holds the lock."""
        return unlock == self.unlock_coil_on

    def decode(self, coils: Sequence[bool], inputs: Sequence[bool]) -> dict[int, Sensors]:
        """Bits read from the spans → each cart's sensors."""
        cs, ins = self.coils, self.inputs
        if len(coils) < cs.count or len(inputs) < ins.count:
            raise ValueError(
                f"unit {self.unit}: got {len(coils)} coils and {len(inputs)} inputs,"
                f" expected {cs.count} and {ins.count}"
            )
        return {
            p.cart: Sensors(
                released=coils[p.coil - cs.start] == self.unlock_coil_on,
                bolt_closed=inputs[p.lock_sensor - ins.start] == self.bolt_closed_on,
                cart_present=inputs[p.cart_sensor - ins.start] == self.cart_present_on,
            )
            for p in self.points
        }


def _span(addresses: list[int]) -> Span:
    low = min(addresses)
    return Span(low, max(addresses) - low + 1)


def build_maps(boards: Sequence[LockBoardConfig]) -> tuple[BoardMap, ...]:
    """Every board's map; carts are numbered on from the previous board unless told otherwise."""
    maps: list[BoardMap] = []
    next_cart = 1
    for board in boards:
        m = board.map
        first = board.first_cart or next_cart
        cart_base = (
            m.cart_sensor_base if m.cart_sensor_base >= 0 else m.lock_sensor_base + board.locks
        )
        points = tuple(
            LockPoints(
                cart=first + i,
                unit=board.unit,
                index=i,
                coil=m.coil_base + i,
                lock_sensor=m.lock_sensor_base + i,
                cart_sensor=cart_base + i,
            )
            for i in range(board.locks)
        )
        maps.append(
            BoardMap(board.unit, points, m.unlock_coil_on, m.bolt_closed_on, m.cart_present_on)
        )
        next_cart = first + board.locks
    return tuple(maps)


def cart_index(maps: Sequence[BoardMap]) -> dict[int, tuple[BoardMap, LockPoints]]:
    """Cart number → its board and points."""
    return {p.cart: (bm, p) for bm in maps for p in bm.points}
