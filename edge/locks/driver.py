"""The lock driver: the one thread that owns the bus, polls the boards and runs commands.

Why a thread with pymodbus's *sync* client rather than its asyncio client on the loop: RTU is
strictly one request, one answer; a single owner thread serialises every bus access by
construction (polls and commands in one queue, commands first), its timing does not depend on
how busy the event loop is (snapshot requests, SSE), and it keeps pymodbus's serial transport
and reconnect logic away from the edge's uvloop. The loop never waits on the bus: commands are
``concurrent.futures.Future`` objects the service awaits, and state changes are handed over
with a callback (the service uses ``call_soon_threadsafe``).

Commands are idempotent by request id: a repeat gets the first command's future (its outcome,
success or error); the ids of the last :data:`REQUEST_MEMORY` commands are kept.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from edge.config import LocksConfig
from edge.locks.errors import (
    BusError,
    CommandConflict,
    CommandError,
    CommandFailed,
    UnknownCart,
)
from edge.locks.register_map import BoardMap, LockPoints, Span, build_maps, cart_index
from edge.locks.state import (
    Action,
    CartMachine,
    CartState,
    Effect,
    Sensors,
    SetCoil,
)

log = logging.getLogger("edge.locks")

REQUEST_MEMORY: Final = 1024  # request ids remembered for idempotency
CONFIRM_INTERVAL_S: Final = 0.025  # between two reads while a command waits for its sensors


class BusLike(Protocol):
    def read_coils(self, unit: int, span: Span, *, retries: int | None = None) -> list[bool]: ...

    def read_inputs(self, unit: int, span: Span, *, retries: int | None = None) -> list[bool]: ...

    def write_coil(self, unit: int, address: int, value: bool) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CartView:
    """A cart as the API shows it (a copy; safe to read from any thread)."""

    cart: int
    unit: int
    lock: int  # 1-based lock number on its board
    state: CartState
    previous: CartState | None
    changed_at: float
    detail: str
    commanded: Action
    cart_present: bool | None
    bolt_closed: bool | None


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    cart: int
    action: Action
    request_id: str
    state: CartState
    confirmed_at: float


@dataclass(slots=True)
class _Job:
    cart: int
    action: Action
    request_id: str
    future: concurrent.futures.Future[CommandOutcome]


EffectSink = Callable[[Sequence[Effect]], None]
BoardSink = Callable[[int, bool, str], None]  # unit, up, detail


class LockDriver:
    def __init__(
        self,
        config: LocksConfig,
        bus: BusLike,
        *,
        on_effects: EffectSink,
        on_board: BoardSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.period_s = 1.0 / config.poll_hz
        self._bus = bus
        self._on_effects = on_effects
        self._on_board = on_board
        self._clock = clock
        self.maps = build_maps(config.boards)
        self._index = cart_index(self.maps)
        now = clock()
        self._machines = {
            cart: CartMachine(
                cart,
                fault_after_s=config.fault_after_s,
                unlock_hold_s=config.unlock_hold_s,
                now=now,
            )
            for cart in self._index
        }
        self._views: dict[int, CartView] = {}
        for cart in self._machines:
            self._publish(cart)
        self._down: dict[int, bool] = {bm.unit: False for bm in self.maps}
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._requests: OrderedDict[
            str, tuple[int, Action, concurrent.futures.Future[CommandOutcome]]
        ]
        self._requests = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-locks", daemon=True)
        self._next_poll = 0.0

    # ------------------------------------------------------------------ any thread
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop polling, fail queued commands, close the port. Blocking (joins the thread)."""
        with self._lock:  # no command is queued after this (submit checks under the lock)
            self._stop.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join()
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(CommandFailed("bus_error", "the lock driver stopped"))
        self._bus.close()

    def carts(self) -> list[CartView]:
        return [self._views[c] for c in sorted(self._views)]

    def cart(self, cart: int) -> CartView:
        try:
            return self._views[cart]
        except KeyError:
            raise UnknownCart("unknown_cart", f"no cart {cart}") from None

    def board_up(self, unit: int) -> bool:
        return not self._down[unit]

    def submit(
        self, cart: int, action: Action, request_id: str
    ) -> concurrent.futures.Future[CommandOutcome]:
        """Queue a command; a repeated ``request_id`` returns the first command's future."""
        return self.submit_new(cart, action, request_id)[0]

    def submit_new(
        self, cart: int, action: Action, request_id: str
    ) -> tuple[concurrent.futures.Future[CommandOutcome], bool]:
        """:meth:`submit`, also telling whether this was a new command (False: a repeat)."""
        with self._lock:
            known = self._requests.get(request_id)
            if known is not None:
                if known[:2] != (cart, action):
                    raise CommandConflict(
                        "request_id_reused",
                        f"request id {request_id!r} was used for {known[1]} of cart {known[0]}",
                    )
                return known[2], False
            if cart not in self._machines:
                raise UnknownCart("unknown_cart", f"no cart {cart}")
            if self._stop.is_set():
                raise CommandFailed("bus_error", "the lock driver is stopped")
            future: concurrent.futures.Future[CommandOutcome] = concurrent.futures.Future()
            self._requests[request_id] = (cart, action, future)
            while len(self._requests) > REQUEST_MEMORY:
                self._requests.popitem(last=False)
            self._queue.put(_Job(cart, action, request_id, future))
        return future, True

    # ------------------------------------------------------------------ driver thread
    def _run(self) -> None:
        self._next_poll = time.monotonic()
        while not self._stop.is_set():
            try:
                job = self._queue.get(timeout=max(0.0, self._next_poll - time.monotonic()))
            except queue.Empty:
                job = None
            if self._stop.is_set():
                break
            if job is not None and job.future.set_running_or_notify_cancel():
                self._execute(job)
            self._poll_due()  # also between commands: a burst of them does not starve the polls

    def _poll_due(self, skip: int | None = None) -> None:
        now = time.monotonic()
        if now < self._next_poll:
            return
        for bm in self.maps:
            if bm.unit != skip:
                self._poll(bm)
        # Fixed rate; after an overrun (boards timing out) start afresh instead of bursting.
        self._next_poll = max(self._next_poll + self.period_s, time.monotonic())

    def _poll(self, bm: BoardMap) -> bool:
        """Read one board and feed its carts; False when it did not answer."""
        retries = 0 if self._down[bm.unit] else None  # a board that is down: one try, fail fast
        try:
            coils = self._bus.read_coils(bm.unit, bm.coils, retries=retries)
            inputs = self._bus.read_inputs(bm.unit, bm.inputs, retries=retries)
        except BusError as err:
            self._board(bm, up=False, detail=str(err))
            self._feed((p.cart, None) for p in bm.points)
            return False
        self._board(bm, up=True, detail="")
        sensors = bm.decode(coils, inputs)
        self._feed((p.cart, sensors[p.cart]) for p in bm.points)
        return True

    def _board(self, bm: BoardMap, *, up: bool, detail: str) -> None:
        if self._down[bm.unit] == (not up):
            return
        self._down[bm.unit] = not up
        if up:
            log.info("lock board %d answers again", bm.unit)
        else:
            log.warning("lock board %d is not answering: %s", bm.unit, detail)
        self._on_board(bm.unit, up, detail)

    def _feed(self, readings: Iterable[tuple[int, Sensors | None]]) -> None:
        now = self._clock()
        effects: list[Effect] = []
        for cart, sensors in readings:
            machine = self._machines[cart]
            effects += machine.observe(sensors, now)
        self._apply(effects)

    def _apply(self, effects: list[Effect]) -> None:
        """Write the coils the machines asked for; hand everything else to the service."""
        for effect in effects:
            if isinstance(effect, SetCoil):
                try:
                    self._write(effect)
                except BusError as err:  # a hold that failed is asked for again next poll
                    log.debug("cart %d: coil write failed: %s", effect.cart, err)
        rest = [e for e in effects if not isinstance(e, SetCoil)]
        for cart in {e.cart for e in effects}:
            self._publish(cart)
        if rest:
            self._on_effects(rest)

    def _write(self, effect: SetCoil) -> None:
        bm, points = self._index[effect.cart]
        self._bus.write_coil(bm.unit, points.coil, bm.coil_value(effect.release))

    def _execute(self, job: _Job) -> None:
        machine = self._machines[job.cart]
        bm, _ = self._index[job.cart]
        try:
            effects = machine.command(job.action, self._clock())
        except CommandError as err:
            job.future.set_exception(err)
            return
        try:
            for effect in effects:
                if isinstance(effect, SetCoil):
                    self._write(effect)
            self._publish(job.cart)
            state = self._confirm(bm, machine, job.action)
        except BusError as err:
            self._take_back(machine, job.action)
            job.future.set_exception(CommandFailed(err.command_code, str(err)))
            return
        except CommandFailed as err:
            self._take_back(machine, job.action)
            job.future.set_exception(err)
            return
        log.info("cart %d: %s confirmed (%s)", job.cart, job.action, state)
        job.future.set_result(
            CommandOutcome(job.cart, job.action, job.request_id, state, self._clock())
        )

    def _confirm(self, bm: BoardMap, machine: CartMachine, action: Action) -> CartState:
        """Read the board back until the cart's sensors show the command done, or time out."""
        deadline = time.monotonic() + self.config.confirm_timeout_s
        while True:
            coils = self._bus.read_coils(bm.unit, bm.coils)
            inputs = self._bus.read_inputs(bm.unit, bm.inputs)
            self._board(bm, up=True, detail="")
            sensors = bm.decode(coils, inputs)
            self._feed((p.cart, sensors[p.cart]) for p in bm.points)
            if action == "unlock" and machine.commanded == "unlock":
                if machine.state in ("unlocked", "in_use"):
                    return machine.state
            elif action == "lock" and machine.state == "locked":
                return machine.state
            elif action == "unlock":
                raise CommandFailed(
                    "not_confirmed", f"cart {machine.cart}: the board dropped the unlock"
                )
            if time.monotonic() >= deadline or self._stop.is_set():
                raise CommandFailed(
                    "not_confirmed",
                    f"cart {machine.cart}: sensors did not confirm {action} within"
                    f" {self.config.confirm_timeout_s:g} s",
                )
            self._stop.wait(CONFIRM_INTERVAL_S)
            self._poll_due(skip=bm.unit)

    def _take_back(self, machine: CartMachine, action: Action) -> None:
        """An unlock that failed or was not confirmed is undone: nobody is waiting for it."""
        if action != "unlock" or machine.commanded != "unlock" or machine.state == "unknown":
            return
        effects = machine.command("lock", self._clock())
        self._apply(effects)

    def _publish(self, cart: int) -> None:
        m = self._machines[cart]
        bm, p = self._index[cart]
        s = m.sensors
        self._views[cart] = CartView(
            cart=cart, unit=bm.unit, lock=p.index + 1, state=m.state, previous=m.previous,
            changed_at=m.changed_at, detail=m.detail, commanded=m.commanded,
            cart_present=s.cart_present if s else None, bolt_closed=s.bolt_closed if s else None,
        )  # fmt: skip


__all__ = ["BusLike", "CartView", "CommandOutcome", "LockDriver", "LockPoints"]
