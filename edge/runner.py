"""``carwash-edge run``: the edge and its HTTP server in one asyncio loop, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Callable, Collection, Coroutine, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from edge.api import create_app
from edge.api.http_protocol import header_deadline_protocol
from edge.config import LIVE_CONFIG_FILENAME, EdgeConfig, HttpConfig, listen_url, parse_listen
from edge.discovery import Advertiser, advertise_interfaces, device_id
from edge.guards import (
    DiskGuard,
    GuardMetrics,
    MemoryGuard,
    TemperatureGuard,
    run_guards,
    tune_allocator,
)
from edge.live_config import ConfigManager
from edge.service import Edge
from edge.sync.wiring import start_sync
from edge.systemd import SystemdNotifier
from fleet_common.cli import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK
from fleet_common.signals import termination_signals
from fleet_common.version import VERSION
from fleet_common.wire.events import TOPIC_EVENTS, Severity, alert

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
        on_shutdown: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._on_stopping = on_stopping
        self._on_shutdown = on_shutdown
        self.interrupted = False  # the first stop signal was SIGINT (Ctrl-C): exit 130

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

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Endless responses (event streams) end first, so the graceful wait is not spent on them.
        self._on_shutdown()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT end the server gracefully; the process exits 0 (SIGTERM) or 130
        (SIGINT, as after a Ctrl-C anywhere else). See :mod:`fleet_common.signals`."""
        with termination_signals(self._on_signal):
            yield

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C skips the graceful wait
        log.info("%s received: shutting down", sig.name)
        if not self.should_exit:
            self._on_stopping()
            self.interrupted = sig == signal.SIGINT
        self.should_exit = True


async def serve(
    config: EdgeConfig, config_path: Path | None = None, flag_keys: Collection[str] = ()
) -> int:
    """Run until cancelled, a termination signal or a guard gives up; stops the camera threads.

    ``config_path``: the file the config API rewrites (default ``DATA_DIR/edge.toml``);
    ``flag_keys``: dotted keys set by command-line flags (not written into that file).

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
        log.info("listening on %s", listen_url(host, port))
        notifier.ready(f"serving {listen_url(host, port)}, camera {edge.source.safe_url}")
        if advertiser is not None:  # probing takes a second or so: not in readiness's way
            task = asyncio.get_running_loop().create_task(advertiser.start())
            advertising.add(task)
            task.add_done_callback(advertising.discard)

    def end_streams() -> None:  # endless responses end before the graceful wait, not after
        edge.events.end_subscriptions()
        app.end_streams()

    server = _Server(
        uvicorn_config(app, http=config.http),
        on_started=on_started,
        on_stopping=notifier.stopping,
        on_shutdown=end_streams,
    )
    gave_up: list[str] = []

    def on_guard_exit(reason: str) -> None:
        log.error("exiting for a restart: %s", reason)  # the one line that says why
        gave_up.append(reason)
        notifier.stopping()
        server.should_exit = True

    await edge.start_async()  # opens the store (in a worker thread), starts the stream watch

    # Everything built so far (app, routes, models) lives as long as the process: keep it out
    # of the collector's scans, which otherwise show up as latency spikes on the hot path.
    gc.freeze()
    # Pings only while the HTTP server serves, from this loop: a stuck loop gets restarted. The
    # stream's state does not count: a dead camera is reconnected to, not a reason to restart.
    watchdog = asyncio.create_task(notifier.run_watchdog(server.serving), name="systemd-watchdog")
    guards = asyncio.create_task(_run_guards(edge, on_guard_exit), name="resource-guards")

    # Live config: the config API's manager, and the components it may restart.
    async def on_config_applied(version: int, cfg: EdgeConfig) -> None:
        if advertiser is not None:  # TXT cfg follows the version (a rename re-registers)
            task = asyncio.get_running_loop().create_task(
                advertiser.update(
                    cfg_version=version, name=cfg.name, site=cfg.site, caps=advertised_caps(cfg)
                )
            )
            advertising.add(task)
            task.add_done_callback(advertising.discard)

    async def restart_guards() -> None:
        nonlocal guards
        guards.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await guards
        guards = asyncio.create_task(_run_guards(edge, on_guard_exit), name="resource-guards")

    async def restart_discovery() -> None:
        nonlocal advertiser
        if advertiser is not None:
            await advertiser.stop()
        live_version = edge.live.version if edge.live is not None else 0
        advertiser = _advertiser(edge.config, host, port, live_version)
        if advertiser is not None:
            task = asyncio.get_running_loop().create_task(advertiser.start())
            advertising.add(task)
            task.add_done_callback(advertising.discard)

    edge.restarters.update(guards=restart_guards, discovery=restart_discovery)
    if edge.store is not None:
        edge.live = ConfigManager(
            edge, edge.store, emit=edge.events.emit, on_applied=on_config_applied,
            path=config_path or edge.config.resolved_data_dir() / LIVE_CONFIG_FILENAME,
            flag_keys=flag_keys,
        )  # fmt: skip
        await edge.live.start()
        if advertiser is not None:
            advertiser.cfg_version = edge.live.version
    else:
        log.warning("the config API is unavailable: no store to keep versions in")
    edge.sync = await start_sync(edge, edge.live)  # None unless enrolled (carwash-edge enroll)
    try:
        await server.serve(sockets=[sock])
    finally:
        for task in (watchdog, guards):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if edge.sync is not None:
            await edge.sync.stop()  # before the store closes: no push is cut in half
        if advertiser is not None:
            await advertiser.stop()  # goodbye packets: consoles drop this edge at once
        if edge.live is not None:
            await edge.live.stop()
        await edge.stop_async()  # pending events written, store closed
        sock.close()
    if gave_up:
        return EXIT_FAILURE
    return EXIT_INTERRUPTED if server.interrupted else EXIT_OK


_GUARD_ALERTS: dict[tuple[str, str], tuple[str, Severity, bool, str]] = {
    # (guard, action): (alert code, severity, active, message)
    ("memory", "drop_caches"): ("memory", "warning", True, "memory high: caches dropped"),
    ("memory", "recovered"): ("memory", "warning", False, "memory back to normal"),
    ("memory", "exit"): ("memory", "critical", True, "memory still high: restarting"),
    ("temperature", "hot"): ("hot", "warning", True, "hot: decoding less"),
    ("temperature", "cool"): ("hot", "warning", False, "cool again: decoding as usual"),
    ("disk", "low"): ("disk", "critical", True, "disk almost full: store pruned hard"),
    ("disk", "ok"): ("disk", "critical", False, "disk space back: store caps restored"),
}


def _run_guards(edge: Edge, on_exit: Callable[[str], None]) -> Coroutine[Any, Any, None]:
    """The memory, temperature and disk guards of ``edge``, as a coroutine for one task.

    Each guard action is an ``alert`` event (also sent to the cloud through the outbox).
    """
    cfg, metrics = edge.config.guards, edge.metrics
    data_dir = edge.config.resolved_data_dir()
    # A (re)started disk guard starts from "fine": if the disk is still low it cuts again.
    edge.restore_store()

    def on_action(guard: str, action: str, detail: str) -> None:
        known = _GUARD_ALERTS.get((guard, action))
        if known is not None:
            code, severity, active, message = known
            edge.events.publish_soon(
                alert(code, severity, active, f"{message} ({detail})"), TOPIC_EVENTS
            )

    def drop_caches() -> None:
        freed = edge.cache.trim()
        log.warning("memory guard: snapshot cache trimmed to the newest picture (%d KiB freed)",
                    freed >> 10)  # fmt: skip

    def on_hot_change(hot: bool) -> None:
        edge.source.hot = hot

    return run_guards(
        MemoryGuard(cfg.rss_limit_mb * 1024 * 1024, drop_caches, on_exit),
        TemperatureGuard(cfg.hot_c, cfg.cool_c),
        GuardMetrics(
            metrics.guard_actions, metrics.rss_bytes, metrics.temperature, metrics.disk_free_bytes
        ),
        on_hot_change=on_hot_change,
        on_action=on_action,
        disk=DiskGuard(
            cfg.disk_min_free_mb * 1024 * 1024,
            on_low=lambda _free: edge.shrink_store(cfg.disk_low_keep_fraction),
            on_ok=lambda _free: edge.restore_store(),
        ),
        disk_path=data_dir,
        interval_s=cfg.check_interval_s,
        thermal_path=cfg.thermal_path,
    )


def uvicorn_config(
    app: ASGIApp, graceful_shutdown_s: int = 2, http: HttpConfig | None = None
) -> uvicorn.Config:
    """How the edge's API is served (also by tests that serve an in-process edge).

    ``http``: the limits (default: the config's defaults). uvicorn has no timeout for a
    request's headers (its keep-alive timer restarts at every byte received), so the protocol
    is :func:`edge.api.http_protocol.header_deadline_protocol`; ``limit_concurrency`` caps the
    connections and requests served at once (503 beyond).
    """
    http = http if http is not None else HttpConfig()
    return uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        http=header_deadline_protocol(http.header_timeout_s),
        limit_concurrency=http.max_connections,
        # Not behind a proxy: X-Forwarded-For from a client must not pick its rate-limit
        # bucket; and the middleware would cost every request a few microseconds.
        proxy_headers=False,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=graceful_shutdown_s,
    )


def advertised_caps(config: EdgeConfig) -> tuple[str, ...]:
    """The TXT ``caps``: what a console may ask this edge for."""
    caps = ["snapshot"]
    if config.plates.effective_policy() != "none":
        caps.append("plates")
    if config.locks.enabled:
        caps.append("carts")
    return tuple(caps)


def _advertiser(
    config: EdgeConfig, host: str, port: int, cfg_version: int = 0
) -> Advertiser | None:
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
        caps=advertised_caps(config),
        cfg_version=cfg_version,  # the config version; updated by the config API
    )


def run(
    config: EdgeConfig, config_path: Path | None = None, flag_keys: Collection[str] = ()
) -> int:
    """Blocking entry point: uvloop when available (it is on Linux with the edge extra)."""
    tune_allocator()  # before any thread allocates: see bench/README.md, bench/memory
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows developer machines
        return asyncio.run(serve(config, config_path, flag_keys))
    return uvloop.run(serve(config, config_path, flag_keys))
