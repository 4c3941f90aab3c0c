"""The route table: every route, the role it needs, and its raw handler if it has one.

One table serves three purposes, so they cannot drift apart: the guard checks roles against it,
the raw (hot) routes are dispatched from it, and the OpenAPI document's security comes from it.
A test fails if FastAPI serves a route this table does not list.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from edge.keys import Role

RawHandler = Callable[..., Awaitable[None]]

# Served by FastAPI without a key: the API contract itself.
OPEN_DOC_PATHS = frozenset({"/openapi.json", "/docs"})


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    template: str
    role: Role | None  # None: open to anyone
    raw: RawHandler | None = None  # None: served by the FastAPI app
    summary: str = ""

    @property
    def pattern(self) -> re.Pattern[str] | None:
        if "{" not in self.template:
            return None
        # At most 19 ASCII digits: ids are SQLite INTEGERs (< 2**63), and a longer number is no
        # route (404) rather than a huge int to convert. Routes bound the exact maximum.
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[0-9]{1,19})", self.template)
        return re.compile(f"^{regex}$")


class RouteTable:
    """Exact paths by dictionary, templated ones (integer parameters only) by regex."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._exact: dict[tuple[str, str], Route] = {}
        self._templated: list[tuple[Route, re.Pattern[str]]] = []
        self._paths: set[str] = set()
        for route in routes:
            pattern = route.pattern
            if pattern is None:
                self._exact[(route.method, route.template)] = route
                self._paths.add(route.template)
            else:
                self._templated.append((route, pattern))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, Any], bool]:
        """``(route, path params, path_known)``; path_known tells 405 from 404 on a miss."""
        if method == "HEAD":
            method = "GET"
        route = self._exact.get((method, path))
        if route is not None:
            return route, {}, True
        known = path in self._paths
        for candidate, pattern in self._templated:
            found = pattern.match(path)
            if found is not None:
                if candidate.method == method:
                    return candidate, {k: int(v) for k, v in found.groupdict().items()}, True
                known = True
        return None, {}, known
