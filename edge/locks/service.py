"""The lock service: the driver's thread on one side, the event loop on the other.

Started with the edge only when ``locks.enabled`` (the edge imports this module lazily, so an
edge without lock boards loads neither pyserial nor pymodbus). It turns the driver's state
changes into ``cart`` events (outbox topic ``carts``; ``"change": "state"``), sensor changes
without a state change into ``cart`` events too (``"change": "sensors"``, local only: not sent to
the cloud), board and cart faults into ``alert`` events (code ``lock_fault``), a cart gone from
a bay nobody unlocked into an ``alert`` (code ``cart_missing``), returns into rentals in the
store, and keeps the metrics.
Effects are handled in order by one task; nothing here blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from edge.config import LocksConfig
from edge.errors import StoreError
from edge.events import EventLog
from edge.locks import rentals
from edge.locks.driver import BusLike, CartView, CommandOutcome, LockDriver
from edge.locks.errors import CommandError
from edge.locks.state import (
    CART_STATES,
    Action,
    Effect,
    RentalDone,
    SensorChange,
    StateChange,
)
from edge.metrics import EdgeMetrics
from edge.store import Store
from fleet_common.timefmt import rfc3339
from fleet_common.wire.events import (
    TOPIC_CARTS,
    TOPIC_EVENTS,
    CartPayload,
    RentalInfo,
    Severity,
    alert,
)

log = logging.getLogger("edge.locks")

ALERT_CODE: Final = "lock_fault"  # a board not answering, a cart in fault
MISSING_CODE: Final = "cart_missing"  # a cart gone from a bay nobody unlocked
_ALERT_STATES: Final[dict[str, tuple[str, Severity]]] = {  # state: (alert code, severity)
    "fault": (ALERT_CODE, "warning"),
    "missing": (MISSING_CODE, "warning"),
}


class MetricsObserver:
    """The bus's observer: Prometheus counters (thread-safe; called from the driver thread)."""

    def __init__(self, metrics: EdgeMetrics) -> None:
        self._m = metrics

    def request(self, function: str, outcome: str, seconds: float) -> None:
        self._m.lock_bus_requests.labels(function, outcome).inc()
        self._m.lock_bus_seconds.labels(function).observe(seconds)
        if outcome != "ok":
            self._m.lock_bus_errors.labels(outcome).inc()

    def line_error(self, kind: str, count: int) -> None:
        self._m.lock_bus_errors.labels(kind).inc(count)


class LockService:
    def __init__(
        self,
        config: LocksConfig,
        metrics: EdgeMetrics,
        events: EventLog,
        store: Callable[[], Store | None],
        *,
        bus: BusLike | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.events = events
        self._store = store
        self._bus = bus
        self._driver: LockDriver | None = None
        # One consumer keeps the order; fed only by state changes (a few per cart and minute).
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._rental: dict[int, RentalDone] = {}

    @property
    def driver(self) -> LockDriver:
        if self._driver is None:
            raise RuntimeError("the lock service is not started")
        return self._driver

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        bus = self._bus
        if bus is None:
            from edge.locks.bus import Bus  # pymodbus and pyserial load here, not before

            bus = Bus(self.config, MetricsObserver(self.metrics))

        def on_effects(effects: Sequence[Effect]) -> None:
            loop.call_soon_threadsafe(self._queue.put_nowait, lambda: self._effects(effects))

        def on_board(unit: int, up: bool, detail: str) -> None:
            loop.call_soon_threadsafe(self._queue.put_nowait, lambda: self._board(unit, up, detail))

        self._driver = LockDriver(self.config, bus, on_effects=on_effects, on_board=on_board)
        self._worker = loop.create_task(self._work(), name="locks-events")
        self._driver.start()
        self._count_states()
        boards = ", ".join(f"{b.unit}:{b.locks}" for b in self.config.boards)
        log.info("cart locks on %s (boards %s) at %g Hz", self.config.port, boards,
                 self.config.poll_hz)  # fmt: skip

    async def stop(self) -> None:
        """Stop the driver (worker thread), then record what it reported before it stopped."""
        if self._driver is not None:
            await asyncio.to_thread(self._driver.stop)
        worker, self._worker = self._worker, None
        if worker is not None:
            await self.settle()
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def settle(self) -> None:
        """Wait until every change the driver reported so far is recorded (events, rentals)."""
        await asyncio.sleep(0)  # let pending call_soon_threadsafe callbacks queue their work
        await self._queue.join()

    # ------------------------------------------------------------------ API
    def carts(self) -> list[CartView]:
        return self.driver.carts()

    def boards_down(self) -> list[int]:
        return [bm.unit for bm in self.driver.maps if not self.driver.board_up(bm.unit)]

    async def command(self, cart: int, action: Action, request_id: str) -> CommandOutcome:
        """Run a command on the driver thread; a repeated request id gets the first outcome."""
        new = True
        try:
            future, new = self.driver.submit_new(cart, action, request_id)
            # shield: a client that goes away must not cancel a command others may await too.
            outcome = await asyncio.shield(asyncio.wrap_future(future))
        except CommandError as err:
            if new:  # a repeat is answered from memory: counted once
                self.metrics.lock_commands.labels(action, err.code).inc()
            raise
        if new:
            self.metrics.lock_commands.labels(action, "ok").inc()
        return outcome

    # ------------------------------------------------------------------ loop side
    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await job()
            except Exception:  # one bad effect must not stop the recording of the next ones
                log.exception("cart locks: cannot record an event")
            finally:
                self._queue.task_done()

    async def _effects(self, effects: Sequence[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, RentalDone):
                self._rental[effect.cart] = effect
            elif isinstance(effect, StateChange):
                await self._state_change(effect)
            elif isinstance(effect, SensorChange):
                await self._sensor_change(effect)
        self._count_states()

    async def _state_change(self, change: StateChange) -> None:
        view = self.driver.cart(change.cart)
        done = self._rental.pop(change.cart, None) if change.state == "returned" else None
        rental = None
        if done is not None:
            rental = RentalInfo(
                unlocked_at=rfc3339(done.unlocked_at), taken_at=rfc3339(done.taken_at),
                returned_at=rfc3339(done.returned_at), duration_s=round(done.duration_s, 3),
            )  # fmt: skip
        payload = CartPayload(
            cart=str(change.cart), change="state", state=change.state, previous=change.previous,
            board=view.unit, lock=view.lock, at=rfc3339(change.at),
            changed_at=rfc3339(change.at), detail=change.detail,
            cart_present=change.cart_present, bolt_closed=change.bolt_closed, rental=rental,
        )  # fmt: skip
        event_id = await self.events.publish(payload, TOPIC_CARTS)  # rentals ride on `returned`
        if done is not None:
            await self._store_rental(done, event_id)
        left = _ALERT_STATES.get(change.previous or "")
        if left is not None:
            if change.previous == "missing":
                again = "back in its bay"
            elif change.state in ("locked", "unlocked"):
                again = f"{change.state} again"
            else:
                again = f"{change.state}, fault over"
            await self._alert(False, "info", f"cart {change.cart}: {again}", left[0],
                              cart=change.cart)  # fmt: skip
        entered = _ALERT_STATES.get(change.state)
        if entered is not None:
            await self._alert(True, entered[1], f"cart {change.cart}: {change.detail}", entered[0],
                              cart=change.cart)  # fmt: skip

    async def _sensor_change(self, change: SensorChange) -> None:
        """The sensors moved without a change of state: shown at once, kept on the edge."""
        view = self.driver.cart(change.cart)
        payload = CartPayload(
            cart=str(change.cart), change="sensors", state=change.state,
            previous=view.previous, board=view.unit, lock=view.lock,
            at=rfc3339(change.at), changed_at=rfc3339(view.changed_at),
            detail=view.detail, cart_present=change.cart_present,
            bolt_closed=change.bolt_closed,
        )  # fmt: skip
        await self.events.publish(payload)  # no outbox topic: kept on the edge

    async def _store_rental(self, done: RentalDone, event_id: int) -> None:
        self.metrics.lock_rentals.inc()
        self.metrics.lock_rental_seconds.observe(done.duration_s)
        log.info("cart %d returned after %.1f s", done.cart, done.duration_s)
        store = self._store()
        if store is None:
            return
        try:
            await asyncio.to_thread(rentals.add_rental, store, done, event_id or None)
        except StoreError as err:
            log.warning("cart %d: rental not stored: %s", done.cart, str(err).splitlines()[0])

    async def _board(self, unit: int, up: bool, detail: str) -> None:
        self.metrics.lock_boards_down.set(len(self.boards_down()))
        if up:
            await self._alert(False, "info", f"lock board {unit} answers again", board=unit)
        else:
            await self._alert(True, "critical", f"lock board {unit} is not answering: {detail}",
                              board=unit)  # fmt: skip

    async def _alert(
        self,
        active: bool,
        severity: Severity,
        message: str,
        code: str = ALERT_CODE,
        *,
        board: int | None = None,
        cart: int | None = None,
    ) -> None:
        payload = alert(code, severity, active, message, board=board, cart=cart)
        await self.events.publish(payload, TOPIC_EVENTS)

    def _count_states(self) -> None:
        counts = dict.fromkeys(CART_STATES, 0)
        for view in self.driver.carts():
            counts[view.state] += 1
        for state, n in counts.items():
            self.metrics.lock_carts.labels(state).set(n)
