"""Two ``carwash-cloud serve`` processes on one PostgreSQL: a rollout started through replica A
reaches a device long-polling replica B within 2 s (``NOTIFY carwash_config``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from cloud_sync.db import open_database
from cloud_sync.devices import store
from cloud_sync.tenancy import find_site
from tests.support.cloud import PASSWORD, Clock, build
from tests.support.cloud_process import serve as serve_process
from tests.support.postgres import PostgresCluster, fresh_database

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def serve(db: str) -> Iterator[str]:
    """A real ``carwash-cloud serve`` on 127.0.0.1:0; its base URL. SIGTERM at the end."""
    with serve_process(db) as served:
        yield served.url
    assert "Traceback" not in "".join(served.lines), "".join(served.lines)


def test_a_rollout_through_replica_a_reaches_a_device_polling_replica_b(
    postgres_cluster: PostgresCluster, postgres_template: str
) -> None:
    url = fresh_database(postgres_cluster, postgres_template)
    cloud, ids = build(url, Clock())
    cloud.db.dispose()
    db = open_database(url)
    with db.write() as conn:
        token = store.create_token(conn, find_site(conn, ids["a1"]), 3600, now=time.time())
    db.dispose()
    with serve(url) as a, serve(url) as b, httpx.Client(base_url=a, timeout=10) as ca, \
            httpx.Client(base_url=b, timeout=40) as cb, ThreadPoolExecutor(1) as pool:  # fmt: skip
        login = ca.post(
            "/api/v1/auth/login", json={"email": "admin@acme.test", "password": PASSWORD}
        )
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        enrolled = cb.post("/api/v1/devices/enroll", json={"token": token}).json()
        dev = {"Authorization": f"Bearer {enrolled['device_key']}"}
        base = {"name": "base", "config": {"snapshots": {"history": 10}}}
        tpl = ca.post("/api/v1/config/templates", headers=admin, json=base).json()
        v1 = tpl["versions"][0]["id"]
        resp = ca.put("/api/v1/config/assignments", headers=admin,
                      json={"scope": "organisation", "template_version_id": v1})  # fmt: skip
        assert resp.status_code == 200, resp.text
        first = cb.get("/api/v1/devices/config", headers=dev)
        assert first.status_code == 200, first.text
        v2 = ca.post(f"/api/v1/config/templates/{tpl['id']}/versions", headers=admin,
                     json={"config": {"snapshots": {"history": 20}}}).json()["id"]  # fmt: skip
        poll = pool.submit(cb.get, "/api/v1/devices/config", params={"wait": 30},
                           headers={**dev, "If-None-Match": first.headers["etag"]})  # fmt: skip
        time.sleep(0.5)  # let the long-poll reach replica B first: what it waits on is the test
        assert not poll.done()
        started = time.monotonic()
        resp = ca.post("/api/v1/rollouts", headers=admin, json={
            "template_version_id": v2, "target": {"devices": [enrolled["device_id"]]},
            "waves": [1.0]})  # fmt: skip
        assert resp.status_code == 201, resp.text
        answer = poll.result(timeout=10)
        elapsed = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        assert answer.json()["config"]["snapshots"]["history"] == 20
        assert answer.json()["rollout_id"] == resp.json()["id"]
        assert elapsed < 2.0, f"took {elapsed:.2f} s"
        progress = cb.get(f"/api/v1/rollouts/{resp.json()['id']}", headers=admin).json()
        assert progress["devices"][0]["state"] == "in_progress"
