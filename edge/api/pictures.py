"""The picture routes, in raw ASGI: the hot path is a dictionary lookup and a memory copy.

``GET /api/snapshot`` is what the wash controller calls when a car stops. It never encodes: the
JPEG was made once when the frame arrived, scaled variants once per width on first request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edge.api.asgi import (
    Receive,
    Scope,
    Send,
    float_param,
    header,
    int_param,
    query,
    send_bytes,
    send_error,
    until_disconnected,
)
from edge.service import Edge
from edge.snapshots.cache import Snapshot
from fleet_common.timefmt import rfc3339
from fleet_common.wire.edge import H_AGE_MS, H_CAPTURED_AT, H_SEQ, H_STREAM_STATUS

JPEG: Final = b"image/jpeg"
MAX_WIDTH: Final = 7680
MAX_AGE_MS: Final = 3_600_000  # ?max_age_ms= (an hour)
MJPEG_BOUNDARY: Final = "carwashframe"
# An MJPEG client that sees nothing for this long re-sends the last picture (keeps proxies open).
MJPEG_KEEPALIVE_S: Final = 5.0

_H_SEQ = H_SEQ.lower().encode()
_H_CAPTURED_AT = H_CAPTURED_AT.lower().encode()
_H_AGE = H_AGE_MS.lower().encode()
_H_STATUS = H_STREAM_STATUS.lower().encode()


class PictureRoutes:
    """Handlers bound to one :class:`Edge`; each is an ASGI callable."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self._cfg = edge.config.snapshots
        # Set when the server shuts down: MJPEG responses end cleanly then, instead of being
        # cancelled (a traceback per viewer) once the graceful shutdown time is over.
        self._closing = asyncio.Event()

    def end_streams(self) -> None:
        """End every MJPEG response (the server is stopping); new ones end at once."""
        self._closing.set()

    # ------------------------------------------------------------------ helpers
    def _headers(self, snap: Snapshot, etag: str) -> list[tuple[bytes, bytes]]:
        now = time.monotonic()
        fixed = snap.fixed_headers
        if fixed is None:
            fixed = snap.fixed_headers = [
                (b"cache-control", b"no-cache"),
                (_H_SEQ, str(snap.seq).encode()),
                (_H_CAPTURED_AT, rfc3339(snap.captured_at).encode()),
            ]
        return [
            *fixed,
            (b"etag", etag.encode()),
            (_H_AGE, str(round(snap.age_ms(now))).encode()),
            (_H_STATUS, self.edge.stream_status(now).encode()),
        ]

    def _width(self, scope: Scope) -> int | None:
        return int_param(query(scope), "width", minimum=self._cfg.min_width, maximum=MAX_WIDTH)

    async def _send_picture(
        self, scope: Scope, send: Send, snap: Snapshot, width: int | None
    ) -> None:
        if width is None or width >= snap.width:
            body, etag = snap.jpeg, snap.etag
        else:
            body, _ = await self.edge.cache.variant(snap, width)
            etag = f'{snap.etag[:-1]}-w{width}"'
        headers = self._headers(snap, etag)
        if header(scope, b"if-none-match") == etag.encode():
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send_bytes(send, 200, body, JPEG, headers)

    async def _no_frame(self, send: Send, message: str) -> None:
        latest = self.edge.cache.latest
        age = round(latest.age_ms(), 1) if latest is not None else None
        await send_error(
            send, "no_frame" if latest is None else "stale", message,
            [(b"retry-after", b"1")],
            stream_status=self.edge.stream_status(), age_ms=age,
        )  # fmt: skip

    # ------------------------------------------------------------------ routes
    async def snapshot(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /api/snapshot[?width=&max_age_ms=&wait_newer_than=]``."""
        params = query(scope)
        width = self._width(scope)
        max_age = int_param(params, "max_age_ms", minimum=0, maximum=MAX_AGE_MS)
        newer_than = int_param(params, "wait_newer_than", minimum=0)
        cache = self.edge.cache
        snap = cache.latest
        if max_age is not None:
            if snap is None or snap.age_ms() > max_age:
                self.edge.source.request_fresh()
                snap = await cache.wait_fresh(max_age, self._cfg.max_wait_ms / 1000.0)
            if snap is None:
                await self._no_frame(send, f"no picture at most {max_age} ms old within"
                                     f" {self._cfg.max_wait_ms} ms")  # fmt: skip
                return
        elif newer_than is not None:
            snap = await cache.wait_newer(newer_than, self._cfg.long_poll_s)
            if snap is None:
                latest = cache.latest
                if latest is None:
                    await self._no_frame(send, "no picture from the camera yet")
                    return
                # Nothing newer within the poll: the client's copy is still the current one.
                headers = self._headers(latest, latest.etag)
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
        if snap is None:
            await self._no_frame(send, "no picture from the camera yet")
            return
        await self._send_picture(scope, send, snap, width)

    async def snapshot_by_seq(self, scope: Scope, receive: Receive, send: Send, seq: int) -> None:
        """``GET /api/snapshots/{seq}[?width=]``: a picture still in the history."""
        width = self._width(scope)
        snap = self.edge.cache.get(seq)
        if snap is None:
            await send_error(send, "not_found", f"snapshot {seq} is not (or no longer) kept")
            return
        await self._send_picture(scope, send, snap, width)

    async def mjpeg(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /api/stream.mjpeg[?fps=&width=]``: multipart JPEG for browsers and VLC."""
        params = query(scope)
        limit = self.edge.config.http.mjpeg_max_fps
        fps = float_param(params, "fps", minimum=0.1, maximum=limit) or limit
        width = self._width(scope)
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type",
                 f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}".encode()),
                (b"cache-control", b"no-cache, no-store"),
                (b"x-accel-buffering", b"no"),
            ],
        })  # fmt: skip
        await until_disconnected(receive, self._mjpeg_parts(send, fps, width), self._closing)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _mjpeg_parts(self, send: Send, fps: float, width: int | None) -> None:
        cache, source = self.edge.cache, self.edge.source
        period = 1.0 / fps
        last_seq = -1
        while True:
            started = time.monotonic()
            # A viewer wants motion, not keyframes (but not enough to heat a hot Pi further).
            source.request_fresh(max(2.0, 2 * period), explicit=False)
            snap = await cache.wait_newer(last_seq, MJPEG_KEEPALIVE_S)
            if snap is None:
                snap = cache.latest
            if snap is not None:
                last_seq = snap.seq
                body = (
                    snap.jpeg if width is None or width >= snap.width
                    else (await cache.variant(snap, width))[0]
                )  # fmt: skip
                head = (
                    f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(body)}\r\n{H_SEQ}: {snap.seq}\r\n\r\n"
                ).encode()
                await send({"type": "http.response.body", "body": head + body + b"\r\n",
                            "more_body": True})  # fmt: skip
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /metrics``: Prometheus text format."""
        self.edge.update_status_metric()
        body = generate_latest(self.edge.metrics.registry)
        await send_bytes(send, 200, body, CONTENT_TYPE_LATEST.encode())
