"""The cloud's device API over HTTP: one ``httpx.AsyncClient``, timeouts, the device key.

Every method returns a wire model (:mod:`fleet_common.wire.cloud`) or raises a
:class:`~edge.sync.errors.CloudCallFailed`; httpx's own errors never leave this module. Nothing
here retries: the loops in :mod:`edge.sync.service` decide when to try again.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from edge.sync.errors import (
    CloudUnavailable,
    RateLimited,
    Refused,
    Unauthorized,
)
from fleet_common.version import VERSION
from fleet_common.wire.cloud import HeartbeatRequest, HeartbeatResponse, IngestResult

MAX_RETRY_AFTER_S: Final = 600.0  # a Retry-After beyond this is taken as this
DEFAULT_RETRY_AFTER_S: Final = 5.0  # a 429 without a usable Retry-After
GZIP_LEVEL: Final = 5
# Answers about the request's content: sent again as it is, it would fail again. Any other
# error status (404 from a proxy, 400/415 from a middlebox...) is taken as "not now" and retried:
# refusing rows for it could drop events for a cloud that merely is misconfigured for a while.
_REFUSED: Final = frozenset({413, 422})

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = 5.0
    read_s: float = 15.0  # a hanging cloud costs at most this per call
    write_s: float = 15.0
    pool_s: float = 5.0

    def httpx(self, read_s: float | None = None) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_s,
            read=self.read_s if read_s is None else read_s,
            write=self.write_s,
            pool=self.pool_s,
        )


def encode_batch(events: Sequence[dict[str, Any]]) -> bytes:
    """An ingest body, gzipped. CPU work: call it from a worker thread for big batches."""
    body = json.dumps({"events": list(events)}, separators=(",", ":")).encode()
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def retry_after_s(value: str | None, now: float | None = None) -> float:
    """``Retry-After`` (seconds or an HTTP date) → seconds to wait, within [0, 600]."""
    if not value:
        return DEFAULT_RETRY_AFTER_S
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER_S
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return DEFAULT_RETRY_AFTER_S
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.reason_phrase or f"HTTP {resp.status_code}"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        code = body.get("error")
        return f"{body['message']} ({code})" if isinstance(code, str) else str(body["message"])
    return resp.reason_phrase or f"HTTP {resp.status_code}"


def raise_for(resp: httpx.Response, what: str) -> None:
    """Translate a non-2xx answer into the error tree (304 is not an error)."""
    status = resp.status_code
    if status < 300 or status == 304:
        return
    text = f"{what}: HTTP {status}: {_message(resp)}"[:500]
    if status == 429:
        raise RateLimited(text, retry_after_s=retry_after_s(resp.headers.get("Retry-After")))
    if status in (401, 403):
        raise Unauthorized(text, reason="unauthorized", status=status)
    if status in _REFUSED:
        raise Refused(text, reason="too_large" if status == 413 else "refused", status=status)
    raise CloudUnavailable(text, reason=f"http_{status}", status=status)


class CloudClient:
    """One device's calls to the cloud. :meth:`aclose` when done (or ``async with``)."""

    def __init__(
        self,
        cloud_url: str,
        device_key: str,
        *,
        timeouts: Timeouts | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeouts = timeouts or Timeouts()
        self._http = httpx.AsyncClient(
            base_url=cloud_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {device_key}",
                "User-Agent": f"carwash-edge/{VERSION}",
            },
            timeout=self.timeouts.httpx(),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> CloudClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ calls
    async def heartbeat(self, beat: HeartbeatRequest) -> HeartbeatResponse:
        resp = await self._call(
            "heartbeat", "POST", "/api/v1/devices/heartbeat", json=beat.model_dump(mode="json")
        )
        return _parse(HeartbeatResponse, resp, "heartbeat")

    async def ingest(self, gzipped_body: bytes) -> IngestResult:
        """Send a batch made by :func:`encode_batch`."""
        resp = await self._call(
            "ingest", "POST", "/api/v1/ingest", content=gzipped_body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )  # fmt: skip
        return _parse(IngestResult, resp, "ingest")

    async def get(
        self,
        what: str,
        path: str,
        *,
        etag: str | None = None,
        params: dict[str, Any] | None = None,
        read_timeout_s: float | None = None,
        accept: tuple[int, ...] = (),
    ) -> httpx.Response:
        """A GET with ``If-None-Match``; a 304, or a status in ``accept``, comes back as it is."""
        headers = {"If-None-Match": etag} if etag is not None else {}
        limits = self.timeouts.httpx(read_timeout_s) if read_timeout_s is not None else None
        return await self._call(
            what, "GET", path, headers=headers, params=params, accept=accept, limits=limits
        )

    async def post_json(self, what: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self._call(what, "POST", path, json=body)

    async def _call(
        self,
        what: str,
        method: str,
        path: str,
        *,
        limits: httpx.Timeout | None = None,
        accept: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        extra: dict[str, Any] = {"timeout": limits} if limits is not None else {}
        try:
            resp = await self._http.request(method, path, **kwargs, **extra)
        except httpx.TimeoutException as err:
            raise CloudUnavailable(
                f"{what}: the cloud did not answer in time ({type(err).__name__})", reason="timeout"
            ) from err
        except httpx.TransportError as err:
            raise CloudUnavailable(f"{what}: cannot reach the cloud: {err or type(err).__name__}",
                                   reason="unreachable") from err  # fmt: skip
        if resp.status_code not in accept:
            raise_for(resp, what)
        return resp


def parse(model: type[M], resp: httpx.Response, what: str) -> M:
    """The body as ``model``; a body that does not fit is the cloud's fault (retried)."""
    return _parse(model, resp, what)


def _parse(model: type[M], resp: httpx.Response, what: str) -> M:
    try:
        return model.model_validate_json(resp.content)
    except ValidationError as err:
        raise CloudUnavailable(
            f"{what}: the cloud's answer is not a {model.__name__}: {err.error_count()} problems",
            reason="bad_answer", status=resp.status_code,
        ) from err  # fmt: skip
