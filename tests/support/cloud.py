"""The cloud's test bench: a database per test (SQLite, or PostgreSQL from a migrated template),
two organisations with sites and users, an in-process client, a clock the test moves.

tests/integration/conftest.py makes the fixtures available to every integration test (one
definition each, so the session's PostgreSQL cluster is made once).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from cloud_sync.api import create_app
from cloud_sync.auth import users
from cloud_sync.auth.passwords import HashCost, Passwords
from cloud_sync.auth.sessions import LoginLimits
from cloud_sync.db import migrate, open_database
from cloud_sync.service import Cloud
from cloud_sync.settings import CloudSettings
from cloud_sync.tenancy import add_site, ensure_organisation
from fleet_common.timefmt import rfc3339
from tests.support.postgres import PostgresCluster, fresh_database

CHEAP = HashCost(time_cost=1, memory_kib=1024, parallelism=1)
PASSWORD = "password-1"  # noqa: S105 - the test users' password
T0 = 1_780_000_000.0  # a fixed "now" (2026-05-28T20:26:40Z) the tests move by hand


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cloud-template") / "cloud.db"
    db = open_database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_cluster: PostgresCluster) -> str:
    url = fresh_database(postgres_cluster)
    db = open_database(url)
    migrate.upgrade(db)
    db.dispose()
    return url.rsplit("/", 1)[1]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database: a SQLite file, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        path = tmp_path / "cloud.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return fresh_database(cluster, request.getfixturevalue("postgres_template"))


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class CloudEnv:
    cloud: Cloud
    client: httpx.AsyncClient
    clock: Clock
    ids: dict[str, str] = field(default_factory=dict)  # org, site and user names → ids

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        resp = await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert resp.status_code == 200, resp.text
        return {"Authorization": f"Bearer {resp.json()['access_token']}"}

    async def token(self, site: str = "a1", ttl_s: float = 3600) -> str:
        from cloud_sync.devices import store
        from cloud_sync.tenancy import find_site

        def create(conn: Any) -> str:
            return store.create_token(
                conn, find_site(conn, self.ids[site]), ttl_s, now=self.clock()
            )

        return await self.cloud.write(create)

    async def enroll(self, site: str = "a1", name: str = "bay-1") -> tuple[str, dict[str, str]]:
        resp = await self.client.post(
            "/api/v1/devices/enroll", json={"token": await self.token(site), "name": name}
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        return body["device_id"], {"Authorization": f"Bearer {body['device_key']}"}


def build(url: str, clock: Clock, **settings: Any) -> tuple[Cloud, dict[str, str]]:
    """Two organisations: Acme (sites a1, a2 in North, a3 in South) and Other (site b1), with
    users of every binding; one password for all."""
    db = open_database(url)
    cloud = Cloud(db, CloudSettings(hash_cost=CHEAP, **settings), clock=clock)
    digest = Passwords(CHEAP).hash(PASSWORD)
    ids: dict[str, str] = {}
    with db.write() as conn:
        ids["acme"] = acme = ensure_organisation(conn, "Acme")
        ids["other"] = other = ensure_organisation(conn, "Other")
        ids["a1"] = add_site(conn, acme, "A1", "North", timezone="Europe/Berlin")
        ids["a2"] = add_site(conn, acme, "A2", "North")
        ids["a3"] = add_site(conn, acme, "A3", "South")
        ids["b1"] = add_site(conn, other, "B1", "North")
        for email, org, role, scope, scope_id in (
            ("admin@acme.test", acme, "admin", "organisation", None),
            ("viewer@acme.test", acme, "viewer", "organisation", None),
            ("operator@acme.test", acme, "operator", "organisation", None),
            ("site@acme.test", acme, "viewer", "site", ids["a1"]),
            ("north@acme.test", acme, "operator", "region", None),
            ("admin@other.test", other, "admin", "organisation", None),
        ):
            if scope == "region":
                from cloud_sync.tenancy import find_region

                scope_id = find_region(conn, acme, "North")
            ids[email] = users.add_user(conn, org, email, role, digest, scope, scope_id).id  # type: ignore[arg-type]
    return cloud, ids


def client_for(cloud: Cloud, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(cloud), client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://cloud")


@pytest_asyncio.fixture
async def cloud_env(db_url: str) -> AsyncIterator[CloudEnv]:
    clock = Clock()
    cloud, ids = build(db_url, clock, login=LoginLimits(per_email=3, per_address=6))
    async with client_for(cloud) as client:
        yield CloudEnv(cloud, client, clock, ids)
    cloud.db.dispose()


def at(ts: float) -> str:
    return rfc3339(ts)
