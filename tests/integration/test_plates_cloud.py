"""The plate policies that use Plate Recognizer, on a real edge against the fake Plate Recognizer
server (tests/support/fake_platerecognizer.py, which speaks their documented format)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.service import Edge
from tests.conftest import EdgeFactory, Keys, client_for
from tests.support.fake_platerecognizer import Behaviour, FakePlateRecognizer

pytestmark = pytest.mark.integration

PARKED = "synthetic://?width=960&height=540&fps=5&seed=8&cycle=30&stop=29&empty=1"


@pytest.fixture
def fake() -> Iterator[FakePlateRecognizer]:
    with FakePlateRecognizer() as server:
        yield server


def _plates(fake: FakePlateRecognizer, policy: str, **cloud: Any) -> dict[str, Any]:
    return {
        "policy": policy, "motion": {"enabled": False},
        "cloud": {"token": fake.token, "url": fake.url, "statistics_url": fake.statistics_url,
                  "rate_per_s": 8, "timeout_s": 1.0, "retries": 1, **cloud},
    }  # fmt: skip


async def _edge(edge_factory: EdgeFactory, plates: dict[str, Any]) -> Edge:
    edge = edge_factory(start=False, camera={"source": PARKED}, plates=plates)
    await edge.start_async()
    await asyncio.sleep(1.0)  # the parked car comes to a stop
    return edge


@pytest.mark.asyncio
async def test_cloud_policy_reads_once_for_a_stationary_car(
    edge_factory: EdgeFactory, keys: Keys, fake: FakePlateRecognizer
) -> None:
    fake.default = Behaviour.ok("gh456jk")
    edge = await _edge(edge_factory, _plates(fake, "cloud"))
    operator = Keys.auth(keys.operator)
    async with client_for(edge) as client:
        first = (await client.post("/api/plates/recognize", headers=operator)).json()
        again = (await client.post("/api/plates/recognize", headers=operator)).json()
        status = (await client.get("/api/plates/status", headers=operator)).json()
    assert first["read"]["plate"] == "GH456JK"
    assert first["read"]["recognizer"] == "platerecognizer"
    assert first["recognizers"] == ["platerecognizer"]
    assert first["read"]["region"] == "fr"
    assert again["read"] == first["read"]
    assert again["duplicate"] is True
    assert len(fake.lookups()) == 1  # the car did not move: its picture was not sent again
    lookup = fake.lookups()[0]
    assert lookup.headers["authorization"] == f"Token {fake.token}"
    assert status["recognizers"]["platerecognizer"]["state"] == "ok"
    assert status["recognizers"]["platerecognizer"]["quota"]["remaining"] == 2499


@pytest.mark.asyncio
async def test_a_hung_cloud_never_blocks_the_pictures(
    edge_factory: EdgeFactory, keys: Keys, fake: FakePlateRecognizer
) -> None:
    """The cloud accepts the upload and never answers: the handshake fails with a timeout
    within its bound, and the snapshot API keeps answering at once meanwhile."""
    fake.default = Behaviour.hang()
    edge = await _edge(edge_factory, _plates(fake, "cloud", retries=0))
    operator, viewer = Keys.auth(keys.operator), Keys.auth(keys.viewer)
    async with client_for(edge) as client:
        started = time.monotonic()
        handshake = asyncio.create_task(client.post(
            "/api/plates/recognize", json={"timeout_s": 2.5}, headers=operator
        ))  # fmt: skip
        snapshot_s: list[float] = []
        while not handshake.done():
            t0 = time.monotonic()
            r = await client.get("/api/snapshot", headers=viewer)
            assert r.status_code == 200
            snapshot_s.append(time.monotonic() - t0)
            await asyncio.sleep(0.05)
        r = await handshake
        took = time.monotonic() - started
    assert r.status_code in (503, 504), r.text
    assert r.json()["error"] in ("timeout", "recognizer_unavailable")
    assert took < 3.5
    assert len(snapshot_s) > 10
    assert max(snapshot_s) < 0.25, f"slowest snapshot {max(snapshot_s):.3f} s"
    print(f"\nhung cloud: handshake {r.status_code} after {took:.2f} s; {len(snapshot_s)}"
          f" snapshots meanwhile, slowest {max(snapshot_s) * 1000:.0f} ms")  # fmt: skip


@pytest.mark.asyncio
async def test_local_then_cloud_asks_the_cloud_only_when_unsure_and_survives_its_failure(
    edge_factory: EdgeFactory, keys: Keys, fake: FakePlateRecognizer
) -> None:
    operator = Keys.auth(keys.operator)
    edge = await _edge(edge_factory, _plates(fake, "local_then_cloud"))
    edge.config.plates.cloud_below_score = 0.0  # the local read is always sure enough
    async with client_for(edge) as client:
        sure = (await client.post("/api/plates/recognize", headers=operator)).json()
        assert sure["recognizers"] == ["local"]
        assert fake.lookups() == []
        edge.config.plates.cloud_below_score = 1.0  # never sure: ask the cloud
        edge.config.plates.dedup_window_s = 0.0
        fake.default = Behaviour.error(502)
        unsure = (await client.post("/api/plates/recognize", headers=operator)).json()
    # The cloud failed (502, then the retry): the local read is kept and says so.
    assert unsure["recognizers"] == ["local", "platerecognizer"]
    assert unsure["read"]["plate"] == sure["read"]["plate"]
    assert unsure["read"]["recognizer"] == "local"
    assert "http_502" in unsure["note"]
    assert len(fake.lookups()) == 2


@pytest.mark.asyncio
async def test_quota_exhausted_stops_cloud_calls_with_a_clear_status(
    edge_factory: EdgeFactory, keys: Keys, fake: FakePlateRecognizer, tmp_path: Path
) -> None:
    fake.usage_calls = 2460  # 40 lookups left, under the reserve of 50
    edge = await _edge(edge_factory, _plates(fake, "cloud"))
    operator = Keys.auth(keys.operator)
    async with client_for(edge) as client:
        r = await client.post("/api/plates/recognize", headers=operator)
        status = (await client.get("/api/plates/status", headers=operator)).json()
        health = (await client.get("/api/health")).json()
    assert r.status_code == 503
    assert r.json()["error"] == "recognizer_unavailable"
    assert "reserve" in r.json()["message"]
    assert fake.lookups() == []
    assert status["recognizers"]["platerecognizer"]["state"] == "quota_exhausted"
    assert health["components"]["plates"]["status"] != "ok"
    assert "quota_exhausted" in health["components"]["plates"]["detail"]
