"""The carts page's presenter: every edge's cart locks, and unlock/lock commands.

Every known device is asked ``GET /api/carts`` once; an edge that drives lock boards
(``enabled``) is then polled every ``interval_s`` (1 s) and its ``cart`` events are followed
(SSE) so a change shows at once, with the next poll right behind it for the sensor fields the
event does not carry. An edge without lock boards is asked again every ``idle_interval_s``
(locks can be switched on through the config API while it runs).

Why all devices and not only the one selected in the sidebar: carts belong to the site, not to
a bay — the person at the desk hands out a cart without knowing which bay's Pi drives its
board — and a site has one or two edges with lock boards. Whether an edge has any is taken from
its own answer (``enabled``), not from the zeroconf ``caps``, which an edge added by URL lacks.

Commands carry a fresh uuid request id; one command per cart is in flight. A command the
network lost is sent again once with the same id, which the edge answers with the first
outcome (it moves no lock twice). The confirmed state or the error ends up on the cart's tile
(:class:`console.models.cart_tiles.Command`) and as ``commandConfirmed`` / ``commandFailed``. A
viewer key gets the edge's 403: the section becomes read-only ("operator key needed") and no further
command is sent until the device's key changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError
from PySide6.QtCore import QObject, Signal

from console.models.cart_tiles import (
    API_KEY_NEEDED,
    OPERATOR_KEY_NEEDED,
    UNREACHABLE,
    Action,
    CartSection,
    CartTile,
    Command,
    command_error_text,
    done_text,
    operator_key_text,
)
from console.presenters.base import Presenter, tracked_slot
from console.services.device import Device
from console.services.edge_client import ClientFor, EdgeClient, EdgeEvent, cart_info
from console.services.errors import ConsoleError, EdgeApiError, EdgeAuthError, EdgeUnreachable
from fleet_common.wire.edge import CartCommandResult, CartList
from fleet_common.wire.events import ALERT, CART, AlertPayload, CartPayload, parse_payload

log = logging.getLogger("console.carts")


BACKOFF_MAX_S: Final = 15.0
COMMAND_ATTEMPTS: Final = 2  # the second with the same request id: the edge's idempotency
RETRY_PAUSE_S: Final = 0.5
EVENT_KINDS: Final = ("cart", "alert")  # alerts: a board going down or coming back
LOCK_ALERT: Final = "lock_fault"


@dataclass
class _Watch:
    device: Device
    section: CartSection
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    events: int = 0  # cart events applied (a poll that overlapped one is repeated)
    client: EdgeClient | None = None  # the client of the last poll (a new one: a new key)
    shown: Any = None  # what the view was last told (no signal for an unchanged poll)
    poll: asyncio.Task[None] | None = None
    follow: asyncio.Task[None] | None = None


class CartsPresenter(Presenter):
    """Cart sections by device key. Widgets read :meth:`section` on ``sectionChanged``."""

    sectionChanged = Signal(str)  # device key
    sectionRemoved = Signal(str)  # device key
    commandStarted = Signal(str, int, str)  # device key, cart, action
    commandConfirmed = Signal(str, int, object)  # device key, cart, CartCommandResult
    commandFailed = Signal(str, int, str, str)  # device key, cart, error code, text

    def __init__(
        self,
        client_for: ClientFor,
        *,
        interval_s: float = 1.0,
        idle_interval_s: float = 15.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._client_for = client_for
        self.interval_s = interval_s
        self.idle_interval_s = idle_interval_s
        self._watches: dict[str, _Watch] = {}

    # ------------------------------------------------------------------ reading
    def section(self, key: str) -> CartSection | None:
        watch = self._watches.get(key)
        return watch.section if watch is not None else None

    @property
    def sections(self) -> list[CartSection]:
        """Every device's section, by name (devices without lock boards included)."""
        return sorted(
            (w.section for w in self._watches.values()), key=lambda s: (s.name, s.device_key)
        )

    def device(self, key: str) -> Device | None:
        watch = self._watches.get(key)
        return watch.device if watch is not None else None

    # ------------------------------------------------------------------ devices
    def update_device(self, device: Device) -> None:
        """A device appeared or changed (name, URL, key): watch it; try it again at once."""
        watch = self._watches.get(device.key)
        if watch is None:
            watch = _Watch(device, CartSection(device.key, device.name))
            self._watches[device.key] = watch
        watch.device = device
        if watch.section.name != device.name:
            watch.section.name = device.name
            self.sectionChanged.emit(device.key)
        if not self.closed and (watch.poll is None or watch.poll.done()):
            watch.poll = self.spawn(self._poll(device.key), name=f"carts of {device.name}")
        watch.wake.set()

    def remove_device(self, key: str) -> None:
        watch = self._watches.pop(key, None)
        if watch is None:
            return
        for task in (watch.poll, watch.follow):
            if task is not None:
                task.cancel()
        self.sectionRemoved.emit(key)

    # ------------------------------------------------------------------ polling
    async def _poll(self, key: str) -> None:
        backoff = 0.0
        while (watch := self._watches.get(key)) is not None:
            watch.wake.clear()
            seen = watch.events
            ok = await self._poll_once(watch)
            if key not in self._watches:
                return
            if ok and watch.events != seen:
                continue  # an event arrived during the poll: its answer may be older; again
            if ok:
                backoff = 0.0
                delay = self.interval_s if watch.section.enabled else self.idle_interval_s
            else:
                backoff = min(BACKOFF_MAX_S, backoff * 2 if backoff else self.interval_s)
                delay = backoff
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives as the wait ends, and the closing console waits for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await watch.wake.wait()

    async def _poll_once(self, watch: _Watch) -> bool:
        section = watch.section
        client = self._client_for(watch.device)
        if client is not watch.client:  # a new URL or key: what the old key could not do, retry
            watch.client, section.read_only = client, ""
        try:
            carts = await client.carts()
        except EdgeAuthError as err:
            section.reachable = True
            section.problem = _auth_problem(err)
            self._publish(watch)
            return False
        except EdgeApiError as err:
            section.reachable = True
            if err.status == 404:  # an edge from before cart locks
                section.problem, section.enabled = "", False
                section.carts.clear()
                self._publish(watch)
                return True
            section.problem = f"The edge answered with an error: {err.message}"
            self._publish(watch)
            return False
        except EdgeUnreachable as err:
            section.reachable, section.problem = (
                False,
                f"The device does not answer ({err.message}).",
            )
            self._publish(watch)
            return False
        self._apply(watch, carts)
        return True

    def _apply(self, watch: _Watch, carts: CartList) -> None:
        section = watch.section
        section.reachable, section.problem = True, ""
        section.enabled = carts.enabled
        section.boards_down = sorted(carts.boards_down)
        tiles: dict[int, CartTile] = {}
        for info in carts.carts:
            tile = section.carts.get(info.id)
            if tile is None:
                tile = CartTile(info)
            else:
                tile.info = info  # the same tile: a command running on it keeps its place
            tiles[info.id] = tile
        section.carts = tiles
        self._follow_if_enabled(watch)
        self._publish(watch)

    def _follow_if_enabled(self, watch: _Watch) -> None:
        key = watch.device.key
        if watch.section.enabled:
            if watch.follow is None or watch.follow.done():
                watch.follow = self.spawn(self._follow(key), name=f"cart events of {key}")
        elif watch.follow is not None:
            watch.follow.cancel()
            watch.follow = None

    def _publish(self, watch: _Watch) -> None:
        """``sectionChanged`` when something a tile shows changed (not on every poll)."""
        s = watch.section
        shown = (
            s.name, s.enabled, tuple(s.boards_down), s.reachable, s.problem, s.read_only,
            tuple((t.info, _command_key(t.command)) for t in s.carts.values()),
        )  # fmt: skip
        if shown != watch.shown:
            watch.shown = shown
            self.sectionChanged.emit(s.device_key)

    # ------------------------------------------------------------------ events
    async def _follow(self, key: str) -> None:
        last: int | None = None
        while (watch := self._watches.get(key)) is not None:
            client = self._client_for(watch.device)
            try:
                async for event in client.follow_events(last_event_id=last, kinds=EVENT_KINDS):
                    if event.id > 0:
                        last = event.id
                    self._event(key, event)
            except EdgeAuthError as err:  # the poll says so on the section
                log.info("%s: no cart events: %s", client.base_url, err)
                return
            await asyncio.sleep(0.5)  # the stream ended: the pool replaced the client

    def _event(self, key: str, event: EdgeEvent) -> None:
        watch = self._watches.get(key)
        if watch is None:
            return
        if event.kind not in (ALERT, CART):
            return
        try:  # the edge builds it from the same model (fleet_common.wire.events)
            payload = parse_payload(event.kind, event.payload)
        except ValidationError as err:
            log.debug("%s: a %s event that does not fit its model: %s", key, event.kind, err)
            return
        if isinstance(payload, AlertPayload):
            if payload.code == LOCK_ALERT:
                watch.wake.set()  # a board went down or came back: read the boards now
            return
        if not isinstance(payload, CartPayload) or not payload.cart.isdigit():
            return
        tile = watch.section.tile(int(payload.cart))
        if tile is not None:
            update: dict[str, Any] = {
                "state": payload.state, "previous": payload.previous, "detail": payload.detail,
                "changed_at": payload.changed_at,
            }  # fmt: skip
            try:  # a state this console does not know yet is shown as the edge's string
                tile.info = cart_info({**tile.info.model_dump(), **update})
            except ValidationError as err:
                log.debug("%s: cart event not shown: %s", key, err)
            self._publish(watch)
        watch.events += 1
        watch.wake.set()  # the sensors (present, bolt) come with the next poll, at once

    # ------------------------------------------------------------------ commands
    def unlock(self, key: str, cart_id: int) -> asyncio.Task[None] | None:
        return self.command(key, cart_id, "unlock")

    def lock(self, key: str, cart_id: int) -> asyncio.Task[None] | None:
        return self.command(key, cart_id, "lock")

    @tracked_slot(str, int, str)
    async def command(self, key: str, cart_id: int, action: str) -> None:
        """Unlock or lock ``cart_id`` of device ``key`` (the view has asked for confirmation)."""
        if action not in ("unlock", "lock"):
            raise ValueError(f"no cart command {action!r}")
        act: Action = "unlock" if action == "unlock" else "lock"
        watch = self._watches.get(key)
        tile = watch.section.tile(cart_id) if watch is not None else None
        if watch is None or tile is None:
            raise ConsoleError(f"no cart {cart_id} on device {key!r} (any more)")
        name = watch.device.name
        if tile.running:
            self.error.emit(f"Cart {cart_id} at {name}: a command is still running")
            return
        request_id = uuid.uuid4().hex
        tile.command = Command(act, request_id)
        if watch.section.read_only:  # the edge refused this key before: send nothing
            self._failed(watch, tile, cart_id, OPERATOR_KEY_NEEDED, operator_key_text(act))
            return
        self.commandStarted.emit(key, cart_id, act)
        self._publish(watch)
        log.info("cart %d at %s: %s (request %s)", cart_id, name, act, request_id)
        try:
            result = await self._send(watch, cart_id, act, request_id)
        except EdgeAuthError as err:
            if err.status == 403:
                watch.section.read_only = operator_key_text(act)
                self._failed(watch, tile, cart_id, OPERATOR_KEY_NEEDED, operator_key_text(act))
            else:
                self._failed(watch, tile, cart_id, API_KEY_NEEDED,
                             command_error_text(act, API_KEY_NEEDED, err.message))  # fmt: skip
            return
        except EdgeApiError as err:
            self._failed(
                watch, tile, cart_id, err.code, command_error_text(act, err.code, err.message)
            )
            return
        except EdgeUnreachable as err:
            self._failed(
                watch, tile, cart_id, UNREACHABLE, command_error_text(act, UNREACHABLE, err.message)
            )
            return
        finally:
            watch.wake.set()  # read the carts now: the tile shows what the edge shows
        now = datetime.now().astimezone()
        tile.command = Command(act, request_id, "done", "", done_text(act, result.state, now), now)
        with contextlib.suppress(ValidationError):
            tile.info = cart_info({**tile.info.model_dump(), "state": result.state})
        log.info("cart %d at %s: %s confirmed (%s)", cart_id, name, act, result.state)
        self.commandConfirmed.emit(key, cart_id, result)
        self._publish(watch)

    async def _send(
        self, watch: _Watch, cart_id: int, action: Action, request_id: str
    ) -> CartCommandResult:
        for attempt in range(1, COMMAND_ATTEMPTS + 1):
            client = self._client_for(watch.device)
            call = client.unlock if action == "unlock" else client.lock
            try:
                return await call(cart_id, request_id)
            except EdgeUnreachable as err:
                if attempt == COMMAND_ATTEMPTS:
                    raise
                log.info("cart %d: %s lost (%s); sending it again (same request id)",
                         cart_id, action, err.message)  # fmt: skip
                await asyncio.sleep(RETRY_PAUSE_S)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _failed(self, watch: _Watch, tile: CartTile, cart_id: int, code: str, text: str) -> None:
        command = tile.command
        action: Action = command.action if command is not None else "unlock"
        request_id = command.request_id if command is not None else ""
        now = datetime.now().astimezone()
        tile.command = Command(action, request_id, "failed", code, text, now)
        log.info("cart %d at %s: %s failed: %s", cart_id, watch.device.name, action, code)
        self.commandFailed.emit(watch.device.key, cart_id, code, text)
        self._publish(watch)

    async def aclose(self) -> None:
        self._watches.clear()
        await super().aclose()


def _auth_problem(err: EdgeAuthError) -> str:
    if err.status == 403:
        return f"The stored key may not read the carts ({err.message})."
    return (
        "Showing the carts needs an API key for this device; the edge refused the stored one"
        f" ({err.message}). Enter a key in the device's settings."
    )


def _command_key(command: Command | None) -> tuple[str, str, str] | None:
    return None if command is None else (command.request_id, command.phase, command.text)
