"""Request bodies: capped as sent and as decompressed, gzip accepted (raw ASGI, before routing).

A body larger than its route's cap is refused with 413 as soon as its ``Content-Length`` or its
bytes say so, without reading the rest into memory; ``Content-Encoding: gzip`` is inflated in
bounded steps, so a small "zip bomb" cannot grow past the decompressed cap either.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_sync.api.errors import error_response

INGEST_PATH: Final = "/api/v1/ingest"
MEMBERS_PATH: Final = "/api/v1/members"  # a whole member list: ingest's caps
_CHUNK: Final = 64 * 1024


class BodyLimits:
    def __init__(
        self, app: ASGIApp, *, max_body: int, max_ingest: int, max_decompressed: int
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_ingest = max_ingest
        self.max_decompressed = max_decompressed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        ingest = scope["path"] in (INGEST_PATH, MEMBERS_PATH)
        cap = self.max_ingest if ingest else self.max_body
        inflated_cap = self.max_decompressed if ingest else self.max_body
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", ""):
            await self._refuse(scope, receive, send, "unsupported_encoding",
                               "Content-Encoding must be gzip or identity")  # fmt: skip
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            await self._too_large(scope, receive, send, cap)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > cap:
                await self._too_large(scope, receive, send, cap)
                return
        data = bytes(body)
        if encoding == "gzip":
            inflated = _gunzip(data, inflated_cap)
            if inflated is None:
                await self._refuse(scope, receive, send, "bad_request", "the gzip body is corrupt")
                return
            if len(inflated) > inflated_cap:
                await self._too_large(scope, receive, send, inflated_cap, "decompressed ")
                return
            data = inflated
            dropped = (b"content-encoding", b"content-length")
            kept = [(k, v) for k, v in scope["headers"] if k.lower() not in dropped]
            scope = {**scope, "headers": kept}
        await self.app(scope, replay(data, receive), send)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, cap: int, what: str = ""
    ) -> None:
        await self._refuse(scope, receive, send, "payload_too_large",
                           f"the {what}body is larger than this route's {cap} bytes")  # fmt: skip

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, code: str, text: str
    ) -> None:
        await error_response(code, text, {"Connection": "close"})(scope, receive, send)


def _gunzip(data: bytes, cap: int) -> bytes | None:
    """Inflate at most ``cap + 1`` bytes (more means too large); None when not valid gzip."""
    inflater = zlib.decompressobj(wbits=31)
    out = bytearray()
    try:
        pending = data
        while pending and len(out) <= cap:
            out += inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
        if len(out) <= cap:
            out += inflater.flush()
            if not inflater.eof:
                return None
    except zlib.error:
        return None
    return bytes(out)


def replay(data: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            message: dict[str, Any] = {"type": "http.request", "body": data, "more_body": False}
            return message
        return await receive()

    return replay
