"""uvicorn's httptools protocol with a deadline for a request's headers (slowloris).

uvicorn 0.55 has no such timeout: ``timeout_keep_alive`` covers only the idle time between
requests and restarts at every byte received (uvicorn issue #157 lists
``--timeout-request-start`` as never done), and ASGI code runs only once the headers are in. So
a client that opens a socket and trickles a header byte now and then holds a connection (and a
file descriptor) for ever. Here a connection has ``header_timeout_s`` from its start (and a
keep-alive connection as much from the first byte of each further request) to finish its
headers, or it is closed. A request's body and its response (event streams, MJPEG) are not
timed.

It also answers a request beyond ``limit_concurrency`` (``http.max_connections``) in the API's
error shape: uvicorn's own 503 is a plain-text ``Service Unavailable``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("edge.api")

_BUSY = json.dumps({
    "error": "unavailable",
    "message": "the edge serves as many connections as it may (http.max_connections); retry",
}).encode()  # fmt: skip


async def _busy(scope: Any, receive: Any, send: Any) -> None:
    """uvicorn's ``service_unavailable`` (beyond ``limit_concurrency``) as a JSON error."""
    await send({
        "type": "http.response.start", "status": 503,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(_BUSY)).encode()),
                    (b"retry-after", b"1"), (b"connection", b"close")],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": _BUSY, "more_body": False})


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """Closes a connection whose request headers are not complete within the deadline."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()  # the next request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        # uvicorn picks its plain-text 503 app here when over limit_concurrency (for a request
        # at once or a pipelined one later): ours instead. test_api_contract covers it.
        if app is service_unavailable:
            app = _busy
        super()._start_asgi_task(cycle, app)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_timer(self) -> None:
        timer, self._header_timer = self._header_timer, None
        if timer is not None:
            timer.cancel()

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.debug(
                "closing a connection from %s: no complete request headers within %g s",
                self.client[0] if self.client else "?", self.header_timeout_s,
            )  # fmt: skip
            self.transport.close()


def header_deadline_protocol(header_timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with this deadline."""
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": header_timeout_s}
    )
