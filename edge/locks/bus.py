"""The RS485 bus: pymodbus's sync serial client, one request at a time. **Blocking.**

Only the driver's thread calls a :class:`Bus` (it is the one owner of the port). Each request:

1. bytes already waiting on the line (a late answer to an earlier request, noise) are read and
   classified first, so they cannot be taken for this request's answer;
2. the request is sent by pymodbus (``retries=0``: we retry here, so that every attempt is
   classified and counted);
3. the answer must match the request (function code, and the echoed address for a write);
   one that does not (a late answer) is discarded and the request is tried again;
4. a lost answer is classified from the bytes that did arrive: nothing (``timeout``), a frame
   with a bad CRC (``crc_error``) or bytes that are no frame (``garbage``).

A late answer of the *same* request (same unit, function and length) cannot be told apart in
RTU (there is no transaction id); it holds the same points read a moment earlier, which the
state machine tolerates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from edge.config import LocksConfig
from edge.locks import rtu
from edge.locks.errors import BusError, BusErrorKind
from edge.locks.register_map import Span
from fleet_common.logs import QuietLogger

log = logging.getLogger("edge.locks")
# pymodbus logs every lost answer at ERROR; a board that is down would flood the journal at the
# poll rate. The driver counts and reports bus errors itself (edge.locks, warn once).
logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)


class BusObserver(Protocol):
    """Where the bus reports what it did (metrics)."""

    def request(self, function: str, outcome: str, seconds: float) -> None: ...

    def line_error(self, kind: str, count: int) -> None: ...


class NullObserver:
    def request(self, function: str, outcome: str, seconds: float) -> None:
        pass

    def line_error(self, kind: str, count: int) -> None:
        pass


class Bus:
    def __init__(self, config: LocksConfig, observer: BusObserver | None = None) -> None:
        self.port = config.port
        self.retries = config.retries
        self.timeout_s = config.timeout_s
        self._observer = observer or NullObserver()
        self._quiet: dict[int, QuietLogger] = {}  # per unit: warn once, then debug
        self._rx: list[bytes] = []
        self._client = ModbusSerialClient(
            config.port,
            baudrate=config.baudrate,
            parity=config.parity,
            stopbits=config.stopbits,
            timeout=config.timeout_s,
            retries=0,
            trace_packet=self._trace,
        )

    def close(self) -> None:
        self._close_port()

    def _close_port(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated

    # ------------------------------------------------------------------ requests
    def read_coils(self, unit: int, span: Span, *, retries: int | None = None) -> list[bool]:
        pdu = self._transact(
            unit, "read_coils", retries,
            lambda: self._client.read_coils(span.start, count=span.count, device_id=unit),
            lambda r: r.function_code == 1 and len(r.bits) >= span.count,
        )  # fmt: skip
        return list(pdu.bits[: span.count])

    def read_inputs(self, unit: int, span: Span, *, retries: int | None = None) -> list[bool]:
        pdu = self._transact(
            unit, "read_inputs", retries,
            lambda: self._client.read_discrete_inputs(
                span.start, count=span.count, device_id=unit
            ),
            lambda r: r.function_code == 2 and len(r.bits) >= span.count,
        )  # fmt: skip
        return list(pdu.bits[: span.count])

    def write_coil(self, unit: int, address: int, value: bool) -> None:
        self._transact(
            unit, "write_coil", None,
            lambda: self._client.write_coil(address, value, device_id=unit),
            lambda r: r.function_code == 5 and r.address == address and bool(r.bits[0]) == value,
        )  # fmt: skip

    # ------------------------------------------------------------------ one transaction
    def _transact(
        self,
        unit: int,
        function: str,
        retries: int | None,
        call: Callable[[], ModbusPDU],
        matches: Callable[[ModbusPDU], bool],
    ) -> ModbusPDU:
        attempts = 1 + (self.retries if retries is None else retries)
        kind: BusErrorKind = "timeout"
        detail = ""
        tried = 0
        for _ in range(attempts):
            tried += 1
            self._drain()
            self._rx = []
            start = time.monotonic()
            try:
                pdu = call()
            except ModbusIOException:  # no answer pymodbus could decode in time
                # (its own message counts its retries, always 0 here: we retry ourselves)
                kind = self._lost_answer(unit)
                detail = (
                    f"no answer within {self.timeout_s:g} s"
                    if kind == "timeout"
                    else "no readable answer"
                )
            except ConnectionException as err:  # the port cannot be opened or went away
                self._close_port()
                kind, detail = "bus_error", str(err)
            except (ModbusException, OSError, ValueError) as err:
                self._close_port()
                kind, detail = "bus_error", f"{type(err).__name__}: {err}"
            else:
                self._count_rx(unit)
                if pdu.isError():
                    kind, detail = "exception_response", f"exception code {pdu.exception_code}"
                    self._observer.request(function, kind, time.monotonic() - start)
                    break  # the board refused it (bad address): asking again will not help
                if matches(pdu):
                    self._observer.request(function, "ok", time.monotonic() - start)
                    self._quiet_for(unit).reset(f"bus {self.port}: unit {unit} answers again")
                    return pdu
                kind, detail = "mismatch", f"answer {pdu} does not belong to the request"
                self._observer.line_error("late_answer", 1)
            self._observer.request(function, kind, time.monotonic() - start)
        self._quiet_for(unit).failure(
            "bus %s: unit %d: %s failed (%s)", self.port, unit, function, kind
        )
        times = f"{tried} attempt{'s' if tried != 1 else ''}"
        raise BusError(kind, f"unit {unit}: {function} failed after {times} ({kind}: {detail})")

    def _quiet_for(self, unit: int) -> QuietLogger:
        return self._quiet.setdefault(unit, QuietLogger(log))

    def _trace(self, sending: bool, data: bytes) -> bytes:
        """pymodbus's packet hook: keep what was received (the buffer grows while it waits)."""
        if not sending and data:
            if self._rx and data.startswith(self._rx[-1]):
                self._rx[-1] = data
            else:
                self._rx.append(data)
        return data

    def _count_rx(self, unit: int) -> rtu.Classified:
        found = rtu.Classified(0, 0, 0)
        for chunk in self._rx:
            c = rtu.classify(chunk, unit)
            found = rtu.Classified(
                found.frames + c.frames, found.crc_errors + c.crc_errors, found.garbage + c.garbage
            )
        if found.crc_errors:
            self._observer.line_error("crc_error", found.crc_errors)
        if found.garbage:
            self._observer.line_error("garbage", found.garbage)
        return found

    def _lost_answer(self, unit: int) -> BusErrorKind:
        found = self._count_rx(unit)
        if found.crc_errors:
            return "crc_error"
        if found.garbage or found.frames:
            return "garbage"
        return "timeout"

    def _drain(self) -> None:
        """Read and classify what is already waiting (late answers, noise) before sending."""
        port = self._client.socket
        if port is None:
            return
        try:
            waiting = port.in_waiting
            stray = port.read(waiting) if waiting else b""
        except OSError:
            self._close_port()
            return
        if stray:
            found = rtu.classify(stray)
            if found.frames:
                self._observer.line_error("late_answer", found.frames)
            if found.crc_errors:
                self._observer.line_error("crc_error", found.crc_errors)
            if found.garbage:
                self._observer.line_error("garbage", found.garbage)
            log.debug("bus %s: dropped %d stray bytes before a request", self.port, len(stray))
