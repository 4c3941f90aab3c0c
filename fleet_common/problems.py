"""Validation problems as people and clients read them: ``{path, reason}`` per problem.

One formatter for every place that turns pydantic's errors into words: a config file at
start-up (one line per problem), the config API's 422 and the FastAPI 422s of the edge and the
cloud (a list of ``{path, reason}``). Never the input itself: a value may be a secret, and a
request's body is not echoed back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

MAX_REASON: Final = 300  # characters of one reason
MAX_PROBLEMS: Final = 20  # problems listed in one answer


def short(text: str, limit: int = MAX_REASON) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis says it was)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dotted(location: Sequence[Any]) -> str:
    """pydantic's location as a dotted path (``camera.source``); ``(root)`` for the whole."""
    return ".".join(str(p) for p in location) or "(root)"


def problem_list(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """pydantic's ``errors()`` as ``[{"path", "reason"}]``, at most :data:`MAX_PROBLEMS`."""
    found = []
    for number, error in enumerate(errors):
        if number == MAX_PROBLEMS:
            break
        found.append({"path": dotted(error.get("loc", ())),
                      "reason": short(str(error.get("msg", "invalid")))})  # fmt: skip
    return found


def problem_lines(errors: Iterable[Mapping[str, Any]]) -> str:
    """One line per problem, ``path: reason`` (for a config file's errors at start-up)."""
    return "\n".join(f"{p['path']}: {p['reason']}" for p in problem_list(errors))


def listed(problems: Iterable[Mapping[str, str]]) -> str:
    """The problems in one sentence: ``a.b: reason; c: reason``."""
    return "; ".join(f"{p['path']}: {p['reason']}" for p in problems)
