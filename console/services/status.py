"""One state per device, derived in one place: what the sidebar, the "N online" count, the wall
tile and the alerts all show.

Every part of the console that talks to an edge reports what happened to :class:`DeviceStates`
(the wall's picture polls, the alerts' health checks): an answer (:meth:`DeviceStates.ok`), no
answer (:meth:`DeviceStates.miss`) or an answer that refused the API key
(:meth:`DeviceStates.refused`). The state follows from those alone:

- ``connecting``: nothing heard yet (and fewer than two misses);
- ``online``: the edge answers and accepts the key;
- ``degraded``: it answers, but its camera stream is offline or stale;
- ``offline``: ``misses_for_offline`` (2) checks in a row got no answer, spread over at least
  ``min_offline_span_s`` (a single hiccup seen by several pollers at once is not an outage);
  one missed check alone changes nothing (no flicker);
- ``key_needed``: the edge answers, but refuses the stored key (401/403) or there is none.

Standard library only (Qt-free): :class:`console.presenters.status.StatusPresenter` wraps it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

StateName = Literal["connecting", "online", "degraded", "offline", "key_needed"]

LABELS: Final[dict[str, str]] = {
    "connecting": "Connecting",
    "online": "Online",
    "degraded": "Degraded",
    "offline": "Offline",
    "key_needed": "Key needed",
}


@dataclass(frozen=True, slots=True)
class DeviceState:
    """A device's state now, with a sentence for people (``""`` when all is well)."""

    name: StateName = "connecting"
    reason: str = ""
    since: datetime | None = None  # when this state began (local time)

    @property
    def label(self) -> str:
        return LABELS[self.name]

    @property
    def answers(self) -> bool:
        """The edge answers (online, degraded or refusing the key): counted as online."""
        return self.name in ("online", "degraded", "key_needed")

    @property
    def working(self) -> bool:
        """Its pictures and numbers are current (online or degraded)."""
        return self.name in ("online", "degraded")


UNKNOWN: Final = DeviceState()


def plain_reason(text: str) -> str:
    """An httpx/OS error text as a sentence for a site manager (the detail in brackets)."""
    low = text.lower()
    if "refused" in low or "all connection attempts failed" in low:
        return "The edge does not answer: is it switched on and running? (connection refused)"
    if "timed out" in low or "timeout" in low:
        return "The edge stopped answering (no reply in time)."
    if "name or service not known" in low or "nodename" in low or "getaddrinfo" in low:
        return "The edge's address cannot be found on the network."
    if "no route" in low or "unreachable" in low:
        return "The network cannot reach the edge (no route)."
    if "disconnected" in low or "reset" in low or "readerror" in low or "closed" in low:
        return "The connection to the edge broke off."
    detail = text.strip().split("\n")[0]
    return f"The edge does not answer ({detail})." if detail else "The edge does not answer."


def key_reason(status: int) -> str:
    if status == 403:
        return "The stored API key may not view this edge: enter a viewer key or better."
    return "This edge needs an API key (none stored, or the edge refused it)."


@dataclass(slots=True)
class _Track:
    state: DeviceState = UNKNOWN
    misses: int = 0
    first_miss_mono: float | None = None
    miss_reason: str = ""
    refused: int = 0  # the status of the last refusal (401/403), 0: the key works
    stream: str = ""  # the camera stream's status as last reported ("online", "offline", ...)
    answered: bool = False


@dataclass
class DeviceStates:
    """The state of every device the console watches; see the module docstring.

    ``on_change(key, state)`` is called whenever a device's state or reason changes.
    ``clock`` (monotonic seconds) and ``wall`` (local time) are for tests.
    """

    misses_for_offline: int = 2
    min_offline_span_s: float = 1.0
    on_change: Callable[[str, DeviceState], None] | None = None
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = field(default=lambda: datetime.now().astimezone())
    _tracks: dict[str, _Track] = field(default_factory=dict)

    # ------------------------------------------------------------------ reading
    def state(self, key: str) -> DeviceState:
        track = self._tracks.get(key)
        return track.state if track is not None else UNKNOWN

    def states(self) -> dict[str, DeviceState]:
        return {key: track.state for key, track in self._tracks.items()}

    def summary(self, keys: Iterable[str]) -> str:
        """ "4 edges, 3 online, 1 offline" for the status bar (over ``keys``)."""
        names = [self.state(k).name for k in keys]
        online = sum(1 for n in names if n in ("online", "degraded"))
        parts = [f"{len(names)} edge{'s' if len(names) != 1 else ''}", f"{online} online"]
        offline = names.count("offline")
        if offline:
            parts.append(f"{offline} offline")
        keyless = names.count("key_needed")
        if keyless:
            parts.append(f"{keyless} need{'s' if keyless == 1 else ''} a key")
        return ", ".join(parts)

    # ------------------------------------------------------------------ reports
    def ok(self, key: str, *, authenticated: bool, stream: str | None = None) -> DeviceState:
        """The edge answered. ``authenticated``: a route that needs the key answered (the key
        works); ``stream``: the camera stream status the answer carried, if any."""
        track = self._track(key)
        track.misses, track.first_miss_mono, track.miss_reason = 0, None, ""
        track.answered = True
        if authenticated:
            track.refused = 0
        if stream is not None:
            track.stream = stream
        return self._derive(key, track)

    def refused(self, key: str, status: int) -> DeviceState:
        """The edge answered, refusing the key (HTTP 401 or 403)."""
        track = self._track(key)
        track.misses, track.first_miss_mono, track.miss_reason = 0, None, ""
        track.answered = True
        track.refused = status
        return self._derive(key, track)

    def miss(self, key: str, reason: str) -> DeviceState:
        """No answer (connection refused, reset, timed out); ``reason`` as the error said it."""
        track = self._track(key)
        track.misses += 1
        if track.first_miss_mono is None:
            track.first_miss_mono = self.clock()
        track.miss_reason = plain_reason(reason)
        return self._derive(key, track)

    def forget(self, key: str) -> None:
        self._tracks.pop(key, None)

    # ------------------------------------------------------------------ the one rule
    def _track(self, key: str) -> _Track:
        return self._tracks.setdefault(key, _Track())

    def _derive(self, key: str, track: _Track) -> DeviceState:
        name: StateName
        span = self.clock() - track.first_miss_mono if track.first_miss_mono is not None else 0.0
        if track.misses >= self.misses_for_offline and span >= self.min_offline_span_s:
            name, reason = "offline", track.miss_reason
        elif track.misses and track.state.name in ("offline", "connecting"):
            name, reason = track.state.name, track.miss_reason  # one more miss changes nothing
        elif track.misses:
            return track.state  # one missed check alone: keep what was shown
        elif track.refused:
            name, reason = "key_needed", key_reason(track.refused)
        elif not track.answered:
            name, reason = "connecting", ""
        elif track.stream == "offline":
            name, reason = "degraded", "The edge answers, but its camera sends no pictures."
        elif track.stream == "degraded":
            name, reason = "degraded", "The edge answers, but its camera pictures are late."
        else:
            name, reason = "online", ""
        old = track.state
        if (old.name, old.reason) == (name, reason):
            return old
        since = old.since if old.name == name and old.since is not None else self.wall()
        track.state = DeviceState(name, reason, since)
        if self.on_change is not None:
            self.on_change(key, track.state)
        return track.state
