"""What the console knows about one edge: :class:`Device` (made by the directory, used by the
pool, the alert rules and every presenter). Light: standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Source = Literal["zeroconf", "manual", "cloud"]


@dataclass(frozen=True, slots=True)
class Device:
    key: str  # the device id (TXT id / health id) or, before that is known, the URL
    url: str  # base URL, e.g. http://192.168.1.20:8080
    name: str
    site: str
    source: Source  # "manual" when the user added a URL for it, else how it was found
    online: bool
    version: str = ""
    caps: tuple[str, ...] = ()
    cfg: int | None = None  # config version (zeroconf TXT), None when unknown
