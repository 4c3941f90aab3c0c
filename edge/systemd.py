"""systemd integration without libsystemd: the ``sd_notify`` protocol and the service watchdog.

systemd passes the address of its notification socket in ``$NOTIFY_SOCKET`` (a path, or an
abstract name starting with ``@``); a service reports by sending newline-separated ``KEY=value``
datagrams there (``READY=1``, ``STATUS=...``, ``STOPPING=1``, ``WATCHDOG=1``). ``$WATCHDOG_USEC``
is the watchdog timeout; when ``$WATCHDOG_PID`` is set, the watchdog is meant for that process
only. Off systemd ``$NOTIFY_SOCKET`` is unset and every method here does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger("edge.systemd")


class SystemdNotifier:
    """Sends service state to systemd. Build with :meth:`from_env`; never raises when sending."""

    def __init__(self, address: bytes | None, watchdog_usec: int | None = None) -> None:
        """``address`` is the socket address (abstract names start with a NUL byte)."""
        self._address = address
        self._watchdog_usec = watchdog_usec if address is not None else None
        self._warned = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SystemdNotifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``; a no-op off systemd."""
        raw = environ.get("NOTIFY_SOCKET", "")
        if not raw:
            return cls(None)
        if raw.startswith("@"):
            address = b"\0" + os.fsencode(raw[1:])
        elif raw.startswith("/"):
            address = os.fsencode(raw)
        else:  # e.g. "vsock:..." (systemd 254+ in VMs): not needed on a Pi
            log.warning("NOTIFY_SOCKET=%r is not a unix socket: not notifying systemd", raw)
            return cls(None)
        return cls(address, _watchdog_usec(environ))

    @property
    def enabled(self) -> bool:
        """Whether systemd is listening (``NOTIFY_SOCKET`` was set and usable)."""
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """systemd's watchdog timeout in seconds (``WatchdogSec=``), None without a watchdog."""
        return self._watchdog_usec / 1e6 if self._watchdog_usec is not None else None

    def ready(self, status: str) -> None:
        """Startup is complete: systemd considers the service started (``Type=notify``)."""
        self._send(f"READY=1\nSTATUS={_one_line(status)}")

    def stopping(self) -> None:
        """Shutdown has begun (a termination signal was received)."""
        self._send("STOPPING=1\nSTATUS=stopping")

    def status(self, text: str) -> None:
        """A free-form status line, shown by ``systemctl status``."""
        self._send(f"STATUS={_one_line(text)}")

    def watchdog_ping(self) -> None:
        """Tell the watchdog we are alive; nothing is sent when there is no watchdog."""
        if self._watchdog_usec is not None:
            self._send("WATCHDOG=1")

    async def run_watchdog(self, healthy: Callable[[], bool]) -> None:
        """Ping every half watchdog interval while ``healthy()``; runs until cancelled.

        The pings are sent from the event loop itself: a blocked loop sends none, so systemd
        kills and restarts a process whose loop is stuck. Returns at once without a watchdog.
        """
        interval = self.watchdog_interval_s
        if interval is None:
            return
        period = interval / 2
        while True:
            if self._is_healthy(healthy):
                self.watchdog_ping()
            await asyncio.sleep(period)

    def _is_healthy(self, healthy: Callable[[], bool]) -> bool:
        try:
            return healthy()
        except Exception:
            # A broken health check must not end the watchdog task silently: no ping instead.
            log.warning("watchdog health check failed; not pinging", exc_info=True)
            return False

    def _send(self, message: str) -> None:
        """One datagram, sent synchronously: to a local socket it never blocks for long."""
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto(message.encode(), self._address)
        except OSError as err:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd (%s); further failures logged at debug", err)
            else:
                log.debug("cannot notify systemd: %s", err)


def _watchdog_usec(environ: Mapping[str, str]) -> int | None:
    """``WATCHDOG_USEC`` when it is meant for this process, else None."""
    raw_usec = environ.get("WATCHDOG_USEC", "")
    if not raw_usec:
        return None
    raw_pid = environ.get("WATCHDOG_PID", "")
    if raw_pid and raw_pid != str(os.getpid()):
        log.debug("WATCHDOG_PID=%s is not this process (%d): no watchdog", raw_pid, os.getpid())
        return None
    if not raw_usec.isdigit() or int(raw_usec) == 0:
        log.warning("WATCHDOG_USEC=%r is not a positive integer: no watchdog", raw_usec)
        return None
    return int(raw_usec)


def _one_line(text: str) -> str:
    """A newline would start a new ``KEY=value`` assignment in the datagram."""
    return " ".join(text.splitlines())
