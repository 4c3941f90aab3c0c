"""``GET /api/events`` (Server-Sent Events, raw ASGI) and ``GET /api/events/recent`` (JSON).

The stream is raw ASGI like the MJPEG route: it runs until the client goes away (the response
ends at once then, and its subscription with it), and nothing buffers between the event log and
the socket. A client resumes with ``Last-Event-ID`` (or ``?after=``): the stored events after that
id come first, then live ones, with no gap and no repeat. One that reads too slowly is moved
back onto the store by the event log rather than given more memory.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

from fastapi import FastAPI, Query

from edge.api.asgi import (
    MAX_INT,
    Receive,
    Scope,
    Send,
    header,
    int_param,
    parse_int,
    query,
    until_disconnected,
)
from edge.events import Subscription, parse_kinds
from edge.service import Edge
from edge.store import Event
from fleet_common.timefmt import rfc3339
from fleet_common.wire.edge import EventList, EventOut

SSE_TYPE: Final = b"text/event-stream; charset=utf-8"
KEEPALIVE: Final = b": keepalive\n\n"
RECENT_MAX: Final = 1000


def event_out(event: Event) -> EventOut:
    return EventOut(id=event.id, ts=rfc3339(event.ts), kind=event.kind, payload=event.payload)


def sse_message(event: Event) -> bytes:
    """One SSE message; an event that could not be stored (id 0) carries no ``id:`` line, so a
    client's resume position stays where it was."""
    data = json.dumps(
        {"id": event.id, "ts": rfc3339(event.ts), "kind": event.kind, "payload": event.payload},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    head = f"id: {event.id}\n" if event.id else ""
    return f"{head}event: {event.kind}\ndata: {data}\n\n".encode()


class EventRoutes:
    """The SSE handler bound to one :class:`Edge`."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /api/events[?after=N&kinds=a,b]``, header ``Last-Event-ID: N``."""
        params = query(scope)
        after = int_param(params, "after", minimum=0)
        last_id = header(scope, b"last-event-id")
        if last_id is not None and last_id.strip():
            after = parse_int(last_id.strip().decode("latin-1"), "Last-Event-ID")
        kinds = parse_kinds(params.get("kinds"))
        # Subscribed before the headers go out: an event emitted once a client has the
        # response headers reaches it.
        with self.edge.events.subscribe(after, kinds) as sub:
            await send({
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", SSE_TYPE),
                    (b"cache-control", b"no-cache, no-store"),
                    (b"x-accel-buffering", b"no"),
                ],
            })  # fmt: skip
            await until_disconnected(receive, self._pump(sub, send))
            # The log closed (shutdown) or the client left: end the response cleanly.
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, sub: Subscription, send: Send) -> None:
        keepalive_s = self.edge.config.http.sse_keepalive_s
        while True:
            try:
                async with asyncio.timeout(keepalive_s):
                    event = await sub.get()  # cancellation-safe: nothing is lost on timeout
            except TimeoutError:
                body = KEEPALIVE
            else:
                if event is None:
                    return  # the log closed: the edge is stopping
                body = sse_message(event)
            await send({"type": "http.response.body", "body": body, "more_body": True})


def add_event_routes(api: FastAPI, edge: Edge) -> None:
    """``GET /api/events/recent`` (FastAPI: typed and documented by :class:`EventList`).

    Added to the app itself, not through an ``APIRouter``: FastAPI keeps an included router as
    one opaque entry of ``app.routes``, which the route-table check cannot see into.
    """

    @api.get("/api/events/recent", response_model=EventList, tags=["events"])
    async def recent_events(
        limit: int = Query(50, ge=1, le=RECENT_MAX, description="At most this many."),
        kinds: str | None = Query(
            None, description="Only these kinds, comma-separated (e.g. `alert,stream`)."
        ),
    ) -> EventList:
        """The newest events, newest first (stream, recovery, alert, config, plate, cart)."""
        found = await edge.events.recent(limit, parse_kinds(kinds))
        return EventList(events=[event_out(e) for e in found])


def openapi_operation(summary: str) -> dict[str, Any]:
    """The OpenAPI description of the raw ``GET /api/events``."""
    text = {"schema": {"type": "integer", "minimum": 0, "maximum": MAX_INT}}
    return {
        "summary": summary,
        "tags": ["events"],
        "description": (
            "Server-Sent Events, one per event: `id: N`, `event: KIND`, `data: EventOut as"
            " JSON`; a `: keepalive` comment every `http.sse_keepalive_s` seconds. Resume with"
            " `Last-Event-ID` (or `?after=`): the stored events after that id come first, then"
            " live ones. Neither given: live events only."
        ),
        "parameters": [
            {"name": "after", "in": "query", "required": False, **text,
             "description": "Resume after this event id (Last-Event-ID wins if both are sent)."},
            {"name": "kinds", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "Only these kinds, comma-separated."},
            {"name": "Last-Event-ID", "in": "header", "required": False, **text,
             "description": "The id of the last event received (sent by SSE clients)."},
        ],
        "responses": {
            "200": {"description": "An endless event stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            "422": {"description": "Bad `after` or `Last-Event-ID`",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ErrorBody"}}}},
        },
    }  # fmt: skip
