"""A TCP proxy in front of a real server that fails on demand, for outage tests.

Modes (a change closes every open connection, so keep-alive cannot bypass it):

- ``pass``: bytes both ways;
- ``down``: not listening (connection refused, as with a stopped server);
- ``error``: reads the request and answers ``500`` itself;
- ``hang``: accepts and reads, never answers;
- ``drop_responses``: forwards requests, throws the answers away (the server acts; the client
  never hears it: a crash between the server's commit and the client's acknowledgement).

Lives on the test's event loop (``async with FaultProxy(...)``). ``requests`` counts requests
by mode (first bytes of each connection).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from types import TracebackType
from typing import Literal, Self

Mode = Literal["pass", "down", "error", "hang", "drop_responses"]
_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
    b"content-length: 44\r\nconnection: close\r\n\r\n"
    b'{"error":"internal","message":"proxy fault"}'
)


class FaultProxy:
    def __init__(self, target_port: int, mode: Mode = "pass") -> None:
        self.target_port = target_port
        self.mode: Mode = mode
        self.port = 0
        self.requests: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        await self._listen()
        if self.mode == "down":
            await self._close_listener()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close_listener()
        await self._drop_connections()

    async def set_mode(self, mode: Mode) -> None:
        await self._drop_connections()
        if mode == "down":
            await self._close_listener()
        elif self._server is None:
            await self._listen()
        self.mode = mode

    async def _listen(self) -> None:
        # The same port each time (SO_REUSEADDR), as a server restarted in place.
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _drop_connections(self) -> None:
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        first = await reader.read(65536)
        if not first:
            return
        self.requests[mode] += 1
        if mode == "error":
            writer.write(_500)
            await writer.drain()
            return
        if mode == "hang":
            await asyncio.Event().wait()  # until the test changes mode (cancelled)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        try:
            up_writer.write(first)
            await up_writer.drain()
            await asyncio.gather(
                _pipe(reader, up_writer),
                _pipe(up_reader, writer, drop=mode == "drop_responses"),
            )
        finally:
            up_writer.close()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, drop: bool = False) -> None:
    while data := await src.read(65536):
        if not drop:
            dst.write(data)
            await dst.drain()
    if not drop:
        with contextlib.suppress(OSError):
            dst.write_eof()
