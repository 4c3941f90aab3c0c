"""The console's HTTP client for one edge: pictures, health, metrics, events (SSE), config and
cart locks.

One :class:`EdgeClient` per edge (see :mod:`console.services.pool`), one keep-alive
``httpx.AsyncClient`` inside it. Every foreign error is translated at this boundary:
transport errors and timeouts → :class:`EdgeUnreachable`, 401/403 → :class:`EdgeAuthError`,
any other status ≥ 400 or an unreadable body → :class:`EdgeApiError`.

Answers are parsed with the edge's own wire models (:mod:`fleet_common.wire.edge`). They are
response models, which ignore fields they do not know: a console keeps working across a fleet
that is upgraded site by site, without a lenient re-parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias, TypeVar, get_args

import httpx
from pydantic import BaseModel, ValidationError

from console.services.device import Device
from console.services.errors import (
    ConsoleError,
    EdgeApiError,
    EdgeAuthError,
    EdgeUnreachable,
)
from console.services.promtext import parse_metrics
from console.services.sse import SseMessage, SseParser
from fleet_common.logs import QuietLogger
from fleet_common.wire.edge import (
    H_AGE_MS,
    H_CAPTURED_AT,
    H_SEQ,
    H_STREAM_STATUS,
    CartCommandResult,
    CartInfo,
    CartList,
    CartStateName,
    ConfigApplied,
    ConfigDoc,
    ConfigHistory,
    ConfigVersionInfo,
    EventList,
    EventOut,
    Health,
    SnapshotInfo,
)

log = logging.getLogger("console.edge_client")

M = TypeVar("M", bound=BaseModel)

ClientFor: TypeAlias = Callable[[Device], "EdgeClient"]
"""How a presenter gets a device's client before each use (:meth:`EdgeClients.client_for
<console.services.pool.EdgeClients.client_for>` in the app, a stub in tests)."""

# A tile polls pictures, a device page polls metrics and config, one SSE stream stays open:
# a handful of connections per edge is plenty, kept alive between polls.
# The edge (uvicorn) closes an idle kept-alive connection after 5 s: the console drops its own
# end sooner, so it rarely sends on a connection the edge has just closed (and when it does, an
# idempotent GET is sent once more on a new connection: see EdgeClient._request).
KEEPALIVE_EXPIRY_S = 4.0
_LIMITS = httpx.Limits(
    max_connections=8, max_keepalive_connections=4, keepalive_expiry=KEEPALIVE_EXPIRY_S
)
# What a kept-alive connection the server closed meanwhile looks like when it is reused.
STALE_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
)  # fmt: skip
# Longer than twice the edge's SSE keepalive (15 s): a silent stream means a dead connection.
SSE_READ_TIMEOUT_S = 35.0
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 15.0


@dataclass(frozen=True, slots=True)
class Picture:
    jpeg: bytes
    etag: str
    seq: int
    captured_at: datetime
    age_ms: float  # as the edge measured it when it answered
    stream_status: str
    received_mono: float  # time.monotonic() when the answer arrived: age now = age_ms + elapsed


@dataclass(frozen=True, slots=True)
class EdgeEvent:
    id: int
    ts: datetime
    kind: str
    payload: dict[str, Any]


_CART_STATES: frozenset[str] = frozenset(get_args(CartStateName))
_STATE_FIELDS = ("state", "previous")


def cart_info(data: dict[str, Any]) -> CartInfo:
    """One cart of ``GET /api/carts`` (or a cart event merged into one). A state this console
    does not know yet (a newer edge's) is kept as the edge's own string rather than failing the
    whole list: the carts page shows it as-is and the wall counts it unknown, never free."""
    odd = {f: data[f] for f in _STATE_FIELDS if isinstance(data.get(f), str)}
    odd = {f: v for f, v in odd.items() if v not in _CART_STATES}
    info = CartInfo.model_validate({**data, **dict.fromkeys(odd, "unknown")})
    # model_copy does not validate: the field holds the edge's string as it came.
    return info.model_copy(update=odd) if odd else info


def cart_list(data: Any) -> CartList:
    """``GET /api/carts``'s answer, each cart read by :func:`cart_info`."""
    if not isinstance(data, dict) or not isinstance(data.get("carts"), list):
        return CartList.model_validate(data)  # fails with the model's own message
    carts = [
        cart_info(c) if isinstance(c, dict) else CartInfo.model_validate(c) for c in data["carts"]
    ]
    return CartList.model_validate({**data, "carts": []}).model_copy(update={"carts": carts})


def parse_ts(text: str) -> datetime:
    """An RFC 3339 timestamp (``Z`` or an offset). Raises ``ValueError``."""
    return datetime.fromisoformat(text.strip())


def _event(out: EventOut) -> EdgeEvent:
    """An :class:`EventOut` as an :class:`EdgeEvent` (its time parsed); ``ValueError`` when the
    time is not RFC 3339."""
    return EdgeEvent(id=out.id, ts=parse_ts(out.ts), kind=out.kind, payload=out.payload)


class EdgeClient:
    """Typed calls to one edge's HTTP API (``base_url`` like ``http://192.168.1.20:8080``)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 5.0,
        sse_read_timeout_s: float = SSE_READ_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.sse_read_timeout_s = sse_read_timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            limits=_LIMITS,
            transport=transport,
            # Edges are on the LAN: a desktop's proxy settings must not reroute them.
            trust_env=False,
        )
        self._closed = False
        self._closing = asyncio.Event()
        self._streams: set[httpx.Response] = set()

    def __repr__(self) -> str:
        return f"EdgeClient({self.base_url!r})"

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Close the connections; a running :meth:`follow_events` ends. Safe twice."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        for response in list(self._streams):
            await response.aclose()
        await self._http.aclose()

    # ------------------------------------------------------------------ plumbing
    def _unreachable(self, err: Exception) -> EdgeUnreachable:
        text = str(err) or type(err).__name__
        return EdgeUnreachable(self.base_url, text)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        ok: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send a request; raise the right :class:`ConsoleError` for anything but success
        (or a status listed in ``ok``)."""
        if self._closed:
            raise EdgeUnreachable(self.base_url, "client closed")
        attempts = 2 if method in ("GET", "HEAD") else 1  # idempotent: one retry is safe
        for attempt in range(attempts):
            try:
                response = await self._http.request(
                    method, path, params=params, headers=headers, json=json_body
                )
                break
            except STALE_CONNECTION_ERRORS as err:
                if attempt + 1 < attempts and not self._closed:
                    log.debug("%s: %s on a kept-alive connection; once more", path, _describe(err))
                    continue
                raise self._unreachable(err) from err
            except httpx.RequestError as err:
                raise self._unreachable(err) from err
            except RuntimeError as err:  # httpx: "the client has been closed" (aclose raced us)
                raise EdgeUnreachable(self.base_url, "client closed") from err
        else:  # pragma: no cover - every round breaks, continues or raises
            raise EdgeUnreachable(self.base_url, "no answer")
        if response.status_code not in ok:
            self._check(response)
        return response

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        code, message, errors = _error_body(response)
        if status in (401, 403):
            raise EdgeAuthError(self.base_url, status, message)
        raise EdgeApiError(self.base_url, status, code, message, errors)

    def _bad(self, response: httpx.Response, what: str, err: Exception) -> EdgeApiError:
        return EdgeApiError(
            self.base_url, response.status_code, "bad_response", f"unreadable {what}: {err}"
        )

    async def _json(self, path: str, **kwargs: Any) -> Any:
        method = kwargs.pop("method", "GET")
        response = await self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as err:
            raise self._bad(response, f"answer from {path}", err) from err

    async def _model(self, model: type[M], path: str, *, what: str = "", **kwargs: Any) -> M:
        """The answer from ``path`` parsed as ``model`` (fields a newer edge adds are ignored:
        answers are :class:`~fleet_common.wire.base.ResponseModel`); an answer that does not fit
        is an :class:`EdgeApiError` ``bad_response`` saying "unreadable ``what``"."""
        data = await self._json(path, **kwargs)
        return self._validate(model, data, what or f"answer from {path}")

    def _validate(self, model: type[M], data: Any, what: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as err:
            raise EdgeApiError(
                self.base_url, 200, "bad_response", f"unreadable {what}: {err}"
            ) from err

    # ------------------------------------------------------------------ status
    async def health(self) -> Health:
        """``GET /api/health`` (no key needed)."""
        return await self._model(Health, "/api/health")

    async def info(self) -> SnapshotInfo:
        """``GET /api/snapshot/info``."""
        return await self._model(SnapshotInfo, "/api/snapshot/info")

    async def metrics(self) -> dict[str, float]:
        """``GET /metrics`` as ``{'name{label="v"}': value}``."""
        response = await self._request("GET", "/metrics")
        return parse_metrics(response.text)

    # ------------------------------------------------------------------ pictures
    async def snapshot(
        self, *, width: int | None = None, etag: str | None = None, max_age_ms: int | None = None
    ) -> Picture | None:
        """The newest picture; None when it is still ``etag`` (304 Not Modified)."""
        params: dict[str, Any] = {}
        if width is not None:
            params["width"] = width
        if max_age_ms is not None:
            params["max_age_ms"] = max_age_ms
        headers = {"If-None-Match": etag} if etag else None
        response = await self._request(
            "GET", "/api/snapshot", params=params or None, headers=headers, ok=(304,)
        )
        return None if response.status_code == 304 else self._picture(response)

    async def snapshot_at(self, seq: int, *, width: int | None = None) -> Picture | None:
        """Picture ``seq`` from the edge's history (``GET /api/snapshots/{seq}``); None when it
        is no longer kept (404)."""
        params = {"width": width} if width is not None else None
        response = await self._request(
            "GET", f"/api/snapshots/{int(seq)}", params=params, ok=(404,)
        )
        return None if response.status_code == 404 else self._picture(response)

    async def plate_crop(self, path: str) -> bytes | None:
        """The JPEG crop of a plate read at ``path`` (the read's ``crop_url``, e.g.
        ``/api/plates/{id}/crop.jpg``); None when the edge no longer keeps it (404). Only a
        path on this edge: the API key goes with it."""
        if not path.startswith("/api/") or "//" in path or "?" in path or "#" in path:
            raise ValueError(f"not a crop path on the edge: {path!r}")
        response = await self._request("GET", path, ok=(404,))
        return None if response.status_code == 404 else response.content

    def _picture(self, response: httpx.Response) -> Picture:
        try:
            return Picture(
                jpeg=response.content,
                etag=response.headers["etag"],
                seq=int(response.headers[H_SEQ]),
                captured_at=parse_ts(response.headers[H_CAPTURED_AT]),
                age_ms=float(response.headers[H_AGE_MS]),
                stream_status=response.headers[H_STREAM_STATUS],
                received_mono=time.monotonic(),
            )
        except (KeyError, ValueError) as err:
            raise self._bad(response, "picture headers", err) from err

    # ------------------------------------------------------------------ events
    async def recent_events(self, limit: int = 50, kinds: Sequence[str] = ()) -> list[EdgeEvent]:
        """``GET /api/events/recent``: the newest events, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if kinds:
            params["kinds"] = ",".join(kinds)
        listed = await self._model(EventList, "/api/events/recent", what="events", params=params)
        try:
            return [_event(out) for out in listed.events]
        except ValueError as err:
            raise EdgeApiError(
                self.base_url, 200, "bad_response", f"unreadable events: {err!r}"
            ) from err

    async def follow_events(
        self, last_event_id: int | None = None, kinds: Sequence[str] = ()
    ) -> AsyncGenerator[EdgeEvent, None]:
        """Every event after ``last_event_id`` (None: from now on), as they happen, forever.

        "From now on" is anchored at the edge's newest event id when following starts (one
        ``GET /api/events/recent?limit=1``), so events during a reconnect before the first
        event arrives are not lost either; an edge without that route gives live events only.
        Reconnects after any failure with capped, jittered backoff (0.5 s → 15 s) and resumes
        with ``Last-Event-ID``: no event is lost or yielded twice across reconnects. Ends when
        the consumer stops iterating, its task is cancelled, or this client is closed.
        Raises :class:`EdgeAuthError` (a wrong key does not heal by retrying: ask for one).
        An async generator: ``await events.aclose()`` closes the connection at once.
        """
        last = last_event_id
        quiet = QuietLogger(log)
        delay = BACKOFF_MIN_S
        params = {"kinds": ",".join(kinds)} if kinds else None
        timeout = httpx.Timeout(self.timeout_s, read=self.sse_read_timeout_s)
        anchor = last is None
        while not self._closed:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            parser = SseParser()
            received = False
            try:
                if anchor:
                    last = await self._newest_event_id()
                    anchor = False
                    if last is not None:
                        headers["Last-Event-ID"] = str(last)
                request = self._http.build_request(
                    "GET", "/api/events", params=params, headers=headers, timeout=timeout
                )
                response = await self._http.send(request, stream=True)
                self._streams.add(response)
                try:
                    if response.status_code >= 400:
                        await response.aread()
                        self._check(response)
                    kind = response.headers.get("content-type", "")
                    if not kind.startswith("text/event-stream"):
                        raise EdgeApiError(
                            self.base_url, response.status_code, "bad_response",
                            f"/api/events answered {kind or 'no content type'}",
                        )  # fmt: skip
                    async for chunk in response.aiter_text():
                        if not received:
                            received = True
                            delay = BACKOFF_MIN_S
                            quiet.reset(f"{self.base_url}: event stream back")
                        for message in parser.feed(chunk):
                            event = self._sse_event(message)
                            if event is None:
                                continue
                            if event.id <= 0:  # not stored by the edge: no resume position
                                yield event
                                continue
                            # Ids only grow: an id not above the last one was yielded already.
                            if last is not None and event.id <= last:
                                continue
                            last = event.id
                            yield event
                finally:
                    self._streams.discard(response)
                    await response.aclose()
                if self._closing.is_set():
                    return
                quiet.failure("%s: event stream ended by the edge; reconnecting", self.base_url)
            except EdgeAuthError:
                raise
            except (httpx.RequestError, httpx.StreamError, ConsoleError, ValueError) as err:
                # ValueError: the parser refused an endless line (not an event stream).
                if self._closing.is_set():
                    return
                quiet.failure("%s: event stream failed: %s", self.base_url, _describe(err))
            except RuntimeError:  # httpx: the client was closed under us
                if self._closing.is_set():
                    return
                raise
            if parser.retry_ms is not None:
                delay = max(delay, min(parser.retry_ms / 1000.0, BACKOFF_MAX_S))
            sleep = random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not a secret
            delay = min(delay * 2, BACKOFF_MAX_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(sleep):
                    await self._closing.wait()  # set by aclose(): the loop condition ends it

    async def _newest_event_id(self) -> int | None:
        """The edge's newest event id (0: none yet); None for an edge without the route."""
        try:
            newest = await self.recent_events(limit=1)
        except EdgeApiError as err:
            if err.status == 404:
                return None
            raise
        return newest[0].id if newest else 0

    def _sse_event(self, message: SseMessage) -> EdgeEvent | None:
        try:
            raw = json.loads(message.data)
            if isinstance(raw, dict) and "id" not in raw and message.id is not None:
                raw["id"] = int(message.id)
            return _event(EventOut.model_validate(raw))
        except ValueError as err:  # pydantic's ValidationError is one
            log.debug("%s: skipping unreadable event %r: %r", self.base_url, message, err)
            return None

    # ------------------------------------------------------------------ cart locks
    async def carts(self) -> CartList:
        """``GET /api/carts`` (viewer): every cart's state and the boards that do not answer;
        ``enabled`` is False on an edge without lock boards."""
        data = await self._json("/api/carts")
        try:
            return cart_list(data)
        except ValidationError as err:
            raise EdgeApiError(
                self.base_url, 200, "bad_response", f"unreadable answer from /api/carts: {err}"
            ) from err

    async def unlock(self, cart_id: int, request_id: str) -> CartCommandResult:
        """``POST /api/carts/{id}/unlock`` (operator): answers once the bolt sensor confirms.

        Idempotent by ``request_id``: sending the same id again (after a timeout, say) returns
        the first outcome and moves no lock twice. Errors: :class:`EdgeAuthError` (403: not an
        operator key) and :class:`EdgeApiError` with ``code`` ``board_down``, ``board_timeout``,
        ``not_confirmed``, ``crc_error``, ``invalid_state``, ``request_id_reused``,
        ``unknown_cart`` or ``locks_disabled``.
        """
        return await self._cart_command(cart_id, "unlock", request_id)

    async def lock(self, cart_id: int, request_id: str) -> CartCommandResult:
        """``POST /api/carts/{id}/lock`` (operator): as :meth:`unlock`, for closing the lock."""
        return await self._cart_command(cart_id, "lock", request_id)

    async def _cart_command(self, cart_id: int, action: str, request_id: str) -> CartCommandResult:
        path = f"/api/carts/{int(cart_id)}/{action}"
        return await self._model(
            CartCommandResult, path, method="POST", json_body={"request_id": request_id}
        )

    # ------------------------------------------------------------------ config
    async def config(self) -> ConfigDoc:
        """``GET /api/config`` (admin): the current version, secrets masked as ``"***"``."""
        return await self._model(ConfigDoc, "/api/config", what="config")

    async def config_schema(self) -> dict[str, Any]:
        """``GET /api/config/schema`` (admin): JSON schema with ``x-apply`` on every leaf."""
        data = await self._json("/api/config/schema")
        if not isinstance(data, dict):
            raise EdgeApiError(self.base_url, 200, "bad_response", "schema is not an object")
        return data

    async def put_config(
        self, config: dict[str, Any], *, if_match: int | None = None
    ) -> ConfigApplied:
        """``PUT /api/config``: replace the whole config (``"***"`` keeps a secret); ``if_match``
        → 412 (``EdgeApiError.status``) when the config changed since that version."""
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else None
        return await self._model(
            ConfigApplied, "/api/config", what="config update",
            method="PUT", json_body=config, headers=headers,
        )  # fmt: skip

    async def patch_config(
        self, patch: dict[str, Any], *, if_match: int | None = None
    ) -> ConfigApplied:
        """``PATCH /api/config`` with a JSON merge patch (RFC 7396); ``if_match`` → 412
        (``EdgeApiError.status``) when the config changed since that version."""
        headers = {"Content-Type": "application/merge-patch+json"}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        return await self._model(
            ConfigApplied, "/api/config", what="config update",
            method="PATCH", json_body=patch, headers=headers,
        )  # fmt: skip

    async def config_history(self, limit: int = 50) -> list[ConfigVersionInfo]:
        """``GET /api/config/history``: versions, newest first; each ``created_at`` is checked
        to be an RFC 3339 time (:func:`parse_ts` reads it)."""
        history = await self._model(
            ConfigHistory, "/api/config/history", what="history", params={"limit": limit}
        )
        try:
            for info in history.versions:
                parse_ts(info.created_at)
        except ValueError as err:
            raise EdgeApiError(
                self.base_url, 200, "bad_response", f"unreadable history: {err!r}"
            ) from err
        return history.versions

    async def config_version(self, version: int) -> ConfigDoc:
        """``GET /api/config/versions/{n}``."""
        path = f"/api/config/versions/{int(version)}"
        return await self._model(ConfigDoc, path, what="config version")

    async def rollback(self, version: int | None = None) -> ConfigApplied:
        """``POST /api/config/rollback``: to ``version``, or to the previous good one."""
        body = {} if version is None else {"version": version}
        return await self._model(
            ConfigApplied, "/api/config/rollback", what="rollback", method="POST", json_body=body
        )


def _error_body(response: httpx.Response) -> tuple[str, str, list[dict[str, Any]]]:
    """``(code, message, errors)`` from an error response, whatever its body."""
    fallback = response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()[:200]
        return f"http_{response.status_code}", text or fallback, []
    if not isinstance(body, dict):
        return f"http_{response.status_code}", fallback, []
    code = body.get("error")
    message = body.get("message") or body.get("detail")
    errors = body.get("errors")
    return (
        code if isinstance(code, str) else f"http_{response.status_code}",
        message if isinstance(message, str) else fallback,
        [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
    )


def _describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
