"""The console's per-user settings, typed: keys, defaults and the checks on what is read back.

Qt-free: :class:`ConsoleSettings` reads and writes through any :class:`SettingsStore`, which
QSettings is (the registry on Windows, an ini file under ~/.config on Linux); the app wraps it
in :class:`console.ui.settings.QtConsoleSettings`, which adds what only Qt stores (the main
window's geometry). One object made by the app and passed down; nothing reads the store behind
its back. A value that is missing or not what its key takes reads as the default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

ThemeMode = Literal["system", "light", "dark"]
THEMES: Final[tuple[ThemeMode, ...]] = ("system", "light", "dark")
LAYOUTS: Final = {"1": (1, 1), "2x2": (2, 2), "3x3": (3, 3), "4x4": (4, 4)}
MAX_GRID: Final = 8
DEFAULT_GROUP: Final = "Default"


class SettingsStore(Protocol):
    """Where the settings live: QSettings' own methods (a dict-backed stub in tests)."""

    def value(self, key: str, /) -> Any: ...  # None when the key is not set
    def setValue(self, key: str, value: Any, /) -> None: ...
    def sync(self, /) -> None: ...


@dataclass(frozen=True, slots=True)
class AgeThresholds:
    """Frame age (ms) at which a tile's badge turns amber, then red (and the picture is no
    longer presented as live)."""

    amber_ms: float = 2000.0
    red_ms: float = 5000.0


def parse_layout(text: str) -> tuple[int, int]:
    """``"1"``, ``"2x2"``, ``"3x3"``, ``"4x4"`` or a custom ``"ROWSxCOLS"`` (1..8 each)."""
    if text in LAYOUTS:
        return LAYOUTS[text]
    rows, sep, cols = text.lower().partition("x")
    if not sep or not rows.isdigit() or not cols.isdigit():
        raise ValueError(f"layout {text!r}: expected 1, 2x2, 3x3, 4x4 or ROWSxCOLS")
    r, c = int(rows), int(cols)
    if not (1 <= r <= MAX_GRID and 1 <= c <= MAX_GRID):
        raise ValueError(f"layout {text!r}: rows and columns go from 1 to {MAX_GRID}")
    return r, c


def layout_name(rows: int, cols: int) -> str:
    return "1" if (rows, cols) == (1, 1) else f"{rows}x{cols}"


class ConsoleSettings:
    """Typed accessors; every setter writes through to the store at once."""

    def __init__(self, store: SettingsStore) -> None:
        self.store = store

    def _str(self, key: str, default: str) -> str:
        value = self.store.value(key)
        return value if isinstance(value, str) else default

    def _float(self, key: str, default: float) -> float:
        value = self.store.value(key)
        if value is None:
            return default
        try:
            return float(str(value))
        except ValueError:
            return default

    def _json(self, key: str, default: object) -> object:
        raw = self.store.value(key)
        if not isinstance(raw, str):
            return default
        try:
            return json.loads(raw)
        except ValueError:
            return default

    # ------------------------------------------------------------------ appearance
    @property
    def theme(self) -> ThemeMode:
        value = self._str("ui/theme", "system")
        for mode in THEMES:
            if mode == value:
                return mode
        return "system"

    @theme.setter
    def theme(self, mode: ThemeMode) -> None:
        self.store.setValue("ui/theme", mode)

    # ------------------------------------------------------------------ wall
    @property
    def thresholds(self) -> AgeThresholds:
        default = AgeThresholds()
        amber = self._float("wall/amber_ms", default.amber_ms)
        red = self._float("wall/red_ms", default.red_ms)
        return AgeThresholds(amber, max(amber, red))

    @thresholds.setter
    def thresholds(self, value: AgeThresholds) -> None:
        self.store.setValue("wall/amber_ms", value.amber_ms)
        self.store.setValue("wall/red_ms", value.red_ms)

    @property
    def refresh_fps(self) -> float:
        return min(30.0, max(0.1, self._float("wall/refresh_fps", 2.0)))

    @refresh_fps.setter
    def refresh_fps(self, fps: float) -> None:
        self.store.setValue("wall/refresh_fps", fps)

    @property
    def tile_fps(self) -> dict[int, float]:
        """Per-tile refresh rates that differ from :attr:`refresh_fps` (tile index → fps)."""
        raw = self._json("wall/tile_fps", {})
        rates: dict[int, float] = {}
        if isinstance(raw, dict):
            for index, fps in raw.items():
                if str(index).isdigit() and isinstance(fps, int | float) and 0.1 <= fps <= 30:
                    rates[int(index)] = float(fps)
        return rates

    @tile_fps.setter
    def tile_fps(self, rates: dict[int, float]) -> None:
        self.store.setValue("wall/tile_fps", json.dumps({str(i): f for i, f in rates.items()}))

    @property
    def layout(self) -> tuple[int, int]:
        try:
            return parse_layout(self._str("wall/layout", "2x2"))
        except ValueError:
            return LAYOUTS["2x2"]

    @layout.setter
    def layout(self, rows_cols: tuple[int, int]) -> None:
        self.store.setValue("wall/layout", layout_name(*rows_cols))

    @property
    def group(self) -> str:
        return self._str("wall/group", DEFAULT_GROUP) or DEFAULT_GROUP

    @group.setter
    def group(self, name: str) -> None:
        self.store.setValue("wall/group", name)

    @property
    def groups(self) -> dict[str, list[str | None]]:
        """Named tile → device-key assignments (None: an empty tile)."""
        raw = self._json("wall/groups", {})
        groups: dict[str, list[str | None]] = {}
        if isinstance(raw, dict):
            for name, tiles in raw.items():
                if isinstance(name, str) and isinstance(tiles, list):
                    groups[name] = [t if isinstance(t, str) else None for t in tiles]
        return groups

    def save_group(self, name: str, tiles: list[str | None]) -> None:
        groups = self.groups
        groups[name] = list(tiles)
        self.store.setValue("wall/groups", json.dumps(groups))

    def delete_group(self, name: str) -> None:
        groups = self.groups
        if groups.pop(name, None) is not None:
            self.store.setValue("wall/groups", json.dumps(groups))

    # ------------------------------------------------------------------ devices
    @property
    def manual_urls(self) -> list[str]:
        raw = self._json("devices/manual_urls", [])
        return [u for u in raw if isinstance(u, str)] if isinstance(raw, list) else []

    @manual_urls.setter
    def manual_urls(self, urls: list[str]) -> None:
        self.store.setValue("devices/manual_urls", json.dumps(list(dict.fromkeys(urls))))

    @property
    def interfaces(self) -> list[str] | None:
        """zeroconf interfaces (addresses); None: every interface."""
        raw = self._json("devices/interfaces", None)
        if isinstance(raw, list) and all(isinstance(a, str) for a in raw):
            return [str(a) for a in raw]
        return None

    def sync(self) -> None:
        """Write what is pending to disk (QSettings also does this by itself, later)."""
        self.store.sync()
