"""Access tokens (JWT, HS256, minutes) and refresh tokens (opaque, hashed, single use).

The signing secret is made by ``init`` and kept in the database, so every replica accepts the
tokens every other one signs. A refresh token is rotated on each use; presenting a used one
again (a stolen copy) revokes its whole family, so the thief and the owner both log in anew.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any, Final

import jwt

from cloud_sync.auth.scope import ROLES, Principal
from cloud_sync.errors import Unauthorized

ALGORITHM: Final = "HS256"
ISSUER: Final = "carwash-cloud"


def issue_access(secret: str, who: Principal, ttl_s: int, now: float | None = None) -> str:
    now = time.time() if now is None else now
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": who.user_id, "org": who.org_id, "role": who.role,
        "scope": who.scope, "sid": who.scope_id, "iat": int(now), "exp": int(now) + ttl_s,
        "typ": "access",
    }  # fmt: skip
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_access(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )  # fmt: skip
    except jwt.ExpiredSignatureError as err:
        raise Unauthorized("the access token has expired: refresh it") from err
    except jwt.PyJWTError as err:
        raise Unauthorized("the access token is not valid") from err
    role, scope = claims.get("role"), claims.get("scope")
    if claims.get("typ") != "access" or role not in ROLES:
        raise Unauthorized("the access token is not valid")
    if scope not in ("organisation", "region", "site"):
        raise Unauthorized("the access token is not valid")
    return Principal(str(claims["sub"]), str(claims["org"]), role, scope, claims.get("sid"))


def new_refresh_token() -> tuple[str, str]:
    """A new opaque token and the hash that is stored."""
    token = "cwr_" + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy secret (tokens, device keys): enough, and fast to look up."""
    return hashlib.sha256(token.encode()).hexdigest()
