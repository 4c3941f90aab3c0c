"""The listen address: spelled out in full, shown as a URL, advertised only where mDNS works."""

from __future__ import annotations

import logging

import pytest

from edge.config import EdgeConfig, is_every_interface, listen_url, load_config, parse_listen
from edge.discovery import Advertiser, advertise_interfaces, no_multicast
from edge.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),  # noqa: S104 - parsed, never bound
        ("[::1]:8080", ("::1", 8080)),
        ("[::]:0", ("::", 0)),
        ("localhost:8080", ("localhost", 8080)),
    ],
)
def test_listen_addresses_written_in_full(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0:0", r"'0' would mean 0\.0\.0\.0 \(every interface: write 0\.0\.0\.0\)"),
        ("0.0:8080", r"would mean 0\.0\.0\.0 \(every interface"),
        ("127.1:8080", r"'127\.1' would mean 127\.0\.0\.1"),
        ("010.0.0.1:8080", r"would mean 8\.0\.0\.1"),
        ("::1:8080", r"in brackets: \[::1\]:8080"),
        ("[127.0.0.1]:80", r"not an IPv6 address in brackets"),
        ("[::1:80", r"not an IPv6 address in brackets"),
        ("8080", r"HOST:PORT"),
    ],
)
def test_shorthand_and_ambiguous_listen_addresses_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_listen(value)


def test_a_shorthand_listen_address_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"http\.listen: .*every interface: write 0\.0\.0\.0"):
        load_config(None, {"http.listen": "0:0"})
    assert load_config(None, {"http.listen": "0.0.0.0:0"}).http.listen == "0.0.0.0:0"
    assert EdgeConfig().http.listen == "127.0.0.1:8080"


def test_urls_and_every_interface() -> None:
    assert listen_url("::1", 8080) == "http://[::1]:8080"
    assert listen_url("127.0.0.1", 80) == "http://127.0.0.1:80"
    assert is_every_interface("0.0.0.0")  # noqa: S104
    assert is_every_interface("::")
    assert not is_every_interface("127.0.0.1")
    assert not is_every_interface("::1")


def test_no_multicast_on_ipv6_loopback() -> None:
    assert no_multicast("::1")
    assert not no_multicast("127.0.0.1")
    assert not no_multicast("fd00::5")
    assert not no_multicast("not-an-address")


@pytest.mark.asyncio
async def test_advertising_on_ipv6_loopback_is_skipped_with_one_clear_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interfaces = advertise_interfaces("::1", None)
    assert interfaces == ["::1"]
    adv = Advertiser("0" * 32, "bay", "site", "0.1.0", 8080, "::1", interfaces)
    with caplog.at_level(logging.DEBUG):
        await adv.start()
        await adv.update(cfg_version=2)  # quiet from now on
        await adv.stop()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "zeroconf advertising skipped on ::1: no multicast there (IPv6 loopback);"
        " consoles need this edge's URL"
    ]
    assert all(r.exc_info is None for r in caplog.records)
    assert adv.info is None
