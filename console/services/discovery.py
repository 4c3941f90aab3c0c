"""Which edges exist and whether they answer: zeroconf on the LAN plus manually added URLs.

:class:`DeviceDirectory` merges two sources into one :class:`Device` per edge, keyed by the
edge's stable device id:

- **zeroconf**: an ``AsyncServiceBrowser`` for ``_carwash._tcp.local.`` on the given interfaces
  (``None`` = every interface; tests pin ``["127.0.0.1"]``). A service that goes away keeps its
  device, shown offline. The TXT record (``id name site role ver api caps cfg``, see
  :mod:`edge.discovery`) gives name, site, version, capabilities and config version.
- **manual URLs** (where multicast is blocked): probed with ``GET /api/health`` (no key needed)
  every ``probe_interval_s``; the health body gives name, site and ``id``. Until the first
  answer with an id, the device is keyed by its URL; then it moves to its id (``on_removed``
  for the URL key, ``on_change`` for the id) and stays there, online or not.

The same edge seen both ways is one device. Everything runs on the asyncio loop that called
:meth:`DeviceDirectory.start` (zeroconf included: no thread of our own), and so do the
callbacks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from console.services.device import Device, Source
from console.services.edge_client import KEEPALIVE_EXPIRY_S, STALE_CONNECTION_ERRORS
from fleet_common.logs import QuietLogger

__all__ = ["SERVICE_TYPE", "Device", "DeviceDirectory", "Source", "normalize_url"]

log = logging.getLogger("console.discovery")

SERVICE_TYPE = "_carwash._tcp.local."  # edge.discovery.SERVICE_TYPE (that module is edge-only)
_RESOLVE_TIMEOUT_MS = 3000
_PROBE_TIMEOUT_MAX_S = 3.0


def normalize_url(url: str) -> str:
    """``host:port`` → ``http://host:port``; no trailing slash; scheme and host lower-cased."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


@dataclass(slots=True)
class _Advert:
    """One zeroconf service, as last resolved."""

    url: str
    txt: dict[str, str]
    online: bool = True

    @property
    def key(self) -> str:
        return self.txt.get("id") or self.url


@dataclass(slots=True)
class _Manual:
    """One manual URL and what its last health probes said (kept while offline)."""

    url: str
    probed: bool = False
    online: bool = False
    id: str | None = None
    name: str = ""
    site: str = ""
    version: str = ""
    quiet: QuietLogger = field(default_factory=lambda: QuietLogger(log))


class DeviceDirectory:
    """Every known edge, online or not; see the module docstring."""

    def __init__(
        self,
        *,
        interfaces: Sequence[str] | None,
        browse: bool = True,
        manual_urls: Sequence[str] = (),
        probe_interval_s: float = 5.0,
        on_change: Callable[[Device], None] | None = None,
        on_removed: Callable[[str], None] | None = None,
    ) -> None:
        self.interfaces = list(interfaces) if interfaces is not None else None
        self.browse = browse
        self.probe_interval_s = probe_interval_s
        self.on_change = on_change
        self.on_removed = on_removed
        self._adverts: dict[str, _Advert] = {}  # by service name
        self._manual: dict[str, _Manual] = {
            normalize_url(u): _Manual(normalize_url(u)) for u in manual_urls
        }
        self._devices: dict[str, Device] = {}
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._resolving: dict[str, asyncio.Task[None]] = {}  # by service name
        self._probing: dict[str, asyncio.Task[None]] = {}  # by URL
        self._running = False

    @property
    def devices(self) -> dict[str, Device]:
        """A copy of the current devices by key."""
        return dict(self._devices)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start browsing and probing (on the running loop). Browsing that cannot start (no
        multicast-capable interface) is logged once; manual URLs still work."""
        if self._running:
            return
        self._running = True
        timeout = min(_PROBE_TIMEOUT_MAX_S, max(0.5, self.probe_interval_s))
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            # Below the edge's keep-alive timeout (uvicorn: 5 s), as in the edge client.
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S),
            trust_env=False,
        )
        if self.browse:
            await self._start_browsing()
        self._spawn(self._probe_loop(), "probe-loop")

    async def _start_browsing(self) -> None:
        try:
            if self.interfaces is None:
                zc = AsyncZeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only)
            else:
                zc = AsyncZeroconf(interfaces=self.interfaces)
        except OSError as err:
            log.warning("cannot browse the LAN for edges (%s); add them by URL", err)
            return
        self._zc = zc
        self._browser = AsyncServiceBrowser(
            zc.zeroconf, SERVICE_TYPE, handlers=[self._on_service_change]
        )
        log.info("browsing for edges on %s", self.interfaces or "all interfaces")

    async def stop(self) -> None:
        """Stop browsing and probing, close sockets; zeroconf's goodbyes are not awaited long.
        Devices stay as they were. Safe twice."""
        if not self._running:
            return
        self._running = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._probing.clear()
        self._resolving.clear()
        browser, zc, http = self._browser, self._zc, self._http
        self._browser = self._zc = self._http = None
        if browser is not None:
            await browser.async_cancel()
        if zc is not None:
            await zc.async_close()
        if http is not None:
            await http.aclose()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            log.error("discovery task %s failed", task.get_name(), exc_info=err)

    # ------------------------------------------------------------------ manual URLs
    def add_manual(self, url: str) -> None:
        """Watch ``url`` too (probed at once when running). Adding it twice changes nothing."""
        url = normalize_url(url)
        if url in self._manual:
            return
        self._manual[url] = _Manual(url)
        if self._running:
            self._probe_soon(url)

    def remove_manual(self, url: str) -> None:
        """Stop watching ``url``; its device goes away unless zeroconf still sees it."""
        url = normalize_url(url)
        if self._manual.pop(url, None) is None:
            return
        task = self._probing.pop(url, None)
        if task is not None:
            task.cancel()
        self._publish()

    async def _probe_loop(self) -> None:
        while True:
            for url in list(self._manual):
                self._probe_soon(url)
            await asyncio.sleep(self.probe_interval_s)

    def _probe_soon(self, url: str) -> None:
        if url in self._probing:
            return  # one probe per URL at a time: results never arrive out of order
        self._probing[url] = self._spawn(self._probe(url), f"probe {url}")

    async def _probe(self, url: str) -> None:
        try:
            found = await self._health(url)
        finally:
            if self._probing.get(url) is asyncio.current_task():
                del self._probing[url]
        entry = self._manual.get(url)
        if entry is None:
            return  # removed meanwhile
        entry.probed = True
        if isinstance(found, str):
            entry.quiet.failure("%s: no answer to /api/health: %s", url, found)
            entry.online = False
        else:
            entry.quiet.reset(f"{url}: answers again")
            entry.online = True
            entry.id = _text(found.get("id")) or entry.id
            entry.name = _text(found.get("name")) or entry.name
            entry.site = _text(found.get("site"), entry.site)
            entry.version = _text(found.get("version"), entry.version)
        self._publish()

    async def _health(self, url: str) -> dict[str, Any] | str:
        """The health body, or why there is none."""
        http = self._http
        if http is None:
            return "directory stopped"
        try:
            try:
                response = await http.get(url + "/api/health")
            except STALE_CONNECTION_ERRORS:  # a kept-alive connection the edge just closed
                response = await http.get(url + "/api/health")
            body = response.json()
        except (httpx.HTTPError, ValueError) as err:
            return str(err) or type(err).__name__
        if not isinstance(body, dict) or "name" not in body:
            return f"not an edge's health answer (HTTP {response.status_code})"
        return body

    # ------------------------------------------------------------------ zeroconf
    def _on_service_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if not self._running:
            return
        pending = self._resolving.pop(name, None)
        if pending is not None:
            pending.cancel()
        if state_change is ServiceStateChange.Removed:
            advert = self._adverts.get(name)
            if advert is not None and advert.online:
                advert.online = False
                log.info("edge %r left the LAN", name)
                self._publish()
            return
        self._resolving[name] = self._spawn(self._resolve(name), f"resolve {name}")

    async def _resolve(self, name: str) -> None:
        zc = self._zc
        if zc is None:
            return
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        try:
            found = await info.async_request(zc.zeroconf, _RESOLVE_TIMEOUT_MS)
        finally:
            if self._resolving.get(name) is asyncio.current_task():
                del self._resolving[name]
        addresses = info.parsed_addresses(IPVersion.V4Only) or info.parsed_addresses()
        if not found or not addresses or not info.port:
            log.debug("edge %r did not resolve", name)
            return
        txt = {k: v or "" for k, v in info.decoded_properties.items()}
        if txt.get("role", "edge") != "edge":
            return
        host = addresses[0] if ":" not in addresses[0] else f"[{addresses[0]}]"
        url = f"http://{host}:{info.port}"
        if name not in self._adverts:
            log.info("found edge %r at %s", name, url)
        self._adverts[name] = _Advert(url=url, txt=txt)
        self._publish()

    # ------------------------------------------------------------------ merging
    def _publish(self) -> None:
        """Rebuild the devices from both sources; tell what changed."""
        new = self._merge()
        old, self._devices = self._devices, new
        for key in old.keys() - new.keys():
            if self.on_removed is not None:
                self.on_removed(key)
        for key, device in new.items():
            if old.get(key) != device and self.on_change is not None:
                self.on_change(device)

    def _merge(self) -> dict[str, Device]:
        adverts: dict[str, list[_Advert]] = {}
        for advert in self._adverts.values():
            adverts.setdefault(advert.key, []).append(advert)
        by_url = {a.url: a.key for a in self._adverts.values()}
        manuals: dict[str, list[_Manual]] = {}
        for manual in self._manual.values():
            if manual.probed:
                key = manual.id or by_url.get(manual.url, manual.url)
                manuals.setdefault(key, []).append(manual)
        devices: dict[str, Device] = {}
        for key in [*adverts, *(k for k in manuals if k not in adverts)]:  # stable order
            devices[key] = _device(key, adverts.get(key, []), manuals.get(key, []))
        return devices


def _device(key: str, adverts: list[_Advert], manuals: list[_Manual]) -> Device:
    live_adverts = [a for a in adverts if a.online]
    live_manuals = [m for m in manuals if m.online]
    # A URL the user typed wins while it answers (it may be the only route, e.g. a VPN).
    if live_manuals:
        url = live_manuals[0].url
    elif live_adverts:
        url = live_adverts[0].url
    else:
        url = manuals[0].url if manuals else adverts[0].url
    txt = (live_adverts or adverts)[0].txt if adverts else {}
    manual = (live_manuals or manuals)[0] if manuals else None

    def pick(txt_key: str, manual_value: str) -> str:
        if live_adverts or manual is None:
            return txt.get(txt_key) or manual_value
        return manual_value or txt.get(txt_key, "")

    name = pick("name", manual.name if manual else "") or urlsplit(url).netloc
    cfg_text = txt.get("cfg", "")
    return Device(
        key=key,
        url=url,
        name=name,
        site=pick("site", manual.site if manual else ""),
        source="manual" if manuals else "zeroconf",
        online=bool(live_adverts or live_manuals),
        version=pick("ver", manual.version if manual else ""),
        caps=tuple(c for c in txt.get("caps", "").split(",") if c),
        cfg=int(cfg_text) if cfg_text.isdigit() else None,
    )


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default
