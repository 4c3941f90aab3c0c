"""A small, tolerant reader of the Prometheus text exposition format (what ``/metrics`` sends).

The console only needs sample values, so this is a pure function of text: ``# HELP``/``# TYPE``
and other comments are skipped, timestamps after the value are ignored, a malformed line is
skipped rather than failing the whole scrape. Keys are canonical: ``name`` without labels,
``name{a="1",b="2"}`` with them (label order as sent, values re-escaped). prometheus-client is an
edge dependency only; this keeps the console's extra lighter.
"""

from __future__ import annotations

import math
import re

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*\"")
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


def metric_key(name: str, labels: list[tuple[str, str]] | tuple[tuple[str, str], ...] = ()) -> str:
    """The key :func:`parse_metrics` uses for ``name`` with ``labels``."""
    if not labels:
        return name
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return f"{name}{{{body}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_value(text: str) -> float:
    """A sample value: a float, ``NaN``, ``+Inf``/``Inf``/``-Inf``. Raises ``ValueError``."""
    lowered = text.lower()
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    return float(text)


def _labels(line: str, pos: int) -> tuple[list[tuple[str, str]], int]:
    """Parse ``{a="x",b="y"}`` starting after the ``{``; returns labels and the position after
    the ``}``. Raises ``ValueError`` on malformed input."""
    labels: list[tuple[str, str]] = []
    while True:
        while pos < len(line) and line[pos] in " \t,":
            pos += 1
        if pos < len(line) and line[pos] == "}":
            return labels, pos + 1
        found = _LABEL_NAME.match(line, pos)
        if found is None:
            raise ValueError("bad label")
        pos = found.end()
        chars: list[str] = []
        while True:
            if pos >= len(line):
                raise ValueError("unterminated label value")
            ch = line[pos]
            if ch == "\\" and pos + 1 < len(line):
                chars.append(_UNESCAPE.get(line[pos + 1], "\\" + line[pos + 1]))
                pos += 2
            elif ch == '"':
                pos += 1
                break
            else:
                chars.append(ch)
                pos += 1
        labels.append((found.group(1), "".join(chars)))


def parse_metrics(text: str) -> dict[str, float]:
    """Every sample in ``text`` as ``{key: value}`` (see :func:`metric_key`)."""
    samples: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name = _NAME.match(line)
        if name is None:
            continue
        pos = name.end()
        labels: list[tuple[str, str]] = []
        if pos < len(line) and line[pos] == "{":
            try:
                labels, pos = _labels(line, pos + 1)
            except ValueError:
                continue
        rest = line[pos:].split()
        if not rest:
            continue
        try:
            value = parse_value(rest[0])
        except ValueError:
            continue
        samples[metric_key(name.group(0), labels)] = value
    return samples
