"""Login and refresh: rate limits, password check, token issue and rotation.

Blocking (database, argon2): call from a worker thread. The rate limit lives in the database
(fixed windows per e-mail and per client address), so several replicas share one count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, insert, select, update

from cloud_sync.auth import tokens, users
from cloud_sync.auth.passwords import Passwords
from cloud_sync.db import dialect
from cloud_sync.db.engine import Database
from cloud_sync.db.tables import login_attempts, refresh_tokens
from cloud_sync.db.tables import users as users_table
from cloud_sync.errors import RateLimited, Unauthorized
from cloud_sync.tenancy import JWT_SECRET, new_id, setting
from fleet_common.wire.cloud import TokenPair

BAD_LOGIN: Final = "wrong e-mail or password"


@dataclass(frozen=True, slots=True)
class LoginLimits:
    window_s: int = 900
    per_email: int = 5  # failures per window before that e-mail is refused
    per_address: int = 30  # failures per window before that client is refused
    access_ttl_s: int = 900
    refresh_ttl_s: int = 30 * 86400


class Sessions:
    def __init__(self, db: Database, passwords: Passwords, limits: LoginLimits) -> None:
        self.db = db
        self.passwords = passwords
        self.limits = limits
        self._secret: str | None = None

    def secret(self) -> str:
        if self._secret is None:
            with self.db.read() as conn:
                found = setting(conn, JWT_SECRET)
            if found is None:
                raise Unauthorized("the cloud is not initialised")
            self._secret = found
        return self._secret

    # ------------------------------------------------------------------ login
    def login(self, email: str, password: str, address: str, now: float | None = None) -> TokenPair:
        now = time.time() if now is None else now
        email = email.strip().lower()
        keys = (f"email:{email}", f"addr:{address}")
        window = int(now // self.limits.window_s) * self.limits.window_s
        self._check_limits(keys, window, now)
        with self.db.read() as conn:
            user = users.find_user(conn, email)
        ok = self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok or user.disabled:
            with self.db.write() as conn:
                dialect.upsert_add(
                    conn, login_attempts,
                    [{"key": k, "window": window, "failures": 1} for k in sorted(keys)],
                    keys=("key", "window"), added=("failures",),
                )  # fmt: skip
            raise Unauthorized(BAD_LOGIN)
        with self.db.write() as conn:
            conn.execute(login_attempts.delete().where(login_attempts.c.key == keys[0]))
            conn.execute(login_attempts.delete().where(login_attempts.c.window < window))
            return self._issue(conn, user, new_id(), now)

    def _check_limits(self, keys: tuple[str, str], window: int, now: float) -> None:
        with self.db.read() as conn:
            found = conn.execute(
                select(login_attempts.c.key, login_attempts.c.failures).where(
                    login_attempts.c.key.in_(keys), login_attempts.c.window == window
                )
            )
            rows = {str(key): int(failures) for key, failures in found}
        caps = (self.limits.per_email, self.limits.per_address)
        if any(rows.get(key, 0) >= cap for key, cap in zip(keys, caps, strict=True)):
            raise RateLimited(
                "too many failed logins: try again later", window + self.limits.window_s - now
            )

    # ------------------------------------------------------------------ refresh
    def refresh(self, token: str, now: float | None = None) -> TokenPair:
        now = time.time() if now is None else now
        digest = tokens.token_hash(token)
        with self.db.write() as conn:
            claimed = conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.token_hash == digest, refresh_tokens.c.used_at.is_(None),
                       refresh_tokens.c.revoked.is_(False), refresh_tokens.c.expires_at > now)
                .values(used_at=now)
                .returning(refresh_tokens.c.user_id, refresh_tokens.c.family)
            ).first()  # fmt: skip
            if claimed is not None:
                row = conn.execute(
                    select(users_table).where(users_table.c.id == claimed.user_id)
                ).first()
                if row is not None and not row.disabled:
                    return self._issue(conn, users.user_of(row), claimed.family, now)
        self._reuse(digest)
        raise Unauthorized("the refresh token is not valid: log in again", code="refresh_invalid")

    def _reuse(self, digest: str) -> None:
        """A used token presented again: someone else holds a copy; end the whole family."""
        with self.db.write() as conn:
            family = conn.execute(
                select(refresh_tokens.c.family).where(refresh_tokens.c.token_hash == digest)
            ).scalar()
            if family is not None:
                conn.execute(
                    update(refresh_tokens)
                    .where(refresh_tokens.c.family == family).values(revoked=True)
                )  # fmt: skip

    def _issue(self, conn: Connection, user: users.User, family: str, now: float) -> TokenPair:
        token, digest = tokens.new_refresh_token()
        conn.execute(
            insert(refresh_tokens).values(
                user_id=user.id, token_hash=digest, family=family,
                expires_at=now + self.limits.refresh_ttl_s, used_at=None, revoked=False,
            )
        )  # fmt: skip
        who = user.principal()
        return TokenPair(
            access_token=tokens.issue_access(self.secret(), who, self.limits.access_ttl_s, now),
            expires_in=self.limits.access_ttl_s, refresh_token=token, role=who.role,
            scope=who.scope,
        )  # fmt: skip
