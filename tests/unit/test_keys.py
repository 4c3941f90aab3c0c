from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge.errors import KeyStoreError
from edge.keys import KeyStore, role_allows

pytestmark = pytest.mark.unit


def test_keys_are_stored_hashed_with_private_permissions(tmp_path: Path) -> None:
    store = KeyStore.in_dir(tmp_path)
    key, entry = store.create("viewer", "wash controller")
    text = store.path.read_text()
    assert key not in text
    assert key.split("_")[-1] not in text
    assert entry.hash in text
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_verify_accepts_only_the_exact_key(tmp_path: Path) -> None:
    store = KeyStore.in_dir(tmp_path)
    key, entry = store.create("operator")
    assert store.verify(key) == entry
    assert store.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.verify("cwe_00000000_nope") is None
    assert store.verify("") is None
    assert store.verify("Bearer " + key) is None


def test_revoke_and_reload_by_another_process(tmp_path: Path) -> None:
    running = KeyStore.in_dir(tmp_path)  # the edge's view
    cli = KeyStore.in_dir(tmp_path)  # `carwash-edge keys` in another process
    key, entry = cli.create("admin")
    running._next_check = 0.0
    assert running.verify(key) == entry
    cli.revoke(entry.id)
    running._next_check = 0.0
    assert running.verify(key) is None
    with pytest.raises(KeyStoreError, match="no key with id"):
        cli.revoke(entry.id)


def test_malformed_file_is_a_clear_error_and_a_running_store_keeps_its_keys(
    tmp_path: Path,
) -> None:
    store = KeyStore.in_dir(tmp_path)
    key, _ = store.create("viewer")
    store.path.write_text("{not json")
    store._next_check = 0.0
    assert store.verify(key) is not None  # last good keys kept
    with pytest.raises(KeyStoreError, match="not a valid key file"):
        KeyStore.in_dir(tmp_path)


def test_unknown_role_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="unknown role"):
        KeyStore.in_dir(tmp_path).create("root")  # type: ignore[arg-type]


def test_role_order() -> None:
    assert role_allows("admin", "viewer")
    assert role_allows("operator", "operator")
    assert not role_allows("viewer", "operator")
    assert not role_allows("operator", "admin")
