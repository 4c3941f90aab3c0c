"""Users: add, change password, disable, list (the command line), and look up for login."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from cloud_sync.auth.scope import ROLES, Principal, Role, ScopeKind
from cloud_sync.changes import Change, ChangeHook, no_hook
from cloud_sync.db.tables import refresh_tokens, users
from cloud_sync.errors import Invalid, NotFound
from cloud_sync.tenancy import new_id


@dataclass(frozen=True, slots=True)
class User:
    id: str
    org_id: str
    email: str
    role: Role
    scope: ScopeKind
    scope_id: str | None
    disabled: bool
    password_hash: str

    def principal(self) -> Principal:
        return Principal(self.id, self.org_id, self.role, self.scope, self.scope_id)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "role": self.role, "scope": self.scope,
                "scope_id": self.scope_id, "disabled": self.disabled}  # fmt: skip


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        raise Invalid(f"{email!r} is not an e-mail address")
    return email


def user_of(row: Any) -> User:
    return User(row.id, row.org_id, row.email, row.role, row.scope_kind, row.scope_id,
                bool(row.disabled), row.password_hash)  # fmt: skip


def find_user(conn: Connection, email: str) -> User | None:
    row = conn.execute(select(users).where(users.c.email == email.strip().lower())).first()
    return None if row is None else user_of(row)


def get_user(conn: Connection, email: str) -> User:
    user = find_user(conn, email)
    if user is None:
        raise NotFound(f"no user {email!r}")
    return user


def add_user(
    conn: Connection,
    org_id: str,
    email: str,
    role: str,
    password_hash: str,
    scope: ScopeKind = "organisation",
    scope_id: str | None = None,
    hook: ChangeHook = no_hook,
) -> User:
    email = normalise_email(email)
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if find_user(conn, email) is not None:
        raise Invalid(f"a user {email!r} exists already (use `user passwd` to change it)")
    user = User(new_id(), org_id, email, role, scope, scope_id, False, password_hash)
    conn.execute(
        insert(users).values(
            id=user.id, org_id=org_id, email=email, password_hash=password_hash, role=role,
            scope_kind=scope, scope_id=scope_id, disabled=False, created_at=time.time(),
        )
    )  # fmt: skip
    hook(conn, Change("user.added", org_id, "cli", user.id, after=user.public()))
    return user


def set_password(
    conn: Connection, email: str, password_hash: str, hook: ChangeHook = no_hook
) -> None:
    """A new password; every session of the user ends (their refresh tokens are revoked)."""
    user = get_user(conn, email)
    conn.execute(update(users).where(users.c.id == user.id).values(password_hash=password_hash))
    _revoke_sessions(conn, user.id)
    hook(conn, Change("user.password_changed", user.org_id, "cli", user.id))


def set_disabled(conn: Connection, email: str, disabled: bool, hook: ChangeHook = no_hook) -> None:
    user = get_user(conn, email)
    conn.execute(update(users).where(users.c.id == user.id).values(disabled=disabled))
    if disabled:
        _revoke_sessions(conn, user.id)
    after = {**user.public(), "disabled": disabled}
    kind = "user.disabled" if disabled else "user.enabled"
    hook(conn, Change(kind, user.org_id, "cli", user.id, before=user.public(), after=after))


def list_users(conn: Connection, org_id: str | None = None) -> list[User]:
    query = select(users).order_by(users.c.email)
    if org_id is not None:
        query = query.where(users.c.org_id == org_id)
    return [user_of(row) for row in conn.execute(query)]


def _revoke_sessions(conn: Connection, user_id: str) -> None:
    conn.execute(
        update(refresh_tokens).where(refresh_tokens.c.user_id == user_id).values(revoked=True)
    )
