"""``carwash-edge run``: the edge and its HTTP server in one asyncio loop, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn

from edge.api import create_app
from edge.config import EdgeConfig, parse_listen
from edge.discovery import Advertiser, advertise_interfaces, device_id
from edge.service import Edge
from edge.systemd import SystemdNotifier
from fleet_common.version import VERSION

log = logging.getLogger("edge")


def bind_socket(listen: str) -> socket.socket:
    """Bind before serving, so ``:0`` yields a known port and a busy port fails early."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, telling when it listens (readiness) and when it starts to stop."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_started: Callable[[], None],
        on_stopping: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._on_stopping = on_stopping

    def serving(self) -> bool:
        """Listening and not shutting down: what the systemd watchdog vouches for."""
        return (
            self.started
            and not self.should_exit
            and all(server.is_serving() for server in self.servers)
        )

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT end the server gracefully and the process with status 0.

        uvicorn's own handling re-raises the signal after shutting down, which would end the
        process "killed by SIGTERM" — wrong for a service that stopped cleanly as asked.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C skips the graceful wait
        log.info("%s received: shutting down", sig.name)
        if not self.should_exit:
            self._on_stopping()
        self.should_exit = True


async def serve(config: EdgeConfig) -> None:
    """Run until cancelled or a termination signal; stops the camera threads on the way out."""
    edge = Edge.create(config)
    app = create_app(edge)
    sock = bind_socket(config.http.listen)
    host, port = sock.getsockname()[:2]
    notifier = SystemdNotifier.from_env()
    advertiser = _advertiser(config, host, port)
    advertising: set[asyncio.Task[None]] = set()

    def on_started() -> None:
        # Tests and scripts read this line to learn an ephemeral port.
        log.info("listening on http://%s:%d", host, port)
        notifier.ready(f"serving http://{host}:{port}, camera {edge.source.safe_url}")
        if advertiser is not None:  # probing takes a second or so: not in readiness's way
            task = asyncio.get_running_loop().create_task(advertiser.start())
            advertising.add(task)
            task.add_done_callback(advertising.discard)

    server = _Server(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            http="httptools",
            # Not behind a proxy: X-Forwarded-For from a client must not pick its rate-limit
            # bucket; and the middleware would cost every request a few microseconds.
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=2,
        ),
        on_started=on_started,
        on_stopping=notifier.stopping,
    )
    edge.start()
    # Everything built so far (app, routes, models) lives as long as the process: keep it out
    # of the collector's scans, which otherwise show up as latency spikes on the hot path.
    gc.freeze()
    # Pings only while the HTTP server serves, from this loop: a stuck loop gets restarted. The
    # stream's state does not count: a dead camera is reconnected to, not a reason to restart.
    watchdog = asyncio.create_task(notifier.run_watchdog(server.serving), name="systemd-watchdog")
    try:
        await server.serve(sockets=[sock])
    finally:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        if advertiser is not None:
            await advertiser.stop()  # goodbye packets: consoles drop this edge at once
        await asyncio.to_thread(edge.stop)
        sock.close()


def _advertiser(config: EdgeConfig, host: str, port: int) -> Advertiser | None:
    """The zeroconf advertisement of the bound address, or None when discovery is off."""
    if not config.discovery.enabled:
        return None
    try:
        dev_id = device_id(config.resolved_data_dir())
    except OSError as err:
        log.warning("not advertising on the LAN: cannot keep a device id: %s", err)
        return None
    return Advertiser(
        dev_id,
        config.name,
        config.site,
        VERSION,
        port,
        host,
        advertise_interfaces(host, config.discovery.interfaces),
        caps=("snapshot",),
        cfg_version=1,  # the config store (and its version) arrives later
    )


def run(config: EdgeConfig) -> None:
    """Blocking entry point: uvloop when available (it is on Linux with the edge extra)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows developer machines
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
