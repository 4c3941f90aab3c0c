"""``carwash-edge run``: the edge and its HTTP server in one asyncio loop, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvicorn

from edge.api import create_app
from edge.config import EdgeConfig, parse_listen
from edge.discovery import Advertiser, advertise_interfaces, device_id
from edge.guards import GuardMetrics, MemoryGuard, TemperatureGuard, run_guards
from edge.service import Edge
from edge.systemd import SystemdNotifier
from fleet_common.cli import EXIT_FAILURE, EXIT_OK
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


async def serve(config: EdgeConfig) -> int:
    """Run until cancelled, a termination signal or a guard gives up; stops the camera threads.

    Returns the exit status: non-zero when the memory guard gave up, so systemd restarts us.
    """
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
    gave_up: list[str] = []

    def on_guard_exit(reason: str) -> None:
        log.error("exiting for a restart: %s", reason)  # the one line that says why
        gave_up.append(reason)
        notifier.stopping()
        server.should_exit = True

    edge.start()
    # Everything built so far (app, routes, models) lives as long as the process: keep it out
    # of the collector's scans, which otherwise show up as latency spikes on the hot path.
    gc.freeze()
    # Pings only while the HTTP server serves, from this loop: a stuck loop gets restarted. The
    # stream's state does not count: a dead camera is reconnected to, not a reason to restart.
    watchdog = asyncio.create_task(notifier.run_watchdog(server.serving), name="systemd-watchdog")
    guards = asyncio.create_task(_run_guards(edge, on_guard_exit), name="resource-guards")
    try:
        await server.serve(sockets=[sock])
    finally:
        for task in (watchdog, guards):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if advertiser is not None:
            await advertiser.stop()  # goodbye packets: consoles drop this edge at once
        await asyncio.to_thread(edge.stop)
        sock.close()
    return EXIT_FAILURE if gave_up else EXIT_OK


def _run_guards(edge: Edge, on_exit: Callable[[str], None]) -> Coroutine[Any, Any, None]:
    """The memory and temperature guards of ``edge``, as a coroutine for one task."""
    cfg, metrics = edge.config.guards, edge.metrics

    def drop_caches() -> None:
        freed = edge.cache.trim()
        log.warning("memory guard: snapshot cache trimmed to the newest picture (%d KiB freed)",
                    freed >> 10)  # fmt: skip

    def on_hot_change(hot: bool) -> None:
        edge.source.hot = hot

    return run_guards(
        MemoryGuard(cfg.rss_limit_mb * 1024 * 1024, drop_caches, on_exit),
        TemperatureGuard(cfg.hot_c, cfg.cool_c),
        GuardMetrics(metrics.guard_actions, metrics.rss_bytes, metrics.temperature),
        on_hot_change=on_hot_change,
        interval_s=cfg.check_interval_s,
        thermal_path=cfg.thermal_path,
    )


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


def run(config: EdgeConfig) -> int:
    """Blocking entry point: uvloop when available (it is on Linux with the edge extra)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows developer machines
        return asyncio.run(serve(config))
    return uvloop.run(serve(config))
