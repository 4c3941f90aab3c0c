"""The console's settings without Qt: keys, defaults and what a damaged value reads as.

The QSettings-backed store (``console.ui.settings.QtConsoleSettings``) is exercised by the GUI
tests; here any store with QSettings' three methods will do.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from console.services.settings import (
    DEFAULT_GROUP,
    AgeThresholds,
    ConsoleSettings,
    layout_name,
    parse_layout,
)

pytestmark = pytest.mark.unit


class DictStore:
    """QSettings' ``value``/``setValue``/``sync`` over a dict."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = dict(values or {})
        self.synced = 0

    def value(self, key: str, /) -> Any:
        return self.values.get(key)

    def setValue(self, key: str, value: Any, /) -> None:
        self.values[key] = value

    def sync(self) -> None:
        self.synced += 1


def test_defaults_when_nothing_is_stored() -> None:
    settings = ConsoleSettings(DictStore())
    assert settings.theme == "system"
    assert settings.thresholds == AgeThresholds()
    assert settings.refresh_fps == 2.0
    assert settings.tile_fps == {}
    assert settings.layout == (2, 2)
    assert settings.group == DEFAULT_GROUP
    assert settings.groups == {}
    assert settings.manual_urls == []
    assert settings.interfaces is None


def test_values_written_read_back_under_their_keys() -> None:
    store = DictStore()
    settings = ConsoleSettings(store)
    settings.theme = "dark"
    settings.thresholds = AgeThresholds(1000.0, 3000.0)
    settings.refresh_fps = 5.0
    settings.tile_fps = {3: 0.5}
    settings.layout = (3, 4)
    settings.group = "Night"
    settings.save_group("Night", ["dev-1", None])
    settings.manual_urls = ["http://a:8080", "http://a:8080", "http://b:8080"]
    settings.sync()
    assert store.synced == 1
    assert store.values["ui/theme"] == "dark"
    assert store.values["wall/layout"] == "3x4"
    assert json.loads(store.values["devices/manual_urls"]) == ["http://a:8080", "http://b:8080"]
    again = ConsoleSettings(store)
    assert again.theme == "dark"
    assert again.thresholds == AgeThresholds(1000.0, 3000.0)
    assert again.refresh_fps == 5.0
    assert again.tile_fps == {3: 0.5}
    assert again.layout == (3, 4)
    assert (again.group, again.groups) == ("Night", {"Night": ["dev-1", None]})
    again.delete_group("Night")
    assert again.groups == {}


def test_damaged_values_read_as_defaults() -> None:
    store = DictStore({
        "ui/theme": "purple", "wall/amber_ms": "soon", "wall/red_ms": "10",
        "wall/refresh_fps": "1000", "wall/tile_fps": '{"1": 99, "x": 2, "2": 0.5}',
        "wall/layout": "9x9", "wall/group": "", "wall/groups": "{not json",
        "devices/manual_urls": '["http://a:8080", 5]', "devices/interfaces": '["127.0.0.1", 1]',
    })  # fmt: skip
    settings = ConsoleSettings(store)
    assert settings.theme == "system"
    # amber falls back to its default; red is never below amber
    assert settings.thresholds == AgeThresholds(2000.0, 2000.0)
    assert settings.refresh_fps == 30.0
    assert settings.tile_fps == {2: 0.5}
    assert settings.layout == (2, 2)
    assert settings.group == DEFAULT_GROUP
    assert settings.groups == {}
    assert settings.manual_urls == ["http://a:8080"]
    assert settings.interfaces is None


@pytest.mark.parametrize(
    ("text", "rows_cols"), [("1", (1, 1)), ("2x2", (2, 2)), ("4X4", (4, 4)), ("2x8", (2, 8))]
)
def test_layouts(text: str, rows_cols: tuple[int, int]) -> None:
    assert parse_layout(text) == rows_cols
    assert parse_layout(layout_name(*rows_cols)) == rows_cols


@pytest.mark.parametrize("text", ["", "x", "0x2", "9x1", "2x", "two"])
def test_bad_layouts_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="layout"):
        parse_layout(text)
