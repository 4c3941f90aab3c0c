"""Small raw-ASGI helpers for the hot routes (no framework between the socket and the bytes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Headers = list[tuple[bytes, bytes]]


class BadRequest(Exception):
    """A query parameter is malformed; answered 422 with the parameter named."""


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first request header ``name`` (lower-case bytes), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"")
    return dict(parse_qsl(raw.decode("latin-1"))) if raw else {}


def int_param(
    params: dict[str, str], name: str, *, minimum: int = 0, maximum: int | None = None
) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        upper = f" and {maximum}" if maximum is not None else ""
        raise BadRequest(f"{name} must be between {minimum}{upper}, got {number}")
    return number


def float_param(
    params: dict[str, str], name: str, *, minimum: float, maximum: float
) -> float | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {value!r}") from None
    if not minimum <= number <= maximum:
        raise BadRequest(f"{name} must be between {minimum:g} and {maximum:g}, got {number:g}")
    return number


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    headers: Headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, payload: dict[str, Any], extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await send_bytes(send, status, body, b"application/json", extra)


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    extra: Iterable[tuple[bytes, bytes]] = (),
    **fields: Any,
) -> None:
    """The JSON error body of DESIGN.md: ``{"error": code, "message": text, ...}``."""
    await send_json(send, status, {"error": code, "message": message, **fields}, extra)


async def wait_disconnect(receive: Receive) -> None:
    """Return when the client goes away (for endless responses such as MJPEG)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnected(receive: Receive, work: Awaitable[None]) -> None:
    """Run ``work`` until it ends or the client disconnects, whichever comes first."""
    watcher = asyncio.ensure_future(wait_disconnect(receive))
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait({watcher, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (watcher, task):
            t.cancel()
        await asyncio.gather(watcher, task, return_exceptions=True)
    error = task.exception() if task.done() and not task.cancelled() else None
    if error is not None:
        raise error
