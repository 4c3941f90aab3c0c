"""The outermost ASGI layer: latency metrics, per-client rate limit, API-key roles, dispatch.

Pure ASGI rather than framework middleware: it costs a few microseconds per request, which
matters on the snapshot hot path (see bench/snapshot).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import Counter, Histogram

from edge.api.asgi import ASGIApp, BadRequest, Message, Receive, Scope, Send, header, send_error
from edge.api.ratelimit import RateLimiter
from edge.api.routes import OPEN_DOC_PATHS, Route, RouteTable
from edge.keys import KeyEntry, KeyStore, role_allows
from edge.metrics import EdgeMetrics

log = logging.getLogger("edge.api")

_BEARER = b"bearer "
_WWW_AUTH = [(b"www-authenticate", b'Bearer realm="carwash-edge"')]


class Guard:
    """Wraps the FastAPI app; raw routes are answered here without entering it."""

    def __init__(
        self,
        inner: ASGIApp,
        table: RouteTable,
        keys: KeyStore,
        limiter: RateLimiter,
        metrics: EdgeMetrics,
    ) -> None:
        self.inner = inner
        self.table = table
        self.keys = keys
        self.limiter = limiter
        self.metrics = metrics
        # Metric children resolved once, not per request.
        self._latency: dict[tuple[str, str], Histogram] = {}
        self._responses: dict[tuple[str, int], Counter] = {}

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
            await send_error(send_observed, 422, "bad_request", str(err))

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
                send, 429, "rate_limited", "too many requests from this client; slow down",
                [(b"retry-after", str(max(1, round(retry_after))).encode())],
            )  # fmt: skip
            return
        if route is None:
            if scope["path"] in OPEN_DOC_PATHS:
                await self.inner(scope, receive, send)
            elif path_known:
                await send_error(send, 405, "method_not_allowed", f"{scope['method']} not allowed")
            else:
                await send_error(send, 404, "not_found", f"no route {scope['path']}")
            return
        if route.role is not None:
            if entry is None:
                self.metrics.auth_failures.labels(auth_error).inc()
                message = (
                    "this route needs an API key: Authorization: Bearer KEY"
                    if auth_error == "missing" else "the API key is not valid (revoked?)"
                )  # fmt: skip
                await send_error(send, 401, "unauthorized", message, _WWW_AUTH)
                return
            if not role_allows(entry.role, route.role):
                self.metrics.auth_failures.labels("role").inc()
                await send_error(
                    send, 403, "forbidden",
                    f"this route needs the {route.role} role; the key has {entry.role}",
                )  # fmt: skip
                return
        scope.setdefault("state", {})["api_key"] = entry
        if route.raw is not None:
            await route.raw(scope, receive, send, **params)
        else:
            await self.inner(scope, receive, send)

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
