"""Who is asking, and what they may see: roles and their binding to organisation, region, site.

Roles are ordered (viewer < operator < admin); a role bound to a region or a site sees only
that part of its organisation. Every query of tenant data filters through :func:`visible_sites`,
so a user never sees rows outside their organisation, and a site-bound user only their site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import ColumnElement, Select, and_, select

from cloud_sync.db.tables import sites
from cloud_sync.errors import Forbidden

Role = Literal["viewer", "operator", "admin"]
ScopeKind = Literal["organisation", "region", "site"]
ROLES: Final[tuple[Role, ...]] = ("viewer", "operator", "admin")
RANK: Final = {role: i for i, role in enumerate(ROLES)}


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    org_id: str
    role: Role
    scope: ScopeKind
    scope_id: str | None  # the region or site id; None for the whole organisation

    def require(self, role: Role) -> None:
        if RANK[self.role] < RANK[role]:
            raise Forbidden(f"this needs the {role} role (you are {self.role})")

    @property
    def actor(self) -> str:
        return self.user_id


def site_clause(who: Principal) -> ColumnElement[bool]:
    """Rows of ``sites`` this principal may see."""
    clause = sites.c.org_id == who.org_id
    if who.scope == "region":
        return and_(clause, sites.c.region_id == who.scope_id)
    if who.scope == "site":
        return and_(clause, sites.c.id == who.scope_id)
    return clause


def visible_sites(who: Principal) -> Select[Any]:
    """``SELECT sites.id`` of what this principal may see: use as ``site_id IN (...)``."""
    return select(sites.c.id).where(site_clause(who))
