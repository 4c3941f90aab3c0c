"""Advertise this edge on the LAN with zeroconf (mDNS/DNS-SD), so consoles find it unconfigured.

One service of type ``_carwash._tcp.local.`` per edge, named ``"{name} ({id[:8]})"`` so two bays
with the same name stay distinct, with lowercase TXT keys: ``id``, ``name``, ``site``,
``role=edge``, ``ver``, ``api=/api``, ``caps`` and ``cfg`` (the config version). Multicast goes
only to the interfaces chosen by :func:`advertise_interfaces`: where the API listens, unless the
configuration names interfaces. Discovery is a convenience: any failure is logged once and the
edge carries on (consoles fall back to manual URLs).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import uuid
from collections.abc import Coroutine, Sequence
from pathlib import Path

import ifaddr
from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from fleet_common.files import atomic_write_text

log = logging.getLogger("edge.discovery")

SERVICE_TYPE = "_carwash._tcp.local."
_WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 - compared with, never bound
_INSTANCE_MAX_BYTES = 63  # RFC 6763 §4.1.1
_STOP_TIMEOUT_S = 2.0


def device_id(data_dir: Path) -> str:
    """This device's stable id: a uuid4 kept in ``data_dir/device_id``, made on first use.

    A missing file is created atomically; an unreadable or corrupt one is replaced (warning).
    """
    path = data_dir / "device_id"
    try:
        return str(uuid.UUID(path.read_text(encoding="utf-8").strip()))
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError, ValueError) as err:
        log.warning("device id file %s is unusable (%s): making a new id", path, err)
    new_id = str(uuid.uuid4())
    atomic_write_text(path, new_id + "\n", mode=0o644)
    log.info("new device id %s written to %s", new_id, path)
    return new_id


def advertise_interfaces(listen_host: str, configured: list[str] | None) -> list[str] | None:
    """Addresses to advertise on: the configured ones, else the listen address unless it is a
    wildcard (``0.0.0.0``, ``::``), where ``None`` means every interface."""
    if configured is not None:
        return list(configured)
    host = listen_host.strip("[]")
    return None if host in _WILDCARDS else [host]


def instance_name(name: str, dev_id: str) -> str:
    """``"{name} ({id[:8]})._carwash._tcp.local."``, the name cut to fit DNS-SD's 63 bytes."""
    suffix = f" ({dev_id[:8]})"
    clean = "".join(ch for ch in name if ch.isprintable()).strip() or "edge"
    room = _INSTANCE_MAX_BYTES - len(suffix.encode())
    clean = clean.encode()[:room].decode(errors="ignore").rstrip()
    return f"{clean}{suffix}.{SERVICE_TYPE}"


def _host_addresses(want_v6: bool) -> list[str]:
    """Usable addresses of this host's interfaces (no loopback or link-local unless alone)."""
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            if isinstance(ip.ip, tuple) and not want_v6:
                continue
            found.append(text)
    usable = [a for a in found if not _is_local_only(a)]
    return usable or found


def _is_local_only(address: str) -> bool:
    parsed = ipaddress.ip_address(address.split("%")[0])
    return parsed.is_loopback or parsed.is_link_local


def no_multicast(address: str) -> bool:
    """An address mDNS cannot be sent from: IPv6 loopback (``::1``) has no multicast route, so
    every send fails (``ENETUNREACH``) and zeroconf would log a stray OSError."""
    try:
        parsed = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return parsed.version == 6 and parsed.is_loopback


class Advertiser:
    """The edge's zeroconf service: :meth:`start`, :meth:`update`, :meth:`stop` on the loop."""

    def __init__(
        self,
        dev_id: str,
        name: str,
        site: str,
        version: str,
        port: int,
        listen_host: str,
        interfaces: list[str] | None,
        caps: Sequence[str] = ("snapshot",),
        cfg_version: int = 1,
    ) -> None:
        self.dev_id = dev_id
        self.name = name
        self.site = site
        self.version = version
        self.port = port
        self.listen_host = listen_host.strip("[]")
        self.interfaces = interfaces
        self.caps = tuple(caps)
        self.cfg_version = cfg_version
        self.info: AsyncServiceInfo | None = None
        self._zc: AsyncZeroconf | None = None
        self._lock = asyncio.Lock()
        self._busy: asyncio.Future[None] | None = None
        self._stopping = False
        self._failed = False

    # ------------------------------------------------------------------ records
    def properties(self) -> dict[str, str]:
        """The TXT record: lowercase keys, text values."""
        return {
            "id": self.dev_id, "name": self.name, "site": self.site, "role": "edge",
            "ver": self.version, "api": "/api", "caps": ",".join(self.caps),
            "cfg": str(self.cfg_version),
        }  # fmt: skip

    def addresses(self) -> list[str]:
        """Addresses to put in the A/AAAA records: never a wildcard."""
        if self.listen_host not in _WILDCARDS:
            return [self.listen_host]
        v6 = self.listen_host == "::"
        if self.interfaces is not None:
            return [a for a in self.interfaces if v6 or ":" not in a]
        return _host_addresses(want_v6=v6)

    def _service_info(self) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            SERVICE_TYPE,
            instance_name(self.name, self.dev_id),
            port=self.port,
            properties=self.properties(),
            server=f"carwash-{self.dev_id[:8]}.local.",
            parsed_addresses=self.addresses(),
        )

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Register and announce the service (about 1.5 s). Failures are logged, not raised."""
        await self._run(self._start())

    async def update(
        self,
        cfg_version: int | None = None,
        name: str | None = None,
        site: str | None = None,
        caps: Sequence[str] | None = None,
    ) -> None:
        """Change the advertised config version, name, site or capabilities (a new name
        re-registers)."""
        renamed = name is not None and name != self.name
        self.cfg_version = self.cfg_version if cfg_version is None else cfg_version
        self.caps = self.caps if caps is None else tuple(caps)
        self.name = self.name if name is None else name
        self.site = self.site if site is None else site
        await self._run(self._update(renamed))

    async def stop(self) -> None:
        """Say goodbye on the network and close the sockets. Safe at any time, and twice.

        A start or update still probing is cancelled rather than waited for.
        """
        self._stopping = True
        if self._busy is not None:
            self._busy.cancel()
        async with self._lock:
            zc, info, self._zc, self.info = self._zc, self.info, None, None
            if zc is None:
                return
            try:
                async with asyncio.timeout(_STOP_TIMEOUT_S):
                    if info is not None:
                        await (await zc.async_unregister_service(info))
                    await zc.async_close()
            except Exception as err:
                log.debug("zeroconf did not close cleanly: %r", err)
            log.log(logging.INFO if info else logging.DEBUG, "stopped advertising on the LAN")

    async def _run(self, op: Coroutine[None, None, None]) -> None:
        """Run one operation at a time, as a task :meth:`stop` can cancel."""
        async with self._lock:
            if self._stopping or self._failed:
                op.close()
                return
            task = asyncio.ensure_future(op)
            self._busy = task
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                raise
            finally:
                self._busy = None
            if not task.cancelled() and (err := task.exception()) is not None:
                await self._fail(err)

    async def _start(self) -> None:
        if self._zc is not None:
            return
        if self.interfaces is not None:
            skipped = [a for a in self.interfaces if no_multicast(a)]
            if skipped:
                log.warning(
                    "zeroconf advertising skipped on %s: no multicast there (IPv6 loopback);"
                    " consoles need this edge's URL", ", ".join(skipped),
                )  # fmt: skip
                self.interfaces = [a for a in self.interfaces if a not in skipped]
                if not self.interfaces or no_multicast(self.listen_host):
                    self._failed = True  # nothing left to advertise on: stay quiet from now
                    return
        if self.interfaces is None:
            v6 = self.listen_host == "::"
            self._zc = AsyncZeroconf(
                interfaces=InterfaceChoice.All, ip_version=IPVersion.All if v6 else IPVersion.V4Only
            )
        else:  # the IP version follows the addresses listed (v4, v6 or both)
            self._zc = AsyncZeroconf(interfaces=self.interfaces)
        await self._zc.zeroconf.async_wait_for_start()
        if not self._zc.zeroconf.engine.senders:
            raise OSError(f"no interface can send multicast (interfaces: {self.interfaces})")
        info = self._service_info()
        announced = await self._zc.async_register_service(info, allow_name_change=True)
        self.info = info
        await announced
        log.info(
            "advertising %r on %s: %s port %d",
            info.name, self.interfaces or "all interfaces", ", ".join(self.addresses()), self.port,
        )  # fmt: skip

    async def _update(self, renamed: bool) -> None:
        if self._zc is None or self.info is None:
            return  # not started: start() will use the new values
        info = self._service_info()
        if renamed:
            await (await self._zc.async_unregister_service(self.info))
            self.info = None
            announced = await self._zc.async_register_service(info, allow_name_change=True)
        else:
            info.name = self.info.name  # keep a name changed to resolve a conflict
            announced = await self._zc.async_update_service(info)
        self.info = info
        await announced

    async def _fail(self, err: BaseException) -> None:
        """Log once at warning, close what was opened, stay quiet from then on."""
        self._failed = True
        log.warning(
            "cannot advertise on the LAN (%s: %s); consoles need the URL", type(err).__name__, err
        )
        zc, self._zc, self.info = self._zc, None, None
        if zc is not None:
            try:
                async with asyncio.timeout(_STOP_TIMEOUT_S):
                    await zc.async_close()
            except Exception as close_err:
                log.debug("zeroconf did not close cleanly: %r", close_err)
