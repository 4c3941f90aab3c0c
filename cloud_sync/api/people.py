"""``/api/v1/auth``: log in, refresh."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from cloud_sync.api.access import client_address, cloud_of, declare
from fleet_common.wire.cloud import LoginRequest, RefreshRequest, TokenPair

router = APIRouter(prefix="/api/v1/auth", tags=["people"])


@router.post("/login", response_model=TokenPair, **declare("public"))
async def login(body: LoginRequest, request: Request) -> TokenPair:
    """E-mail and password → an access token (JWT, minutes) and a refresh token.

    Failed logins are limited per e-mail and per client address (429 with `Retry-After`)."""
    sessions = cloud_of(request).sessions
    return await asyncio.to_thread(
        sessions.login, body.email, body.password, client_address(request)
    )


@router.post("/refresh", response_model=TokenPair, **declare("public"))
async def refresh(body: RefreshRequest, request: Request) -> TokenPair:
    """A refresh token → a new pair; the old refresh token stops working (rotation)."""
    return await asyncio.to_thread(cloud_of(request).sessions.refresh, body.refresh_token)
