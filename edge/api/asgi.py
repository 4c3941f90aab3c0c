"""Small raw-ASGI helpers for the hot routes (no framework between the socket and the bytes)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from fleet_common.wire.errors import status_of

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Headers = list[tuple[bytes, bytes]]

# Ids and sequence numbers are SQLite INTEGERs: a larger one cannot exist (and would overflow).
MAX_INT = 2**63 - 1
# ASCII only: int() and float() also take other scripts' digits (``١٢٣``), which no client means.
_INT = re.compile(r"-?[0-9]{1,19}")
_FLOAT = re.compile(r"-?(?:[0-9]{1,15}(?:\.[0-9]{0,15})?|\.[0-9]{1,15})")


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


def parse_int(text: str, name: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """An integer written in ASCII digits within bounds; the message never repeats the input."""
    if _INT.fullmatch(text) is None:
        raise BadRequest(f"{name} must be an integer (ASCII digits)")
    number = int(text)
    if not minimum <= number <= maximum:
        raise BadRequest(f"{name} must be between {minimum} and {maximum}")
    return number


def int_param(
    params: dict[str, str], name: str, *, minimum: int = 0, maximum: int = MAX_INT
) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return parse_int(value, name, minimum=minimum, maximum=maximum)


def float_param(
    params: dict[str, str], name: str, *, minimum: float, maximum: float
) -> float | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if _FLOAT.fullmatch(value) is None:
        raise BadRequest(f"{name} must be a decimal number (ASCII digits)")
    number = float(value)
    if not minimum <= number <= maximum:
        raise BadRequest(f"{name} must be between {minimum:g} and {maximum:g}")
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
    code: str,
    message: str,
    extra: Iterable[tuple[bytes, bytes]] = (),
    **fields: Any,
) -> None:
    """The JSON error body of DESIGN.md, ``{"error": code, "message": text, ...}``, with the
    status the registry gives ``code`` (the raw routes' side of the one error mapping)."""
    await send_json(send, status_of(code), {"error": code, "message": message, **fields}, extra)


async def wait_disconnect(receive: Receive) -> None:
    """Return when the client goes away (for endless responses such as MJPEG)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnected(
    receive: Receive, work: Awaitable[None], stop: asyncio.Event | None = None
) -> None:
    """Run ``work`` until it ends, the client disconnects or ``stop`` is set (the server is
    shutting down), whichever comes first."""
    watcher = asyncio.ensure_future(wait_disconnect(receive))
    task = asyncio.ensure_future(work)
    waits: set[asyncio.Future[Any]] = {watcher, task}
    if stop is not None:
        waits.add(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in waits:
            t.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    error = task.exception() if task.done() and not task.cancelled() else None
    if error is not None:
        raise error
