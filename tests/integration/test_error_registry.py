"""One mapping from errors to HTTP answers: every code has one status (the registry's), every
error class the programs raise agrees with it, and every route documents the codes it raises.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from typing import Any, get_args

import pytest
from fastapi.routing import APIRoute

from edge.api.app import create_app
from edge.locks.errors import CommandErrorCode
from fleet_common.errors import FleetError
from fleet_common.wire.errors import ERROR_CODES, _codes, status_of
from tests.conftest import EdgeFactory

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

_CODE_IN_DOC = re.compile(r"`([a-z_]+)`")
_RAISED = re.compile(r'ApiError\(\s*"([a-z_]+)"')


async def test_a_code_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        _codes(("x", 400, "one"), ("x", 409, "another"))


def _error_classes(package: str) -> list[type[FleetError]]:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if ".migrations" in info.name or info.name.endswith((".sim", "__main__")):
            continue
        importlib.import_module(info.name)
    found: list[type[FleetError]] = []
    todo: list[type[FleetError]] = [FleetError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.split(".")[0] == package:
                found.append(sub)
    return found


@pytest.mark.parametrize("package", ["edge", "cloud_sync"])
async def test_every_error_class_has_its_codes_status(package: str) -> None:
    classes = _error_classes(package)
    assert len(classes) > 5
    for cls in classes:
        code = cls.__dict__.get("code")
        if code is None or code == "internal":  # inherits, or never reaches a client
            continue
        assert code in ERROR_CODES, f"{cls.__qualname__}: code {code!r} is not registered"
        assert cls.http_status == status_of(code), f"{cls.__qualname__}: {code}"


def _documented(operation: dict[str, Any]) -> dict[str, int]:
    """Each code a route's responses name, with the status it is listed under."""
    found: dict[str, int] = {}
    for status, response in operation.get("responses", {}).items():
        for code in _CODE_IN_DOC.findall(response.get("description", "")):
            if code in ERROR_CODES:
                found[code] = int(status)
    return found


async def test_every_route_documents_the_codes_it_raises(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(start=False)
    guard = create_app(edge)
    api = guard.inner  # type: ignore[attr-defined]
    doc = api.openapi()
    checked = 0
    for route in api.routes:
        if not isinstance(route, APIRoute) or route.path not in doc["paths"]:
            continue  # /docs and /openapi.json are not in the document
        for method in route.methods:
            operation = doc["paths"][route.path][method.lower()]
            documented = _documented(operation)
            for code, status in documented.items():  # listed under the registry's status
                assert status == status_of(code), f"{method} {route.path}: {code} under {status}"
            raised = set(_RAISED.findall(inspect.getsource(route.endpoint)))
            missing = raised - documented.keys()
            assert not missing, f"{method} {route.path} raises undocumented {sorted(missing)}"
            checked += len(raised)
    assert checked > 5  # the scan found the routes' refusals


async def test_cart_commands_document_every_command_error(edge_factory: EdgeFactory) -> None:
    """Commands raise the lock service's CommandError with any of its codes."""
    doc = create_app(edge_factory(start=False)).inner.openapi()  # type: ignore[attr-defined]
    for action in ("unlock", "lock"):
        operation = doc["paths"][f"/api/carts/{{cart_id}}/{action}"]["post"]
        assert set(get_args(CommandErrorCode)) <= _documented(operation).keys()
