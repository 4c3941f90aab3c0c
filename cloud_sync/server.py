"""``carwash-cloud serve``: the API under uvicorn and the background loops, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator

import uvicorn

from cloud_sync.api import create_app
from cloud_sync.db import migrate
from cloud_sync.errors import UsageError
from cloud_sync.service import Cloud
from fleet_common.signals import termination_signals

log = logging.getLogger("cloud")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port). UsageError otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {text!r} is not HOST:PORT (e.g. 127.0.0.1:8090)")
    return host, int(port)


def bind_socket(listen: str) -> socket.socket:
    """Bind before serving, so ``:0`` yields a known port and a busy port fails early."""
    host, port = parse_listen(listen)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise UsageError(f"cannot listen on {listen}: {err.strerror or err}") from err
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        on_started: Callable[[], None],
        on_shutdown: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Open long-polls answer at once (304: nothing changed), so the graceful wait is not
        # spent on them and none is cancelled in the middle (a traceback in the log).
        self._on_shutdown()
        await super().shutdown(sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT stop the server gracefully and the process with status 0 (see
        :mod:`fleet_common.signals`)."""
        with termination_signals(self._on_signal):
            yield

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        log.info("%s received: shutting down", sig.name)
        self.should_exit = True


async def serve(cloud: Cloud, listen: str) -> None:
    """Check the schema, start the background loops, serve until a termination signal."""
    revision = await asyncio.to_thread(migrate.check_schema, cloud.db)
    sock = bind_socket(listen)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        create_app(cloud), log_config=None, access_log=False, lifespan="off",
        proxy_headers=False, server_header=False, timeout_graceful_shutdown=5,
    )  # fmt: skip

    def on_started() -> None:
        shown = f"[{host}]" if ":" in host else host
        log.info("database %s at schema %s", cloud.db.url, revision)
        log.info("listening on http://%s:%d", shown, port)

    server = _Server(config, on_started, on_shutdown=cloud.config_watch.release)
    await cloud.start()
    try:
        await server.serve(sockets=[sock])
    finally:
        await cloud.stop()
        sock.close()
        cloud.db.dispose()
