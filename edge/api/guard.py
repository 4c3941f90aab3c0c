"""The outermost ASGI layer: latency metrics, per-client rate limit, API-key roles, dispatch.

It also bounds what one client may take: a request body is JSON of at most ``max_body_bytes``
(413 and 415 otherwise, before the framework reads a byte more), and one client (API key, or
address without one) holds at most ``max_streams`` endless responses (events, MJPEG) at once.

Pure ASGI rather than framework middleware: it costs a few microseconds per request, which
matters on the snapshot hot path (see bench/snapshot).
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Callable
from typing import Any, Final

from prometheus_client import Counter, Histogram

from edge.api.asgi import ASGIApp, BadRequest, Message, Receive, Scope, Send, header, send_error
from edge.api.ratelimit import RateLimiter
from edge.api.routes import OPEN_DOC_PATHS, Route, RouteTable
from edge.errors import EdgeError
from edge.keys import KeyEntry, KeyStore, role_allows
from edge.metrics import EdgeMetrics

log = logging.getLogger("edge.api")

_BEARER = b"bearer "
_WWW_AUTH = [(b"www-authenticate", b'Bearer realm="carwash-edge"')]
# Endless responses: counted per client against max_streams.
STREAM_ROUTES: Final = frozenset({"/api/events", "/api/stream.mjpeg"})
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_JSON_TYPES: Final = (b"application/json", b"application/merge-patch+json")


class _BodyRefused(EdgeError):
    """A body the guard refuses before the app sees it (``payload_too_large``,
    ``unsupported_media_type``)."""


class Guard:
    """Wraps the FastAPI app; raw routes are answered here without entering it."""

    def __init__(
        self,
        inner: ASGIApp,
        table: RouteTable,
        keys: KeyStore,
        limiter: RateLimiter,
        metrics: EdgeMetrics,
        *,
        max_body_bytes: int = 1024 * 1024,
        max_streams: int = 8,
    ) -> None:
        self.inner = inner
        self.table = table
        self.keys = keys
        self.limiter = limiter
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_streams = max_streams
        self._streams: Tally[str] = Tally()  # open endless responses per client
        self.stream_enders: list[Callable[[], None]] = []  # end endless responses at shutdown
        # Metric children resolved once, not per request.
        self._latency: dict[tuple[str, str], Histogram] = {}
        self._responses: dict[tuple[str, int], Counter] = {}

    def end_streams(self) -> None:
        """The server is stopping: end the MJPEG responses (event streams end with the log)."""
        for end in self.stream_enders:
            end()

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        hist = self._latency.get((method, route))
        if hist is None:
            hist = self._latency[(method, route)] = self.metrics.http_seconds.labels(method, route)
        hist.observe(seconds)
        counter = self._responses.get((route, status))
        if counter is None:
            counter = self._responses[(route, status)] = self.metrics.http_responses.labels(
                route, str(status)
            )
        counter.inc()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        route, params, path_known = self.table.match(method, path)
        label = route.template if route is not None else "other"
        started = time.perf_counter()
        observed = False

        async def send_observed(message: Message) -> None:
            nonlocal observed
            if message["type"] == "http.response.start" and not observed:
                observed = True
                self._observe(method, label, message["status"], time.perf_counter() - started)
            await send(message)

        try:
            await self._handle(scope, receive, send_observed, route, params, path_known)
        except BadRequest as err:
            if observed:
                raise
            await send_error(send_observed, "invalid_request", str(err))

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route | None,
        params: dict[str, Any],
        path_known: bool,
    ) -> None:
        entry, auth_error = self._authenticate(scope)
        client = f"key:{entry.id}" if entry is not None else f"ip:{_client_host(scope)}"
        retry_after = self.limiter.allow(client)
        if retry_after:
            self.metrics.rate_limited.inc()
            await send_error(
                send, "rate_limited", "too many requests from this client; slow down",
                [(b"retry-after", str(max(1, round(retry_after))).encode())],
            )  # fmt: skip
            return
        if route is None:
            if scope["path"] in OPEN_DOC_PATHS:
                await self.inner(scope, receive, send)
            elif path_known:
                await send_error(send, "method_not_allowed", f"{scope['method']} not allowed")
            else:
                await send_error(send, "not_found", f"no route {scope['path']}")
            return
        if route.role is not None:
            if entry is None:
                self.metrics.auth_failures.labels(auth_error).inc()
                message = (
                    "this route needs an API key: Authorization: Bearer KEY"
                    if auth_error == "missing" else "the API key is not valid (revoked?)"
                )  # fmt: skip
                await send_error(send, "unauthorized", message, _WWW_AUTH)
                return
            if not role_allows(entry.role, route.role):
                self.metrics.auth_failures.labels("role").inc()
                await send_error(
                    send, "forbidden",
                    f"this route needs the {route.role} role; the key has {entry.role}",
                )  # fmt: skip
                return
        scope.setdefault("state", {})["api_key"] = entry
        if route.raw is None:
            if scope["method"] in _BODY_METHODS:
                try:
                    receive = await self._read_body(scope, receive)
                except _BodyRefused as err:
                    await send_error(send, err.code, err.message)
                    return
            await self.inner(scope, receive, send)
        elif route.template in STREAM_ROUTES:
            if self._streams[client] >= self.max_streams:
                await send_error(
                    send, "too_many_streams",
                    f"this client holds {self.max_streams} event/MJPEG streams already"
                    " (http.max_streams_per_client): close one first",
                    [(b"retry-after", b"5")],
                )  # fmt: skip
                return
            self._streams[client] += 1
            try:
                await route.raw(scope, receive, send, **params)
            finally:
                self._streams[client] -= 1
                if self._streams[client] <= 0:
                    del self._streams[client]
        else:
            await route.raw(scope, receive, send, **params)

    async def _read_body(self, scope: Scope, receive: Receive) -> Receive:
        """Read a JSON route's whole body (bounded), and a ``receive`` that replays it.

        Refused (:class:`_BodyRefused`): larger than ``max_body_bytes`` (413: by its
        Content-Length before reading, or once that many bytes came), or a body that is not
        declared JSON (415).
        """
        limit = self.max_body_bytes
        declared = header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise _BodyRefused(
                code="payload_too_large", message=f"the body is larger than {limit} bytes"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _BodyRefused(
                    code="payload_too_large", message=f"the body is larger than {limit} bytes"
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            kind = (header(scope, b"content-type") or b"").partition(b";")[0].strip().lower()
            if kind not in _JSON_TYPES:
                raise _BodyRefused(
                    code="unsupported_media_type", message="send the body as application/json"
                )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    def _authenticate(self, scope: Scope) -> tuple[KeyEntry | None, str]:
        """``(entry, reason)``: reason is ``missing`` or ``invalid`` when entry is None."""
        value = header(scope, b"authorization")
        if value is None:
            return None, "missing"
        if value[:7].lower() != _BEARER:
            return None, "invalid"
        entry = self.keys.verify(value[7:].strip().decode("latin-1"))
        return (entry, "") if entry is not None else (None, "invalid")


def _client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
