"""EdgeClients: one client per device, rebuilt when its URL or API key changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from console.services.credentials import CredentialStore
from console.services.device import Device
from console.services.pool import EdgeClients

pytestmark = pytest.mark.unit

DEV = Device(key="dev-1", url="http://10.0.0.5:8080/", name="bay 1", site="north",
             source="zeroconf", online=True)  # fmt: skip


@pytest.mark.asyncio
async def test_one_client_per_device_rebuilt_on_url_or_key_change(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "credentials.json")
    pool = EdgeClients(store, timeout_s=2.0)
    try:
        first = pool.client_for(DEV)
        assert first.base_url == "http://10.0.0.5:8080"
        assert first.api_key is None
        assert first.timeout_s == 2.0
        assert pool.client_for(replace(DEV, name="renamed", online=False)) is first

        store.set("dev-1", "key-1")
        keyed = pool.client_for(DEV)
        assert keyed is not first
        assert keyed.api_key == "key-1"
        moved = pool.client_for(replace(DEV, url="http://10.0.0.9:8080"))
        assert moved is not keyed
        assert moved.base_url == "http://10.0.0.9:8080"
        other = pool.client_for(replace(DEV, key="dev-2"))
        assert other is not moved
        assert other.api_key is None
        await pool.aclose()  # also waits for the replaced clients' closing
        assert first.closed
        assert keyed.closed
        assert moved.closed
        assert other.closed
        assert pool.client_for(DEV) is not moved  # usable again afterwards
    finally:
        await pool.aclose()


@pytest.mark.asyncio
async def test_key_entered_for_the_url_is_used_after_the_id_is_known(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "credentials.json")
    store.set("http://10.0.0.5:8080/", "typed-for-url")
    pool = EdgeClients(store)
    try:
        assert pool.client_for(DEV).api_key == "typed-for-url"
        store.set("dev-1", "by-id")
        assert pool.client_for(DEV).api_key == "by-id"  # the id's own key wins
    finally:
        await pool.aclose()


@pytest.mark.asyncio
async def test_forget_closes_the_client(tmp_path: Path) -> None:
    pool = EdgeClients(CredentialStore(tmp_path / "c.json"))
    try:
        client = pool.client_for(DEV)
        pool.forget("dev-1")
        pool.forget("dev-1")  # twice is fine
        pool.forget("unknown")
        await pool.aclose()
        assert client.closed
        assert pool.client_for(DEV) is not client
    finally:
        await pool.aclose()


def test_replacing_without_a_loop_closes_later(tmp_path: Path) -> None:
    import asyncio

    store = CredentialStore(tmp_path / "c.json")
    pool = EdgeClients(store)
    old = pool.client_for(DEV)
    store.set("dev-1", "key")
    new = pool.client_for(DEV)  # no loop running here: the old one is closed by aclose()
    assert new is not old
    asyncio.run(pool.aclose())
    assert old.closed
    assert new.closed
