"""Who may call a route: every route declares ``public``, ``device`` or a role, here.

:func:`user` and :func:`device` are FastAPI dependencies; :func:`declare` puts the route's
access into its OpenAPI operation (``x-required-role``), and ``create_app`` refuses to build
an app with a route that declares nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import Request

from cloud_sync.auth.scope import Principal, Role
from cloud_sync.devices.keys import PREFIX, DeviceAuth
from cloud_sync.errors import Unauthorized
from cloud_sync.service import Cloud

Access = Literal["public", "device", "viewer", "operator", "admin"]


def declare(access: Access) -> dict[str, Any]:
    """Keyword arguments of a route decorator that declare its access."""
    return {"openapi_extra": {"x-required-role": access}}


def cloud_of(request: Request) -> Cloud:
    cloud: Cloud = request.app.state.cloud
    return cloud


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _bearer(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthorized("send `Authorization: Bearer TOKEN`")
    return credentials.strip()


def user(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    async def dependency(request: Request) -> Principal:
        token = _bearer(request)
        if token.startswith(PREFIX):
            raise Unauthorized("a device key cannot call this route: log in as a user")
        who = await cloud_of(request).principal(token)
        who.require(role)
        return who

    return dependency


async def device(request: Request) -> DeviceAuth:
    return await cloud_of(request).device(_bearer(request))
