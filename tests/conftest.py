"""Shared fixtures: an in-process edge on a synthetic camera, API keys, an HTTP client."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from edge.api import create_app
from edge.config import EdgeConfig
from edge.discovery import device_id
from edge.keys import KeyStore
from edge.service import Edge
from edge.store import Store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Any:
    """Every test stops the threads it started (camera readers, encoders, servers)."""
    before = set(threading.enumerate())
    yield
    leaked: list[threading.Thread] = []
    for thread in set(threading.enumerate()) - before:
        thread.join(3.0)
        if thread.is_alive() and not thread.name.startswith(("asyncio_", "ThreadPoolExecutor")):
            leaked.append(thread)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


def make_config(tmp_path: Path, **sections: dict[str, Any]) -> EdgeConfig:
    data: dict[str, Any] = {"name": "test-bay", "site": "test-site", "data_dir": str(tmp_path)}
    data.update(sections)
    data.setdefault("camera", {}).setdefault("source", "synthetic://?width=320&height=180&fps=20")
    # Plate reading only where a test asks for it (a plates section): an edge started with
    # start_async() otherwise loads the OCR models (~1 CPU-s) and reads every passing car.
    data.setdefault("plates", {"policy": "none"})
    return EdgeConfig.model_validate(data)


class Keys:
    def __init__(self, store: KeyStore) -> None:
        self.viewer, _ = store.create("viewer", "test")
        self.operator, _ = store.create("operator", "test")
        self.admin, _ = store.create("admin", "test")

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(KeyStore.in_dir(tmp_path))


EdgeFactory = Callable[..., Edge]


@pytest_asyncio.fixture
async def edge_factory(tmp_path: Path, keys: Keys) -> AsyncIterator[EdgeFactory]:
    """Build and start edges inside the test's loop; all are stopped afterwards.

    Each edge gets its own store in ``tmp_path`` (the first ``edge.db``, as in production;
    further ones ``edge-N.db``) unless ``store=False`` (events in memory only).
    """
    started: list[Edge] = []

    def factory(start: bool = True, store: bool = True, **sections: dict[str, Any]) -> Edge:
        config = make_config(tmp_path, **sections)
        opened = None
        if store:  # a tmp file: opening it here is quicker than a thread hop
            name = "edge.db" if not started else f"edge-{len(started)}.db"
            opened = Store.open(tmp_path / name, Edge.caps_for(config))
        edge = Edge.create(config, store=opened)
        # One id per edge, as on real devices (the first keeps DATA_DIR's own id file).
        id_dir = tmp_path if not started else tmp_path / f"edge-{len(started)}"
        id_dir.mkdir(exist_ok=True)
        edge.device_id = device_id(id_dir)
        started.append(edge)
        if start:
            edge.start()
        return edge

    yield factory
    for edge in started:
        await edge.stop_async()


def client_for(edge: Edge, client: tuple[str, int] = ("127.0.0.1", 50000)) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(edge), client=client)
    return httpx.AsyncClient(transport=transport, base_url="http://edge")


async def first_frame(edge: Edge, within_s: float = 10.0) -> None:
    snap = await edge.cache.wait_newer(0, within_s)
    assert snap is not None, f"no frame within {within_s} s: {edge.source.stats.last_error}"
