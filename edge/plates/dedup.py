"""The same plate at the same bay within a window is one read.

:class:`Deduper` remembers the plates accepted in the last ``window_s`` seconds (one per plate,
the latest). :meth:`~Deduper.check` finds an earlier read of the same vehicle: the same plate,
one of the new read's candidates equal to an earlier plate, or a plate one edit away (a reader
that missed or doubled a character). ``window_s`` is read on every call (hot config); 0 turns
deduplication off. Memory is bounded: expired plates are dropped on every call and at most
``max_entries`` are kept. Times are seconds on any clock, as long as it is the same clock for
all calls; a clock stepping back by more than ``CLOCK_SLACK_S`` expires what was remembered.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from edge.plates.members import edit_distance
from edge.plates.normalize import clean

__all__ = ["Deduper", "Recent"]

MAX_ENTRIES = 1024
CLOCK_SLACK_S = 1.0
FUZZY_DISTANCE = 1


@dataclass(frozen=True, slots=True)
class Recent:
    """An accepted read: its normalised plate, when, and its stored id."""

    plate: str
    at: float
    read_id: int


class Deduper:
    def __init__(self, window_s: float, *, max_entries: int = MAX_ENTRIES) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._recent: OrderedDict[str, Recent] = OrderedDict()  # oldest remembered first

    def __len__(self) -> int:
        return len(self._recent)

    def _live(self, recent: Recent, now: float) -> bool:
        return -CLOCK_SLACK_S <= now - recent.at < self.window_s

    def check(self, plate: str, now: float, *, candidates: Iterable[str] = ()) -> Recent | None:
        """The earlier read of this vehicle within the window, or None.

        Preference: the same plate, then a candidate equal to an earlier plate (the
        best-ranked candidate first), then the latest earlier plate one edit away.
        """
        self._prune(now)
        if self.window_s <= 0:
            return None
        plate = clean(plate)
        for text in (plate, *(clean(c) for c in candidates)):
            found = self._recent.get(text)
            if found is not None and self._live(found, now):
                return found
        for recent in reversed(self._recent.values()):
            if (
                self._live(recent, now)
                and edit_distance(plate, recent.plate, FUZZY_DISTANCE) <= FUZZY_DISTANCE
            ):
                return recent
        return None

    def remember(self, plate: str, now: float, read_id: int) -> Recent:
        """Record an accepted read (replacing an earlier one of the same plate)."""
        recent = Recent(clean(plate), now, read_id)
        self._recent.pop(recent.plate, None)
        self._recent[recent.plate] = recent
        self._prune(now)
        return recent

    def clear(self) -> None:
        self._recent.clear()

    def _prune(self, now: float) -> None:
        recent = self._recent
        while len(recent) > self.max_entries:
            recent.popitem(last=False)
        while recent and not self._live(next(iter(recent.values())), now):
            recent.popitem(last=False)
