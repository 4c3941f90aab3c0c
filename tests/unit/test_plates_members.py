"""Club members (edge/plates/members.py): loading, matching with candidates and edits, reload."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.plates.members import (
    Member,
    MemberList,
    MemberMatch,
    MembersError,
    MembersFile,
    edit_distance,
)

pytestmark = pytest.mark.unit

CLUB = MemberList(
    [
        Member("m1", "AB123CD", "Ann", "gold"),
        Member("m2", "XY987ZZ", "Bob", "basic", "suspended"),
        Member("m3", "AB124CD", "Cid", "gold"),  # one edit from m1
        Member("m4", "KLM4567", "Dee", "basic"),
    ]
)


def test_edit_distance() -> None:
    assert edit_distance("", "") == 0
    assert edit_distance("ABC", "ABC") == 0
    assert edit_distance("ABC", "ABD") == 1
    assert edit_distance("ABC", "AC") == 1
    assert edit_distance("AC", "ABC") == 1
    assert edit_distance("ABCD", "BADC") == 3
    assert edit_distance("KITTEN", "SITTING") == 3
    assert edit_distance("KITTEN", "SITTING", 1) == 2  # capped at limit + 1
    assert edit_distance("A", "ABCDEF", 2) == 3


@given(st.text("ABC01", max_size=8), st.text("ABC01", max_size=8), st.integers(0, 3))
def test_bounded_distance_agrees_with_the_full_one(a: str, b: str, limit: int) -> None:
    full = edit_distance(a, b)
    assert edit_distance(a, b, limit) == min(full, limit + 1)
    assert edit_distance(b, a) == full


def test_exact_match_on_the_plate_normalised() -> None:
    match = CLUB.match("ab-123 cd", [], 1)
    assert match == MemberMatch(CLUB.get("AB123CD"), "exact", "AB123CD", 0)  # type: ignore[arg-type]
    assert match is not None
    assert match.payload() == {"id": "m1", "name": "Ann", "plan": "gold", "status": "active",
                               "match": "exact"}  # fmt: skip


def test_an_exact_candidate_beats_a_fuzzy_plate() -> None:
    # The plate is one edit from m1 and m3 (ambiguous), but a candidate is m4 exactly.
    match = CLUB.match("AB125CD", [("KLM4567", 0.2), ("ZZZ", 0.9)], 1)
    assert match is not None
    assert (match.member.id, match.match, match.via) == ("m4", "exact", "KLM4567")
    assert match.distance == 0


def test_the_plate_beats_candidates_and_candidates_go_by_score() -> None:
    match = CLUB.match("XY987ZZ", [("KLM4567", 0.99)], 1)
    assert match is not None
    assert match.member.id == "m2"
    match = CLUB.match("NOPE", [("KLM4567", 0.5), ("XY987ZZ", 0.8)], 1)
    assert match is not None
    assert match.member.id == "m2"
    assert CLUB.match("NOPE", [("KLM4567", 0.5), ("XY987ZZ", 0.5)], 1) is None  # a tie


def test_fuzzy_match_one_edit_away() -> None:
    for read in ("KLM456", "KLM45677", "KLN4567", "KLM4S67"):
        match = CLUB.match(read, [], 1)
        assert match is not None, read
        assert (match.member.id, match.match, match.via, match.distance) == ("m4", "fuzzy", read, 1)
    assert CLUB.match("KLN456", [], 1) is None  # two edits
    assert CLUB.match("KLN4567", [], 0) is None  # fuzzy off
    match = CLUB.match("KLN456", [], 2)
    assert match is not None
    assert (match.member.id, match.distance) == ("m4", 2)


def test_fuzzy_through_a_candidate_and_the_nearest_wins() -> None:
    match = CLUB.match("QQQQQQ", [("XY987Z", 0.3)], 1)
    assert match is not None
    assert (match.member.id, match.match, match.via) == ("m2", "fuzzy", "XY987Z")
    # With 2 edits allowed, XY98ZZ is 1 from m2 and KLM456 is 1 from m4: a tie, no member.
    assert CLUB.match("XY98ZZ", [("KLM456", 0.3)], 2) is None
    match = CLUB.match("XY987Z", [("KLM45", 0.3)], 2)  # 1 edit from m2 beats 2 from m4
    assert match is not None
    assert (match.member.id, match.distance) == ("m2", 1)


def test_short_texts_match_only_exactly() -> None:
    club = MemberList([Member("v", "ABC"), Member("w", "WXYZ")])
    assert club.match("ABD", [], 1) is None
    assert club.match("WXY", [], 1) is None  # too short a read
    match = club.match("abc", [], 1)
    assert match is not None
    assert match.member.id == "v"
    match = club.match("WXYZ1", [], 1)
    assert match is not None
    assert (match.member.id, match.match) == ("w", "fuzzy")


def test_an_ambiguous_fuzzy_match_lets_nobody_in() -> None:
    assert CLUB.match("AB125CD", [], 1) is None  # one edit from both m1 and m3
    assert CLUB.match("AB12CD", [], 1) is None


def test_statuses_are_kept_and_inactive_members_still_match() -> None:
    match = CLUB.match("XY987ZZ", [], 1)
    assert match is not None
    assert match.member.status == "suspended"
    assert len(CLUB) == 4
    assert [m.id for m in CLUB] == ["m1", "m2", "m3", "m4"]
    assert CLUB.get("nope") is None


def test_an_empty_list_matches_nothing() -> None:
    assert MemberList().match("AB123CD", [("AB123CD", 1.0)], 1) is None
    assert MemberList().match("", [], 1) is None


def test_a_hundred_thousand_members() -> None:
    letters = "ABCDEFGHJKLMNPRSTVWXYZ0123456789"  # 32: no I, O, Q, U

    def nth(n: int) -> str:  # 100 000 distinct plates spread over 32**7
        n = n * 2_654_435_761 % 32**7
        return "".join(letters[n >> (5 * k) & 31] for k in range(7))

    plates = {nth(n) for n in range(100_000)}
    assert len(plates) == 100_000
    club = MemberList(Member(str(i), p) for i, p in enumerate(plates))
    club.prepare(1)
    sample = random.Random(6).sample(sorted(plates), 200)
    for plate in sample:
        exact = club.match(plate, [], 1)
        assert exact is not None
        assert (exact.member.plate, exact.match) == (plate, "exact")
        typo = plate[:3] + ("I" if plate[3] != "I" else "O") + plate[4:]  # I, O: not in the list
        fuzzy = club.match(typo, [("QQQQQQQ", 0.5)], 1)
        if fuzzy is not None:  # None only when another member is one edit away too
            assert (fuzzy.member.plate, fuzzy.match, fuzzy.distance) == (plate, "fuzzy", 1)
        else:
            assert sum(edit_distance(typo, p, 1) <= 1 for p in plates) > 1
        assert club.match(plate.replace(plate[0], "U", 1) + "UU", [], 1) is None


# ---------------------------------------------------------------------- files
def test_json_with_members_key_and_bare_list(tmp_path: Path) -> None:
    doc = {"members": [
        {"plate": "ab 123 cd", "id": 1, "name": "Ann", "plan": "gold"},
        {"plate": "XY-987-ZZ", "id": "m2", "status": "Suspended", "extra": True},
    ]}  # fmt: skip
    wrapped = tmp_path / "m.json"
    wrapped.write_text(json.dumps(doc))
    bare = tmp_path / "bare.members"  # no suffix: told by the first character
    bare.write_text(json.dumps(doc["members"]))
    for path in (wrapped, bare):
        club = MemberList.load(path)
        assert list(club) == [
            Member("1", "AB123CD", "Ann", "gold", "active"),
            Member("m2", "XY987ZZ", "", "", "suspended"),
        ]
        assert club.source == str(path)


def test_csv_with_header_in_any_order(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "\ufeffID,Plate,Name,Plan,Status,Notes\n"
        'm1,AB-123-CD,"Doe, Ann",gold,active,x\n'
        "\n"
        "m2,xy987zz,Bob,basic,,\n"
        "m3,KLM 4567,Dee,,cancelled\n",
        encoding="utf-8",
    )
    club = MemberList.load(path)
    assert list(club) == [
        Member("m1", "AB123CD", "Doe, Ann", "gold", "active"),
        Member("m2", "XY987ZZ", "Bob", "basic", "active"),  # status defaults to active
        Member("m3", "KLM4567", "Dee", "", "cancelled"),
    ]
    semi = tmp_path / "semi.csv"
    semi.write_text("plate;id\nAB123CD;7\n")
    assert list(MemberList.load(semi)) == [Member("7", "AB123CD")]


@pytest.mark.parametrize(
    ("name", "content", "where", "message"),
    [
        ("a.json", '{"members": [{"plate": "AB1", "id": 1},', "line 1 column", "Expecting"),
        ("a.json", '{"people": []}', None, "expected"),
        ("a.json", '[{"plate": "AB1", "id": 1}, 5]', "members[1]", "expected an object"),
        ("a.json", '[{"plate": "--", "id": 1}]', "members[0]", "no plate"),
        ("a.json", '[{"plate": "AB1"}]', "members[0]", "no id"),
        ("a.json", '[{"plate": "AB1", "id": [1]}]', "members[0]", "id: expected text"),
        ("a.json", '[{"plate": "AB1", "id": 1}, {"plate": "ab-1", "id": 2}]', "members[1]",
         "plate AB1 already listed (members[0])"),
        ("a.csv", "id,name\n1,Ann\n", "line 1", "header lacks plate"),
        ("a.csv", "plate,id\nAB1,1\nAB2,\n", "line 3", "no id"),
        ("a.csv", "plate,id\nAB1,1\n\nab1,2\n", "line 4", "already listed (line 2)"),
        ("a.csv", "", None, "empty file"),
        ("a.csv", b"plate,id\n\xff\xfe,1\n", "byte 9", "not UTF-8"),
    ],
)  # fmt: skip
def test_bad_files_say_where(
    tmp_path: Path, name: str, content: str | bytes, where: str | None, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(MembersError) as info:
        MemberList.load(path)
    err = info.value
    assert err.source == str(path)
    if where is None:
        assert err.where is None
    else:
        assert err.where is not None
        assert err.where.startswith(where)
    assert message in err.message
    assert str(err).startswith(str(path))


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MembersError, match="cannot read"):
        MemberList.load(tmp_path / "none.csv")


def test_a_list_built_in_code_checks_too() -> None:
    with pytest.raises(MembersError, match=r"member 2: plate AB1 already listed \(member 1\)"):
        MemberList([Member("1", "AB1"), Member("2", "ab-1")])
    with pytest.raises(MembersError, match="member 1: no plate"):
        MemberList([Member("1", " - ")])
    assert MemberList([Member("1", "ab 1")]).get("AB1") == Member("1", "AB1")


# ---------------------------------------------------------------------- following the file
class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _error(members: MembersFile) -> str:
    return members.error or ""  # (a call: mypy does not narrow it across reloads)


def _write(path: Path, text: str, mtime: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime, mtime))  # a distinct mtime even within one clock tick


def test_the_file_is_reloaded_when_it_changes_and_a_bad_one_keeps_the_last_list(
    tmp_path: Path,
) -> None:
    path = tmp_path / "members.csv"
    clock = _Clock()
    members = MembersFile(path, clock=clock)
    assert len(members.current()) == 0  # no file yet: empty, and said so
    assert "cannot read" in _error(members)
    _write(path, "plate,id\nAB123CD,1\n", 1_000_000_000)
    assert len(members.current()) == 0  # stat at most once a second
    clock.now += 1.0
    first = members.current()
    assert [m.id for m in first] == ["1"]
    assert not _error(members)
    assert members.loaded_at == clock.now
    clock.now += 1.0
    assert members.current() is first  # unchanged file: not read again

    _write(path, "plate,id\nAB123CD,1\nAB123CD,2\n", 2_000_000_000)  # bad
    clock.now += 1.0
    assert members.current() is first
    assert "line 3" in _error(members)
    clock.now += 1.0
    assert members.current() is first  # still bad, not re-read, error kept
    assert _error(members)

    _write(path, "plate,id\nAB123CD,1\nXY987ZZ,2\n", 3_000_000_000)  # fixed
    clock.now += 1.0
    assert [m.id for m in members.current()] == ["1", "2"]
    assert not _error(members)

    path.unlink()  # deleted: the last list stays
    clock.now += 1.0
    assert len(members.current()) == 2
    assert _error(members)
    _write(path, '{"members": [{"plate": "KLM4567", "id": "9"}]}', 4_000_000_000)
    assert len(members.reload()) == 2  # a .csv name: read as CSV, bad header: the last list
    assert "header lacks plate" in _error(members)


def test_reload_reads_now(tmp_path: Path) -> None:
    path = tmp_path / "members.json"
    _write(path, '[{"plate": "AB1", "id": 1}]', 1_000_000_000)
    members = MembersFile(path, clock=_Clock())
    assert len(members.current()) == 1
    _write(path, '[{"plate": "AB1", "id": 1}, {"plate": "AB2", "id": 2}]', 1_000_000_000)
    assert len(members.current()) == 1  # within the second
    assert len(members.reload()) == 2
