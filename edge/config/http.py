"""The HTTP API's section, the zeroconf advertisement's, and ``HOST:PORT`` parsing."""

from __future__ import annotations

import ipaddress
import socket
from typing import Literal

from pydantic import Field, field_validator

from edge.config.base import Section, apply_class

Role = Literal["viewer", "operator", "admin"]


class HttpConfig(Section):
    listen: str = Field(
        "127.0.0.1:8080",
        description="HOST:PORT the HTTP API listens on. Use 0.0.0.0:8080 to serve the LAN. Read"
        " at start-up only: change it in the file and restart (the config API refuses it).",
        json_schema_extra=apply_class("restart:process"),
    )
    metrics_requires_key: bool = Field(
        False,
        description="Require a viewer key for /metrics (open by default for Prometheus).",
        json_schema_extra=apply_class("hot"),
    )
    rate_limit_per_s: float = Field(
        100.0,
        gt=0,
        description="Requests per second allowed to one client (key or address).",
        json_schema_extra=apply_class("hot"),
    )
    rate_limit_burst: int = Field(
        200,
        ge=1,
        description="Requests one client may make at once before the rate applies.",
        json_schema_extra=apply_class("hot"),
    )
    mjpeg_max_fps: float = Field(
        10.0,
        gt=0,
        le=60,
        description="Highest frame rate of /api/stream.mjpeg.",
        json_schema_extra=apply_class("hot"),
    )
    sse_keepalive_s: float = Field(
        15.0,
        gt=0,
        le=300,
        description="Seconds between keepalive comments on an idle /api/events stream (keeps"
        " proxies and NAT from dropping it; a client that hears nothing this long reconnects).",
        json_schema_extra=apply_class("hot"),
    )

    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body accepted (JSON routes); a larger one gets 413.",
        json_schema_extra=apply_class("hot"),
    )
    max_streams_per_client: int = Field(
        8,
        ge=1,
        le=1000,
        description="Event (SSE) and MJPEG streams one client (API key) may hold open at once;"
        " one more gets 429.",
        json_schema_extra=apply_class("hot"),
    )
    max_connections: int = Field(
        256,
        ge=8,
        le=100_000,
        description="Connections and requests served at once (uvicorn's limit_concurrency);"
        " beyond it new requests get 503. Keep it below the process's open-file limit"
        " (LimitNOFILE in the systemd unit). Read at start-up only.",
        json_schema_extra=apply_class("restart:process"),
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a request's headers, from the connection"
        " (or its first byte after a keep-alive pause); a slower one is disconnected. Read at"
        " start-up only.",
        json_schema_extra=apply_class("restart:process"),
    )

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value


class DiscoveryConfig(Section):
    enabled: bool = Field(
        True,
        description="Advertise this edge on the LAN with zeroconf (mDNS).",
        json_schema_extra=apply_class("restart:discovery"),
    )
    interfaces: list[str] | None = Field(
        None,
        description="IP addresses to advertise on. Default: where the API listens (only"
        " 127.0.0.1 when it listens there; every interface for 0.0.0.0).",
        json_schema_extra=apply_class("restart:discovery"),
    )


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:8080`` for IPv6); port 0 picks a free one.

    Every interface is spelled out (``0.0.0.0`` or ``[::]``): a shorthand such as ``0:8080``
    or ``0.0:8080``, which the socket library would quietly take for ``0.0.0.0``, is refused,
    as is any IPv4 address not written as four decimal numbers (``127.1``, ``010.0.0.1``).
    """
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    if host.startswith("[") or host.endswith("]"):
        inner = host[1:-1] if host.startswith("[") and host.endswith("]") else ""
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address in brackets ([::1])") from None
        return inner, int(port_text)
    if ":" in host:
        raise ValueError(f"write an IPv6 address in brackets: [{host}]:{port_text}")
    _check_ipv4_spelling(host)
    return host, int(port_text)


def _check_ipv4_spelling(host: str) -> None:
    """Refuse what inet_aton takes for an IPv4 address but is not one written in full."""
    try:
        socket.inet_aton(host)
    except OSError:
        return  # a host name (``localhost``): bind resolves it
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        packed = ".".join(str(b) for b in socket.inet_aton(host))
        hint = " (every interface: write 0.0.0.0)" if packed == "0.0.0.0" else ""  # noqa: S104
        raise ValueError(
            f"write the IPv4 address in full: {host!r} would mean {packed}{hint}"
        ) from None


def is_every_interface(host: str) -> bool:
    """``0.0.0.0`` or ``::``: the API is reachable from every network the machine is on."""
    return host in ("0.0.0.0", "::")  # noqa: S104 - compared with, never bound here


def listen_url(host: str, port: int) -> str:
    """``http://HOST:PORT``, an IPv6 host in brackets (``http://[::1]:8080``)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
