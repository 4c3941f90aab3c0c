"""Serve an in-process :class:`edge.service.Edge` over real HTTP on 127.0.0.1 and an ephemeral port.

The server runs as a task of the calling loop (in GUI tests: the qasync loop), exactly like
``carwash-edge run`` does (edge/runner.py): same app factory, same uvicorn settings, a socket
bound before serving so the port is known at once::

    async with serve_edge(edge) as server:
        client = EdgeClient(server.url, key)
        ...
        await server.stop()      # the edge becomes unreachable (e.g. an "offline" test)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import uvicorn

from edge.api import create_app
from edge.runner import bind_socket, uvicorn_config
from edge.service import Edge


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers (a test's Ctrl-C still reaches pytest),
    telling when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


@dataclass
class EdgeServer:
    """A running uvicorn server for one edge; :attr:`url` is ``http://127.0.0.1:PORT``."""

    edge: Edge
    server: _Server
    sock: socket.socket
    task: asyncio.Task[None]
    url: str
    _stopped: bool = field(default=False, init=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    async def stop(self) -> None:
        """Stop serving (connections refused from now on); the camera keeps running."""
        if self._stopped:
            return
        self._stopped = True
        self.server.should_exit = True
        self.server.force_exit = True  # long-polls and SSE streams are not waited for
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.sock.close()


async def start_edge_server(edge: Edge, listen: str = "127.0.0.1:0") -> EdgeServer:
    sock = bind_socket(listen)
    host, port = sock.getsockname()[:2]
    config = uvicorn_config(create_app(edge), graceful_shutdown_s=1, http=edge.config.http)
    server = _Server(config)
    task = asyncio.get_running_loop().create_task(
        server.serve(sockets=[sock]), name=f"edge-server-{port}"
    )
    listening = asyncio.ensure_future(server.listening.wait())
    await asyncio.wait({task, listening}, timeout=10.0, return_when=asyncio.FIRST_COMPLETED)
    listening.cancel()
    if not server.started:
        server.should_exit = True
        sock.close()
        if task.done():
            task.result()  # raises what made it fail
        raise RuntimeError(f"edge server on {host}:{port} did not start")
    return EdgeServer(edge, server, sock, task, f"http://{host}:{port}")


@contextlib.asynccontextmanager
async def serve_edge(edge: Edge, listen: str = "127.0.0.1:0") -> AsyncIterator[EdgeServer]:
    """Serve ``edge`` until the block ends (the caller starts and stops the edge itself)."""
    running = await start_edge_server(edge, listen)
    try:
        yield running
    finally:
        await running.stop()
