"""How the directory merges what zeroconf and manual probes say about one edge (no network)."""

from __future__ import annotations

import pytest

from console.services.discovery import _Advert, _device, _Manual, normalize_url

pytestmark = pytest.mark.unit

TXT = {"id": "dev-1", "name": "bay 1", "site": "north", "role": "edge", "ver": "2.0",
       "api": "/api", "caps": "snapshot,plates", "cfg": "7"}  # fmt: skip


@pytest.mark.parametrize(
    ("typed", "normal"),
    [
        ("10.0.0.5:8080", "http://10.0.0.5:8080"),
        ("http://10.0.0.5:8080/", "http://10.0.0.5:8080"),
        ("  HTTP://Bay-1.LOCAL:8080  ", "http://bay-1.local:8080"),
        ("https://edge.example/", "https://edge.example"),
    ],
)
def test_normalize_url(typed: str, normal: str) -> None:
    assert normalize_url(typed) == normal


def manual(online: bool, url: str = "http://vpn-host:8080", **fields: str) -> _Manual:
    return _Manual(url=url, probed=True, online=online, id="dev-1", **fields)


def test_zeroconf_only() -> None:
    device = _device("dev-1", [_Advert("http://10.0.0.5:8080", TXT)], [])
    assert (device.url, device.name, device.site, device.version) == (
        "http://10.0.0.5:8080", "bay 1", "north", "2.0",
    )  # fmt: skip
    assert (device.source, device.online, device.caps, device.cfg) == (
        "zeroconf", True, ("snapshot", "plates"), 7,
    )  # fmt: skip


def test_the_typed_url_wins_while_it_answers() -> None:
    both = _device("dev-1", [_Advert("http://10.0.0.5:8080", TXT)], [manual(True, name="old")])
    assert (both.url, both.source, both.online) == ("http://vpn-host:8080", "manual", True)
    assert both.name == "bay 1"  # a live advert is the freshest word on names
    fallback = _device("dev-1", [_Advert("http://10.0.0.5:8080", TXT)], [manual(False)])
    assert (fallback.url, fallback.online) == ("http://10.0.0.5:8080", True)


def test_offline_everywhere_keeps_what_was_known() -> None:
    gone = _Advert("http://10.0.0.5:8080", TXT, online=False)
    device = _device("dev-1", [gone], [manual(False, name="bay 1 (manual)", site="s")])
    assert (device.url, device.online) == ("http://vpn-host:8080", False)
    assert (device.name, device.site) == ("bay 1 (manual)", "s")  # the probe's last answer
    assert device.cfg == 7  # still known from the advert


def test_names_fall_back_to_the_address() -> None:
    never = _Manual(url="http://10.0.0.9:8080", probed=True)
    device = _device("http://10.0.0.9:8080", [], [never])
    assert (device.name, device.site, device.online, device.cfg) == (
        "10.0.0.9:8080",
        "",
        False,
        None,
    )


def test_odd_txt_values_are_tolerated() -> None:
    txt = {"id": "dev-1", "cfg": "seven", "caps": ""}
    device = _device("dev-1", [_Advert("http://10.0.0.5:8080", txt)], [])
    assert (device.name, device.cfg, device.caps) == ("10.0.0.5:8080", None, ())
