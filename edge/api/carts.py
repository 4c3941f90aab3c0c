"""Cart lock routes: list the carts (viewer), lock and unlock one (operator).

Commands carry a client request id and are idempotent: a repeat returns the first outcome and
moves no lock twice. The answer comes once the sensors confirm the new state, or is an error:
``board_timeout`` (504), ``crc_error`` (502), ``not_confirmed`` (504), ``board_down`` (503,
failing fast while the board does not answer), ``invalid_state`` / ``request_id_reused`` (409),
``unknown_cart`` (404), ``locks_disabled`` (503).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Path

from edge.api.errors import documented
from edge.api.routes import Route
from edge.errors import ApiError
from fleet_common.timefmt import rfc3339
from fleet_common.wire.edge import CartCommand, CartCommandResult, CartInfo, CartList

if TYPE_CHECKING:
    from edge.locks.driver import CartView
    from edge.locks.service import LockService
    from edge.locks.state import Action

CART_ROUTES = [
    Route("GET", "/api/carts", "viewer"),
    Route("POST", "/api/carts/{cart_id}/unlock", "operator"),
    Route("POST", "/api/carts/{cart_id}/lock", "operator"),
]

_ERRORS = documented(
    "unknown_cart",
    "invalid_state",
    "request_id_reused",
    "crc_error",
    "board_down",
    "bus_error",
    "locks_disabled",
    "board_timeout",
    "not_confirmed",
)

LockGetter = Callable[[], "LockService | None"]


def _info(view: CartView) -> CartInfo:
    return CartInfo(
        id=view.cart, board=view.unit, lock=view.lock, state=view.state,
        previous=view.previous, changed_at=rfc3339(view.changed_at), detail=view.detail,
        cart_present=view.cart_present, bolt_closed=view.bolt_closed,
    )  # fmt: skip


def add_cart_routes(api: FastAPI, locks: LockGetter) -> None:
    """The routes; ``locks()`` is the running lock service, None while locks are disabled."""

    @api.get("/api/carts", response_model=CartList, tags=["carts"])
    async def carts() -> CartList:
        """Every cart with its state, board and last change."""
        service = locks()
        if service is None:
            return CartList(enabled=False, carts=[], boards_down=[])
        views = service.carts()
        return CartList(
            enabled=True, carts=[_info(v) for v in views], boards_down=service.boards_down()
        )

    async def command(cart_id: int, action: Action, body: CartCommand) -> Any:
        service = locks()
        if service is None:
            raise ApiError("locks_disabled", "this edge drives no lock boards (locks.enabled)")

        outcome = await service.command(cart_id, action, body.request_id)  # CommandError: 4xx/5xx
        return CartCommandResult(
            cart=outcome.cart, action=outcome.action, request_id=outcome.request_id,
            state=outcome.state, confirmed_at=rfc3339(outcome.confirmed_at),
        )  # fmt: skip

    cart_path = Path(ge=1, description="Cart number (GET /api/carts).")

    @api.post(
        "/api/carts/{cart_id}/unlock", response_model=CartCommandResult, responses=_ERRORS,
        tags=["carts"],
    )  # fmt: skip
    async def unlock(body: CartCommand, cart_id: int = cart_path) -> Any:
        """Release the cart's lock; answers once the bolt sensor shows it open."""
        return await command(cart_id, "unlock", body)

    @api.post(
        "/api/carts/{cart_id}/lock", response_model=CartCommandResult, responses=_ERRORS,
        tags=["carts"],
    )  # fmt: skip
    async def lock(body: CartCommand, cart_id: int = cart_path) -> Any:
        """Hold the cart's lock; answers once the bolt sensor shows it closed."""
        return await command(cart_id, "lock", body)
