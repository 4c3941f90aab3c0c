"""Plate text normalisation: cleaning, format fitting, look-alike characters."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import DEFAULT_PLATE_FORMATS
from edge.plates.normalize import ANY_PLATE, CONFUSIONS, MAX_SUBSTITUTIONS, clean, fit_plate, fits

pytestmark = pytest.mark.unit

FORMATS = list(DEFAULT_PLATE_FORMATS)
FR = r"[A-Z]{2}[0-9]{3}[A-Z]{2}"
LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"  # as the synthetic scene draws them: no I, O, Q, U
# Look-alikes that restore to themselves: a digit read as this letter comes back as the digit,
# and a letter read as this digit comes back as the letter (CONFUSIONS' first choice).
DIGIT_AS_LETTER = {d: CONFUSIONS[d][0] for d in "01245678"}
LETTER_AS_DIGIT = {
    letter: digit for digit, letter in DIGIT_AS_LETTER.items() if CONFUSIONS[letter][0] == digit
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ab-123 cd", "AB123CD"),
        ("  XRA·5421\n", "XRA5421"),
        ("\uff21\uff22\uff11\uff12", "AB12"),  # full-width forms (a CJK alphabet's recogniser)
        ("Ré-9", "R9"),  # accented letters are not plate characters
        ("", ""),
        ("12:34:56", "123456"),
    ],
)
def test_clean(text: str, expected: str) -> None:
    assert clean(text) == expected


@pytest.mark.parametrize(
    ("text", "plate", "pattern"),
    [
        ("AB-123-CD", "AB123CD", FR),
        ("ab12 cde", "AB12CDE", r"[A-Z]{2}[0-9]{2}[A-Z]{3}"),
        ("56-MJN-2", "56MJN2", r"[0-9]{2}[A-Z]{3}[0-9]"),
        ("A8-I23-CD", "AB123CD", FR),  # B read as 8, 1 read as I
        ("XRA-S421", "XRA5421", r"[A-Z]{3}[0-9]{4}"),
        ("0BKK528", "0BKK528", r"[0-9][A-Z]{3}[0-9]{3}"),  # matches as read: left alone
        ("OBKK528", "0BKK528", r"[0-9][A-Z]{3}[0-9]{3}"),
        ("1AB123CD", "AB123CD", FR),  # a stray character at one end (the plate's badge)
        ("AB123CDI", "AB123CD", FR),
    ],
)
def test_fit_plate(text: str, plate: str, pattern: str) -> None:
    assert fit_plate(text, FORMATS) == (plate, pattern)


@pytest.mark.parametrize("text", ["BAY 1", "12:34:56", "HELLO", "A", "ABCDEFGHIJKLMNOP"])
def test_no_fit_gives_the_cleaned_text(text: str) -> None:
    assert fit_plate(text, FORMATS) == (clean(text), None)


def test_empty_text() -> None:
    assert fit_plate("", FORMATS) == ("", None)
    assert fit_plate("--", []) == ("", None)


def test_no_formats_accept_4_to_10_letters_and_digits() -> None:
    assert fit_plate("bay-1", []) == ("BAY1", ANY_PLATE)
    assert fit_plate("ABCDEFGHIJ", []) == ("ABCDEFGHIJ", ANY_PLATE)
    assert fit_plate("ABC", []) == ("ABC", None)
    assert fit_plate("ABCDEFGHIJK", []) == ("ABCDEFGHIJK", None)


def test_fewest_substitutions_win() -> None:
    # Two substitutions fit the first format (5Z8 -> SZB), one fits the second (Z -> 2).
    first, second = r"[A-Z]{3}[0-9]{4}", r"[0-9]{2}[A-Z0-9]{5}"
    assert fit_plate("5Z84567", [first, second]) == ("5284567", second)
    assert fit_plate("5Z84567", [first]) == ("SZB4567", first)


def test_the_likelier_look_alike_wins() -> None:
    # 0 in a letter's place: O before D before Q.
    assert fit_plate("A0", [r"[A-Z]{2}"]) == ("AO", r"[A-Z]{2}")
    assert fit_plate("A0", [r"A[DQ]"]) == ("AD", r"A[DQ]")


def test_substitutions_are_bounded() -> None:
    assert MAX_SUBSTITUTIONS == 3
    assert fit_plate("OOOO000", [r"[A-Z]{7}"]) == ("OOOOOOO", r"[A-Z]{7}")
    assert fit_plate("OOO0000", [r"[A-Z]{7}"]) == ("OOO0000", None)  # four away: not tried


def test_fits() -> None:
    assert fits("AB123CD", FORMATS) == FR
    assert fits("AB123C", FORMATS) is None
    assert fits("AB12", []) == ANY_PLATE


def test_formats_are_whole_matches() -> None:
    assert fit_plate("XAB123CDX", [FR]) == ("XAB123CDX", None)


# ---------------------------------------------------------------------- properties
def _plate(pattern: str) -> st.SearchStrategy[str]:
    """Plates of one of the scene's layouts (L letter, D digit)."""
    parts = [
        st.sampled_from(LETTERS) if c == "L" else st.sampled_from("0123456789") for c in pattern
    ]
    return st.tuples(*parts).map("".join)


LAYOUTS = {
    "LLDDDLL": FR,
    "LLDDLLL": r"[A-Z]{2}[0-9]{2}[A-Z]{3}",
    "DDLLLD": r"[0-9]{2}[A-Z]{3}[0-9]",
    "DDDDLLL": r"[0-9]{4}[A-Z]{3}",
    "DLLLDDD": r"[0-9][A-Z]{3}[0-9]{3}",
    "LLLDDDD": r"[A-Z]{3}[0-9]{4}",
}


@st.composite
def plate_and_format(draw: st.DrawFn) -> tuple[str, str]:
    layout = draw(st.sampled_from(sorted(LAYOUTS)))
    return draw(_plate(layout)), LAYOUTS[layout]


@given(plate_and_format(), st.data())
@settings(max_examples=300, deadline=None)
def test_confusions_injected_are_restored(pf: tuple[str, str], data: st.DataObject) -> None:
    """A plate with up to MAX_SUBSTITUTIONS look-alikes injected comes back as it was (its own
    format the only one listed: with several, another format may be as near)."""
    plate, pattern = pf
    spots = [
        i
        for i, c in enumerate(plate)
        if (c in DIGIT_AS_LETTER if c.isdigit() else c in LETTER_AS_DIGIT)
    ]
    chosen = data.draw(
        st.sets(st.sampled_from(spots), max_size=MAX_SUBSTITUTIONS) if spots else st.just(set())
    )
    read = list(plate)
    for i in chosen:
        c = plate[i]
        read[i] = DIGIT_AS_LETTER[c] if c.isdigit() else LETTER_AS_DIGIT[c]
    dashed = "-".join(("".join(read)[:2], "".join(read)[2:]))  # and some punctuation
    assert fit_plate(dashed, [pattern]) == (plate, pattern)


@given(plate_and_format(), st.data())
@settings(max_examples=200, deadline=None)
def test_injected_confusions_fit_some_format_nearby(
    pf: tuple[str, str], data: st.DataObject
) -> None:
    """With all the formats, a read with injected look-alikes still fits one, changing no more
    characters than were injected."""
    plate, _ = pf
    spots = [i for i, c in enumerate(plate) if c in CONFUSIONS]
    chosen = data.draw(st.sets(st.sampled_from(spots), max_size=2) if spots else st.just(set()))
    read = list(plate)
    for i in chosen:
        read[i] = CONFUSIONS[plate[i]][0]
    fitted, pattern = fit_plate("".join(read), FORMATS)
    assert pattern is not None
    assert re.fullmatch(pattern, fitted)
    assert sum(a != b for a, b in zip(fitted, read, strict=True)) <= len(chosen)


@given(st.sampled_from(sorted(LAYOUTS)).flatmap(_plate), st.sampled_from(["", "-", " "]))
@settings(max_examples=200, deadline=None)
def test_text_that_matches_is_never_changed(plate: str, sep: str) -> None:
    spaced = plate[:2] + sep + plate[2:]
    fitted, pattern = fit_plate(spaced, FORMATS)
    assert fitted == plate
    assert pattern is not None
    assert re.fullmatch(pattern, plate)


@given(st.text(max_size=14))
@settings(max_examples=300, deadline=None)
def test_any_text_cleans_to_plate_characters(text: str) -> None:
    plate, pattern = fit_plate(text, FORMATS)
    assert re.fullmatch(r"[A-Z0-9]*", plate)
    assert clean(plate) == plate
    if pattern is None:
        assert plate == clean(text)
    else:
        assert re.fullmatch(pattern, plate)
