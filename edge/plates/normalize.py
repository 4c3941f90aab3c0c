"""Plate text to the site's formats: normalising and fixing the reader's look-alike characters.

Pure functions. A plate is compared and stored *normalised*: upper case, ASCII letters and
digits only (``"ab-123 cd"`` → ``"AB123CD"``). A format is a regular expression over normalised
text (``[A-Z]{2}[0-9]{3}[A-Z]{2}``) that must match it whole.

OCR confuses a few letters and digits (``O``/``0``, ``I``/``1``, ``S``/``5``...). Where the text
matches no format as read, :func:`fit_plate` tries the look-alikes, fewest substitutions first
(and the likelier look-alike first among equals), and, failing that, the text without one stray
character at either end (a plate's border or badge read as a letter). The work is bounded: at
most :data:`MAX_SUBSTITUTIONS` characters are changed.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = ["ANY_PLATE", "CONFUSIONS", "MAX_SUBSTITUTIONS", "clean", "fit_plate", "fits"]

# What a plate is when the site lists no formats: 4 to 10 letters and digits.
ANY_PLATE = r"[A-Z0-9]{4,10}"
MAX_SUBSTITUTIONS = 3
# Character -> look-alikes of the other kind, likeliest first.
CONFUSIONS: dict[str, str] = {
    "0": "ODQ", "O": "0", "D": "0", "Q": "0",
    "1": "ILT", "I": "1", "L": "1",
    "2": "Z", "Z": "2",
    "5": "S", "S": "5",
    "8": "B", "B": "8",
    "6": "G", "G": "6",
    "4": "A", "A": "4",
    "7": "T", "T": "7",
}  # fmt: skip
_SECOND_CHOICE = 0.25  # extra cost of a look-alike that is not the first listed
_TRIM_COST = 1.5  # dropping a stray end character costs more than one substitution
_NOT_PLATE = re.compile(r"[^A-Z0-9]")


def clean(text: str) -> str:
    """Upper case, ASCII letters and digits only (full-width forms folded, the rest dropped)."""
    return _NOT_PLATE.sub("", unicodedata.normalize("NFKC", text).upper())


@lru_cache(maxsize=32)
def _compiled(formats: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((f, re.compile(f)) for f in formats)


def fits(plate: str, formats: Iterable[str]) -> str | None:
    """The first format ``plate`` (already clean) matches whole, or None."""
    for pattern, regex in _compiled(tuple(formats) or (ANY_PLATE,)):
        if regex.fullmatch(plate):
            return pattern
    return None


def _variants(text: str, max_subs: int) -> Iterable[tuple[int, float, str]]:
    """(substitutions, cost, variant) with 1..``max_subs`` look-alikes, fewest first."""
    spots = [i for i, c in enumerate(text) if c in CONFUSIONS]
    for k in range(1, min(max_subs, len(spots)) + 1):
        for where in itertools.combinations(spots, k):
            choices = [enumerate(CONFUSIONS[text[i]]) for i in where]
            for picked in itertools.product(*choices):
                chars = list(text)
                cost = float(k)
                for i, (rank, alt) in zip(where, picked, strict=True):
                    chars[i] = alt
                    cost += _SECOND_CHOICE * rank
                yield k, cost, "".join(chars)


def _best(text: str, formats: Sequence[str], base_cost: float) -> tuple[float, str, str] | None:
    """The cheapest variant of ``text`` that fits a format: (cost, plate, pattern)."""
    pattern = fits(text, formats)
    if pattern is not None:
        return base_cost, text, pattern
    best: tuple[float, str, str] | None = None
    level = 0
    for subs, cost, variant in _variants(text, MAX_SUBSTITUTIONS):
        if best is not None and subs > level:
            break  # a fit with fewer substitutions was found; more cannot beat it
        level = subs
        pattern = fits(variant, formats)
        if pattern is not None and (best is None or base_cost + cost < best[0]):
            best = (base_cost + cost, variant, pattern)
    return best


def fit_plate(text: str, formats: Sequence[str]) -> tuple[str, str | None]:
    """``text`` cleaned and fitted to one of ``formats``: (plate, matching pattern).

    Text that already matches a format is returned cleaned and unchanged. Otherwise the variant
    with the fewest look-alike substitutions (:data:`CONFUSIONS`) that matches wins; then the
    text without a stray first or last character (formats given). No fit:
    ``(clean(text), None)``. With no formats, any 4 to 10 letters and digits fit (pattern
    :data:`ANY_PLATE`).
    """
    cleaned = clean(text)
    if not cleaned:
        return cleaned, None
    found = _best(cleaned, formats, 0.0)
    if found is None and formats and len(cleaned) > 4:
        trims = [_best(cleaned[1:], formats, _TRIM_COST), _best(cleaned[:-1], formats, _TRIM_COST)]
        fitted = [t for t in trims if t is not None]
        found = min(fitted, key=lambda t: t[0]) if fitted else None
    if found is None:
        return cleaned, None
    return found[1], found[2]
