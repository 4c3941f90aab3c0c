"""``POST /api/v1/devices/heartbeat`` in raw ASGI: the route every device calls every 30 s.

FastAPI's routing (a scan of every route), dependency injection, ``json.loads`` + validation
and response-model serialisation cost about 0.8 ms of CPU per heartbeat, three times the work
itself; 2,000 heartbeats a second (60,000 devices) did not fit one process (bench/fleet).
Here the happy path is: a device key from the cache, ``model_validate_json`` of the body, the
service call, ``model_dump_json``. Anything else (no or another kind of credential, an unknown
or revoked key, a body that does not validate, a content type FastAPI would not read as JSON)
goes on to the FastAPI route untouched, which answers exactly as before: its errors, its 422
shape. The route stays declared there, so OpenAPI and the role table still describe it.

Sits inside the body caps (:mod:`.body`) and the request metrics (:mod:`.observe`), which label
the request with the route's template as FastAPI's routing would.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_sync.api.body import replay
from cloud_sync.api.errors import fleet_error_response
from cloud_sync.devices.keys import PREFIX
from cloud_sync.errors import CloudError
from cloud_sync.service import Cloud
from fleet_common.wire.cloud import HeartbeatRequest

HEARTBEAT_PATH: Final = "/api/v1/devices/heartbeat"
_JSON_TYPES: Final = ("", "application/json")
_HEADERS: Final = [(b"content-type", b"application/json")]


class HotHeartbeat:
    def __init__(self, app: ASGIApp, cloud: Cloud, route: Any) -> None:
        self.app = app
        self.cloud = cloud
        self.route = route  # FastAPI's route object, for the metrics' template label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != HEARTBEAT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key, content_type = "", ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                key = credentials.strip() if scheme.lower() == "bearer" else ""
            elif name == b"content-type":
                content_type = value.decode("latin-1").split(";")[0].strip().lower()
        body = await _read(receive)
        if body is None:
            return  # the client went away
        beat = None
        if key.startswith(PREFIX) and content_type in _JSON_TYPES:
            try:
                device = await self.cloud.device(key)
                beat = HeartbeatRequest.model_validate_json(body)
            except (CloudError, ValidationError):
                beat = None
        if beat is None:  # FastAPI answers it, as it always did
            await self.app(scope, replay(body, receive), send)
            return
        scope["route"] = self.route
        try:
            answer = await self.cloud.heartbeat(device, beat)
        except CloudError as err:
            await fleet_error_response(err)(scope, receive, send)
            return
        payload = answer.model_dump_json().encode()
        length = (b"content-length", str(len(payload)).encode())
        await send({"type": "http.response.start", "status": 200, "headers": [*_HEADERS, length]})
        await send({"type": "http.response.body", "body": payload})


async def _read(receive: Receive) -> bytes | None:
    """The whole body (capped already by :mod:`.body`); None if the client disconnected."""
    chunks = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
