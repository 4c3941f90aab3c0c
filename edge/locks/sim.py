"""A lock-board simulator: pymodbus's own Modbus RTU server on one end of a ``socat`` pty pair.

It is a real RTU peer (framing, CRC, unit ids and timing by pymodbus), with a model behind it:
each lock's coil moves its bolt after ``actuation_s``, a cart can be taken from and returned
to its bay, a bolt sensor can be stuck, a board can go silent, and the next answers can be
dropped, sent late, sent with a corrupted CRC or after garbage bytes. It lives in the package
(not only in the tests) so a demo can run the whole edge with no hardware::

    python -m edge.locks.sim --dir /tmp/carwash-locks --boards 1:8
    # then: carwash-edge run with [locks] enabled, port = "/tmp/carwash-locks/edge.tty"

and type ``take 3``, ``take 3 force`` (out of a locked bay), ``return 3``, ``offline 1``,
``power 1`` (the board restarts: its coils drop to off), ``fault crc``... on its standard input.

Run it on an asyncio loop (tests: the test's own loop; the driver under test runs in its
thread). The model methods are plain attribute changes, safe to call from that loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from edge.config import LockBoardConfig
from edge.locks.register_map import BoardMap, LockPoints, build_maps

GARBAGE = b"\x00\xfe\x13\x37\xa5"  # bytes that start no valid frame
FaultKind = Literal["drop", "late", "held", "crc", "garbage"]


@dataclass(slots=True)
class SimLock:
    points: LockPoints
    coil: bool = False  # raw coil value
    coil_changed: float = 0.0  # monotonic
    cart_present: bool = True
    stuck_bolt: bool | None = None  # a stuck bolt sensor reads this whatever happens


@dataclass(slots=True)
class SimBoard:
    map: BoardMap
    locks: list[SimLock]
    online: bool = True


@dataclass(slots=True)
class Faults:
    """Faults for the next answers (counts), applied in this order: drop, late, held, crc,
    garbage. ``late`` sends the answer ``late_s`` later; ``held`` keeps it back and sends it
    right before the next answer to another function, so that it lands inside the wait of a
    different request (the master gave up on the first and moved on)."""

    drop: int = 0
    late: int = 0
    late_s: float = 0.3
    held: int = 0
    crc: int = 0
    garbage: int = 0
    injected: dict[str, int] = field(default_factory=dict)  # how many were applied, by kind


class LockBoardSim:
    def __init__(
        self, maps: Sequence[BoardMap], port: str, *, baudrate: int = 19200,
        actuation_s: float = 0.05,
    ) -> None:  # fmt: skip
        self.port, self.baudrate, self.actuation_s = port, baudrate, actuation_s
        self.boards = {bm.unit: SimBoard(bm, [SimLock(p) for p in bm.points]) for bm in maps}
        self._carts = {lk.points.cart: (b, lk) for b in self.boards.values() for lk in b.locks}
        self.faults = Faults()
        self.requests = 0  # requests received (any unit)
        self.coil_writes: list[tuple[int, bool]] = []  # (cart, release) in order
        self._server: ModbusSerialServer | None = None
        self._held = b""

    @classmethod
    def for_boards(
        cls, boards: Sequence[LockBoardConfig], port: str, *, baudrate: int = 19200,
        actuation_s: float = 0.05,
    ) -> LockBoardSim:  # fmt: skip
        return cls(build_maps(boards), port, baudrate=baudrate, actuation_s=actuation_s)

    # ------------------------------------------------------------------ life
    async def start(self) -> None:
        devices = [self._device(b) for b in self.boards.values()]
        self._server = ModbusSerialServer(
            devices, port=self.port, baudrate=self.baudrate, trace_packet=self._trace,
            reconnect_delay=0,
        )  # fmt: skip
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    # ------------------------------------------------------------------ the model
    def lock(self, cart: int) -> SimLock:
        return self._carts[cart][1]

    def released(self, cart: int) -> bool:
        board, lk = self._carts[cart]
        return lk.coil == board.map.unlock_coil_on

    def bolt_closed(self, cart: int) -> bool:
        board, lk = self._carts[cart]
        if lk.stuck_bolt is not None:
            return lk.stuck_bolt
        moved = time.monotonic() - lk.coil_changed >= self.actuation_s
        released = lk.coil == board.map.unlock_coil_on
        return not released if moved else released  # the bolt still where it was

    def take(self, cart: int, *, force: bool = False) -> None:
        """Someone pulls the cart out: only while the bolt is open, unless ``force`` (a broken
        hook, a mechanical key: the cart leaves a bay whose lock holds)."""
        if self.bolt_closed(cart) and not force:
            raise RuntimeError(f"cart {cart} is locked in")
        self.lock(cart).cart_present = False

    def power_cycle(self, unit: int) -> None:
        """The board restarts: every coil drops to its power-on value (off); bolts follow."""
        now = time.monotonic()
        for lk in self.boards[unit].locks:
            if lk.coil:
                lk.coil, lk.coil_changed = False, now

    def give_back(self, cart: int) -> None:
        self.lock(cart).cart_present = True

    def set_online(self, unit: int, online: bool) -> None:
        self.boards[unit].online = online

    def inject(self, kind: FaultKind, count: int = 1) -> None:
        setattr(self.faults, kind, getattr(self.faults, kind) + count)

    def send_raw(self, data: bytes) -> None:
        """Put bytes on the line now (noise between requests)."""
        if self._server is None:
            return
        for conn in list(self._server.active_connections.values()):
            transport = conn.transport
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(data)

    # ------------------------------------------------------------------ pymodbus hooks
    def _device(self, board: SimBoard) -> SimDevice:
        bm = board.map
        top = max(max(p.lock_sensor, p.cart_sensor) for p in bm.points) + 1
        coils = max(p.coil for p in bm.points) + 1
        regs = [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)]

        async def action(
            function: int, start: int, address: int, count: int, registers: list[int],
            values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:  # fmt: skip
            if function == 2:
                bits = self._inputs(board, top)
                registers[: len(bits) // 16] = SimUtils.bitsToRegisters(bits)
            elif function in (1, 5, 15):
                if values is not None:
                    self._write_coils(board, address, [bool(v) for v in values])
                bits = self._coil_bits(board, coils)
                registers[: len(bits) // 16] = SimUtils.bitsToRegisters(bits)
            return None

        return SimDevice(
            bm.unit,
            simdata=(
                [SimData(0, count=_round16(coils), values=False, datatype=DataType.BITS)],
                [SimData(0, count=_round16(top), values=False, datatype=DataType.BITS)],
                regs, list(regs),
            ),
            action=action,
        )  # fmt: skip

    def _coil_bits(self, board: SimBoard, size: int) -> list[bool]:
        bits = [False] * _round16(size)
        for lk in board.locks:
            bits[lk.points.coil] = lk.coil
        return bits

    def _inputs(self, board: SimBoard, size: int) -> list[bool]:
        bits = [False] * _round16(size)
        m = board.map
        for lk in board.locks:
            closed = self.bolt_closed(lk.points.cart)
            bits[lk.points.lock_sensor] = closed == m.bolt_closed_on
            bits[lk.points.cart_sensor] = lk.cart_present == m.cart_present_on
        return bits

    def _write_coils(self, board: SimBoard, address: int, values: list[bool]) -> None:
        now = time.monotonic()
        for lk in board.locks:
            offset = lk.points.coil - address
            if not 0 <= offset < len(values):
                continue
            if lk.coil != values[offset]:
                lk.coil, lk.coil_changed = values[offset], now
            release = values[offset] == board.map.unlock_coil_on
            self.coil_writes.append((lk.points.cart, release))

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self.requests += 1
            return data
        board = self.boards.get(data[0]) if data else None
        if board is not None and not board.online:
            return b""
        f = self.faults
        if f.drop:
            return self._count("drop", b"")
        if f.late:
            loop = asyncio.get_running_loop()
            loop.call_later(f.late_s, self.send_raw, data)
            return self._count("late", b"")
        held = b""
        if self._held and self._held[1] != data[1]:  # released inside another request's wait
            held, self._held = self._held, b""
        if f.held and not self._held:
            self._held = data
            return self._count("held", held)
        if f.crc:
            return self._count("crc", held + data[:-1] + bytes([data[-1] ^ 0xFF]))
        if f.garbage:
            return self._count("garbage", held + GARBAGE + data)
        return held + data

    def _count(self, kind: FaultKind, data: bytes) -> bytes:
        setattr(self.faults, kind, getattr(self.faults, kind) - 1)
        self.faults.injected[kind] = self.faults.injected.get(kind, 0) + 1
        return data


def _round16(n: int) -> int:
    return (n + 15) // 16 * 16


# ---------------------------------------------------------------------- the virtual cable
class PtyPair:
    """``socat`` joining two pseudo-terminals: ``edge_path`` (the driver) ↔ ``board_path``.

    Blocking (waits for the links): call it from synchronous code or a worker thread.
    """

    def __init__(self, folder: Path) -> None:
        self.edge_path = folder / "edge.tty"
        self.board_path = folder / "board.tty"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 5.0) -> None:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is not installed (Debian: apt-get install socat)")
        for link in (self.edge_path, self.board_path):
            link.unlink(missing_ok=True)
        ends = [f"pty,raw,echo=0,link={path}" for path in (self.edge_path, self.board_path)]
        self._proc = subprocess.Popen(  # noqa: S603 - fixed arguments, our own paths
            [socat, *ends], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout_s
        while not (self.edge_path.exists() and self.board_path.exists()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.01)

    def stop(self) -> None:
        """End socat (by its pid): both ends disappear, like an unplugged cable."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------- demo program
async def _demo(args: argparse.Namespace) -> None:
    boards = [
        LockBoardConfig(unit=int(u), locks=int(n))
        for u, n in (item.split(":") for item in args.boards.split(","))
    ]
    folder = Path(args.dir)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    pair = PtyPair(folder)
    await asyncio.to_thread(pair.start)
    sim = LockBoardSim.for_boards(boards, str(pair.board_path))
    await sim.start()
    print(f"lock boards {args.boards} on {pair.edge_path}", flush=True)
    # Commands from stdin until EOF, SIGTERM or Ctrl-C; then socat is ended (no pty left behind).
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)

    def readable() -> None:
        line = sys.stdin.readline()
        if not line:
            loop.remove_reader(sys.stdin.fileno())
            done.set()
        else:
            _command(sim, line.split())

    loop.add_reader(sys.stdin.fileno(), readable)
    try:
        await done.wait()
    finally:
        loop.remove_reader(sys.stdin.fileno())
        await sim.stop()
        await asyncio.to_thread(pair.stop)


def _command(sim: LockBoardSim, words: list[str]) -> None:
    try:
        match words:
            case ["take", cart]:
                sim.take(int(cart))
            case ["take", cart, "force"]:
                sim.take(int(cart), force=True)
            case ["power", unit]:
                sim.power_cycle(int(unit))
            case ["return", cart]:
                sim.give_back(int(cart))
            case ["offline" | "online" as what, unit]:
                sim.set_online(int(unit), what == "online")
            case ["stuck", cart, ("open" | "closed" | "off") as how]:
                sim.lock(int(cart)).stuck_bolt = None if how == "off" else how == "closed"
            case ["fault", ("drop" | "late" | "held" | "crc" | "garbage") as kind, *n]:
                sim.inject(kind, int(n[0]) if n else 1)
            case ["noise"]:
                sim.send_raw(GARBAGE)
            case []:
                return
            case _:
                print("commands: take N [force], return N, offline U, online U, power U,"
                      " stuck N open|closed|off, fault drop|late|held|crc|garbage [count],"
                      " noise")  # fmt: skip
    except (KeyError, ValueError, RuntimeError) as err:
        print(f"error: {err}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edge.locks.sim", description=__doc__)
    default_dir = Path(tempfile.gettempdir()) / "carwash-locks"
    parser.add_argument("--dir", default=str(default_dir), help="folder for the pty links")
    parser.add_argument("--boards", default="1:8", help="UNIT:LOCKS[,UNIT:LOCKS...]")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_demo(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
