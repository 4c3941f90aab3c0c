"""Club members by plate: the list, the file it comes from, and matching a read against it.

A :class:`MemberList` is immutable and loaded whole from JSON (``{"members": [...]}`` or a bare
list of objects) or CSV with a header row (``plate,id,name,plan,status`` in any order; extra
columns ignored; ``,`` ``;`` or tab separated). Plates are normalised (upper case, A-Z 0-9); a
plate listed twice is an error, as is a row without plate or id. Errors are
:class:`MembersError` naming the file and the line (CSV) or index (JSON).

:meth:`MemberList.match` looks a read up: an exact hit on the plate or on any candidate wins
(the plate first, then candidates by score); otherwise the nearest member within
``max_distance`` edits (Levenshtein), over the plate and the candidates. Two different members
equally near is no match: the gate must not open for the wrong member. Inactive members match
too — :attr:`Member.status` is the caller's to judge.

Fuzzy lookups use a deletion-neighbourhood index (every plate with up to ``max_distance``
characters deleted, hashed into one sorted ``array``: 8 bytes per key, ~9 keys per plate at
distance 1). It is built on the first fuzzy lookup at a distance (~0.5 s for 100 000 members at
distance 1; :meth:`MemberList.prepare` builds it ahead); a lookup is then a few bisections and
well under a millisecond.

:class:`MembersFile` follows a file: :meth:`~MembersFile.current` stats it at most once a
second and reloads when its modification time, size or inode changed; a bad file leaves the
last good list in place and sets :attr:`~MembersFile.error`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from edge.errors import EdgeError
from edge.plates.normalize import clean

__all__ = [
    "Member",
    "MemberList",
    "MemberMatch",
    "MembersError",
    "MembersFile",
    "edit_distance",
]

log = logging.getLogger("edge.plates")

MAX_FILE_BYTES = 64 * 1024 * 1024  # a list this large is a mistake, not a club
CHECK_EVERY_S = 1.0  # MembersFile stats its file at most this often
MIN_FUZZY_LENGTH = 4  # shorter reads (and member plates) match exactly or not at all
_FIELDS = ("plate", "id", "name", "plan", "status")


class MembersError(EdgeError):
    """A members file that cannot be used: ``source`` (the file), ``where`` (line or index)."""

    def __init__(self, source: str, where: str | None, message: str) -> None:
        super().__init__(f"{source}: {where}: {message}" if where else f"{source}: {message}")
        self.source, self.where, self.detail = source, where, message


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    plate: str  # normalised
    name: str = ""
    plan: str = ""
    status: str = "active"  # lower case: active, suspended, cancelled... as the club says

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "plate": self.plate, "name": self.name, "plan": self.plan,
                "status": self.status}  # fmt: skip


@dataclass(frozen=True, slots=True)
class MemberMatch:
    member: Member
    match: Literal["exact", "fuzzy"]
    via: str  # the read's plate or candidate (normalised) that matched
    distance: int  # edits between ``via`` and the member's plate

    def payload(self) -> dict[str, str]:
        """The ``member`` object of ``plate.read`` / ``member.recognized`` events."""
        m = self.member
        return {"id": m.id, "name": m.name, "plan": m.plan, "status": m.status,
                "match": self.match}  # fmt: skip


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Levenshtein distance; with ``limit``, any distance above it is ``limit + 1``."""
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    if limit is not None and len(a) - len(b) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if limit is not None and min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1] if limit is None else min(prev[-1], limit + 1)


def _deletions(text: str, depth: int) -> set[str]:
    """``text`` with up to ``depth`` characters deleted, in every way."""
    out, frontier = {text}, {text}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


class _FuzzyIndex:
    """Deletion neighbourhoods of all plates at one depth: key = (hash << bits) | index.

    Two plates within ``depth`` edits share a neighbour, so a query visits only the plates
    sharing one of its own neighbours (then checked with :func:`edit_distance`). A hash
    collision only adds a plate to check.
    """

    def __init__(self, plates: Sequence[str], depth: int) -> None:
        self.depth = depth
        self._bits = max(1, (len(plates) - 1).bit_length())
        self._hmask = (1 << (63 - self._bits)) - 1
        bits, hmask = self._bits, self._hmask
        keys = [
            ((hash(d) & hmask) << bits) | i
            for i, plate in enumerate(plates)
            for d in _deletions(plate, depth)
        ]
        keys.sort()
        self._keys = array("q", keys)

    def near(self, text: str) -> set[int]:
        """Indexes of the plates that may be within ``depth`` edits of ``text``."""
        keys, bits = self._keys, self._bits
        found: set[int] = set()
        imask = (1 << bits) - 1
        for d in _deletions(text, self.depth):
            h = hash(d) & self._hmask
            i = bisect_left(keys, h << bits)
            while i < len(keys) and keys[i] >> bits == h:
                found.add(keys[i] & imask)
                i += 1
        return found


class MemberList:
    """An immutable list of members by normalised plate. Raises :class:`MembersError` for a
    member without a plate or a plate listed twice."""

    def __init__(self, members: Iterable[Member] = (), *, source: str = "members") -> None:
        self.source = source
        self._members, self._by_plate = _index(
            ((f"member {n}", m) for n, m in enumerate(members, 1)), source
        )
        self._fuzzy: dict[int, _FuzzyIndex] = {}
        self._lock = threading.Lock()

    @classmethod
    def _from_entries(cls, entries: Iterable[tuple[str, Member]], source: str) -> MemberList:
        self = cls(source=source)
        self._members, self._by_plate = _index(entries, source)
        return self

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MemberList:
        """Read a JSON or CSV file (by suffix; otherwise by its first character)."""
        source = str(path)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as err:
            raise MembersError(source, None, f"cannot read: {err.strerror or err}") from err
        if len(data) > MAX_FILE_BYTES:
            raise MembersError(source, None, f"larger than {MAX_FILE_BYTES} bytes")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise MembersError(source, f"byte {err.start}", "not UTF-8 text") from err
        suffix = Path(path).suffix.lower()
        if suffix == ".json" or (suffix not in (".csv", ".tsv", ".txt") and _looks_json(text)):
            return cls.from_json(text, source=source)
        return cls.from_csv(text, source=source)

    @classmethod
    def from_json(cls, text: str, *, source: str = "members") -> MemberList:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise MembersError(source, f"line {err.lineno} column {err.colno}", err.msg) from err
        items = doc.get("members") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise MembersError(source, None, 'expected {"members": [...]} or a list of members')
        entries = []
        for i, item in enumerate(items):
            where = f"members[{i}]"
            if not isinstance(item, dict):
                raise MembersError(source, where, "expected an object")
            entries.append((where, _member(item, source, where)))
        return cls._from_entries(entries, source)

    @classmethod
    def from_csv(cls, text: str, *, source: str = "members") -> MemberList:
        lines = text.splitlines()
        header = next((line for line in lines if line.strip()), None)
        if header is None:
            raise MembersError(source, None, "empty file (expected a header: plate,id,...)")
        delimiter = max(",;\t", key=header.count)
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        columns: dict[str, int] | None = None
        entries = []
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if columns is None:
                    columns = _csv_columns(row, source, reader.line_num)
                    continue
                where = f"line {reader.line_num}"
                item = {k: row[i] for k, i in columns.items() if i < len(row)}
                entries.append((where, _member(item, source, where)))
        except csv.Error as err:
            raise MembersError(source, f"line {reader.line_num}", str(err)) from err
        return cls._from_entries(entries, source)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[Member]:
        return iter(self._members)

    def get(self, plate: str) -> Member | None:
        """The member with exactly this plate (normalised first)."""
        i = self._by_plate.get(clean(plate))
        return None if i is None else self._members[i]

    def prepare(self, max_distance: int) -> None:
        """Build the fuzzy index for ``max_distance`` now (else the first lookup does)."""
        self._index_for(max_distance)

    def _index_for(self, depth: int) -> _FuzzyIndex:
        with self._lock:
            index = self._fuzzy.get(depth)
            if index is None:
                index = _FuzzyIndex([m.plate for m in self._members], depth)
                self._fuzzy[depth] = index
            return index

    def match(
        self,
        plate: str,
        candidates: Sequence[tuple[str, float]] = (),
        max_distance: int = 1,
    ) -> MemberMatch | None:
        """The member a read (``plate`` and its ``(plate, score)`` candidates) belongs to.

        Exact beats fuzzy; among exact hits the plate beats the candidates, and candidates
        go by score (two members' candidates at the same score: None). Fuzzy: the least edit
        distance (``<= max_distance``) over the plate and candidates; two members at that
        distance: None. Texts and plates under ``MIN_FUZZY_LENGTH`` characters only match
        exactly.
        """
        scores: dict[str, float] = {}  # normalised text -> score: the plate, then by score
        for raw, score in [(plate, math.inf), *sorted(candidates, key=lambda c: -c[1])]:
            text = clean(raw)
            if text and text not in scores:
                scores[text] = score
        texts = list(scores.items())
        exact = [(self._by_plate[t], t, s) for t, s in texts if t in self._by_plate]
        if exact:
            i, via, score = exact[0]
            if any(j != i and s == score for j, _, s in exact[1:]):
                return None
            return MemberMatch(self._members[i], "exact", via, 0)
        if max_distance <= 0 or not self._members:
            return None
        index = self._index_for(max_distance)
        best: dict[int, tuple[int, str]] = {}  # member index -> (distance, via)
        for text, _ in texts:
            if len(text) < MIN_FUZZY_LENGTH:
                continue
            for i in index.near(text):
                other = self._members[i].plate
                if len(other) < MIN_FUZZY_LENGTH:
                    continue
                d = edit_distance(text, other, max_distance)
                if d <= max_distance and (i not in best or d < best[i][0]):
                    best[i] = (d, text)
        if not best:
            return None
        least = min(d for d, _ in best.values())
        nearest = [i for i, (d, _) in best.items() if d == least]
        if len(nearest) > 1:
            return None
        return MemberMatch(self._members[nearest[0]], "fuzzy", best[nearest[0]][1], least)


def _looks_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _csv_columns(row: list[str], source: str, line: int) -> dict[str, int]:
    columns: dict[str, int] = {}
    for i, name in enumerate(row):
        key = name.strip().lower()
        if key in _FIELDS and key not in columns:
            columns[key] = i
    missing = [k for k in ("plate", "id") if k not in columns]
    if missing:
        raise MembersError(
            source, f"line {line}", f"header lacks {' and '.join(missing)} (plate,id,name,...)"
        )
    return columns


def _text(item: dict[str, Any], key: str, source: str, where: str) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MembersError(source, where, f"{key}: expected text, got {value!r}")
    return str(value).strip()


def _member(item: dict[str, Any], source: str, where: str) -> Member:
    raw = _text(item, "plate", source, where)
    plate = clean(raw)
    if not plate:
        raise MembersError(source, where, f"no plate (got {raw!r})" if raw else "no plate")
    member_id = _text(item, "id", source, where)
    if not member_id:
        raise MembersError(source, where, "no id")
    status = _text(item, "status", source, where).lower() or "active"
    name, plan = _text(item, "name", source, where), _text(item, "plan", source, where)
    return Member(member_id, plate, name, plan, status)


def _index(
    entries: Iterable[tuple[str, Member]], source: str
) -> tuple[tuple[Member, ...], dict[str, int]]:
    members: list[Member] = []
    by_plate: dict[str, int] = {}
    seen: dict[str, str] = {}
    for where, member in entries:
        plate = clean(member.plate)
        if not plate:
            raise MembersError(source, where, "no plate")
        if plate in by_plate:
            raise MembersError(source, where, f"plate {plate} already listed ({seen[plate]})")
        by_plate[plate], seen[plate] = len(members), where
        members.append(member if plate == member.plate else replace(member, plate=plate))
    return tuple(members), by_plate


class MembersFile:
    """The member list in ``path``, reloaded when the file changes.

    :meth:`current` is cheap: it stats the file at most every ``check_every_s`` and reloads it
    (in the calling thread) when its modification time, size or inode changed. A missing or
    bad file keeps the last good list (empty at first) and sets :attr:`error`; a good one
    clears it. Thread-safe.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        check_every_s: float = CHECK_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.check_every_s = check_every_s
        self.error: str | None = None
        self.loaded_at: float | None = None  # clock() of the last good load
        self._clock = clock
        self._list = MemberList(source=str(self.path))
        self._seen: tuple[int, int, int] | None = None  # (mtime_ns, size, inode) last looked at
        self._checked = -math.inf
        self._lock = threading.Lock()

    def current(self) -> MemberList:
        now = self._clock()
        if now - self._checked >= self.check_every_s:
            with self._lock:
                if now - self._checked >= self.check_every_s:
                    self._checked = now
                    self._refresh(now)
        return self._list

    @property
    def loaded(self) -> MemberList:
        """The list as last loaded, without looking at the file (no I/O: for status pages)."""
        return self._list

    def reload(self) -> MemberList:
        """Read the file now, changed or not."""
        with self._lock:
            self._seen = None
            self._checked = now = self._clock()
            self._refresh(now)
        return self._list

    def _refresh(self, now: float) -> None:
        try:
            st = os.stat(self.path)
        except OSError as err:
            error = f"{self.path}: cannot read: {err.strerror or err}"
            if error != self.error:
                log.warning("members: %s; keeping %d members", error, len(self._list))
            self.error, self._seen = error, None
            return
        seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            loaded = MemberList.load(self.path)
        except MembersError as err:
            self.error = str(err)
            log.warning("members: %s; keeping %d members", err, len(self._list))
            return
        self._list, self.error, self.loaded_at = loaded, None, now
        log.info("members: %d loaded from %s", len(loaded), self.path)
