"""CredentialStore: API keys in a private JSON file, written atomically, corrupt files named."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from console.services.credentials import CredentialStore
from console.services.errors import ConsoleError, CredentialStoreError

pytestmark = pytest.mark.unit


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_round_trip_through_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "config" / "carwash" / "credentials.json"
    store = CredentialStore(path)
    assert store.get("dev-1") is None
    assert not path.exists()  # nothing written until there is something to keep

    store.set("dev-1", "key-one")
    store.set("http://10.0.0.5:8080", "key-two")
    assert store.get("dev-1") == "key-one"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700  # the folder we made is private too
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "version": 1,
        "keys": {"dev-1": "key-one", "http://10.0.0.5:8080": "key-two"},
    }

    again = CredentialStore(path)
    assert again.get("dev-1") == "key-one"
    assert again.keys() == ["dev-1", "http://10.0.0.5:8080"]

    again.set("dev-1", "key-new")
    again.delete("http://10.0.0.5:8080")
    again.delete("never-there")
    assert CredentialStore(path).keys() == ["dev-1"]
    assert CredentialStore(path).get("dev-1") == "key-new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["credentials.json"]  # no temp files


def test_empty_keys_are_refused(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "c.json")
    with pytest.raises(ValueError, match="empty"):
        store.set("dev", "")
    with pytest.raises(ValueError, match="empty"):
        store.set("", "key")


def test_a_loosened_file_is_tightened_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.json"
    CredentialStore(path).set("dev", "key")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="console.credentials"):
        assert CredentialStore(path).get("dev") == "key"
    assert mode(path) == 0o600
    assert "readable by others" in caplog.text


def test_a_failed_write_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.json"
    store = CredentialStore(path)
    store.set("dev", "old")
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(CredentialStoreError, match="No space left") as caught:
        store.set("dev", "new")
    assert caught.value.path == path
    assert store.get("dev") == "old"  # memory and disk still agree
    with pytest.raises(CredentialStoreError):
        store.delete("dev")
    assert store.get("dev") == "old"
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # the temp files were removed


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "corrupt JSON"),
        (b"\xff\xfe\x00garbage", "corrupt JSON"),
        (b"", "corrupt JSON"),
        (b"[1, 2]", "not a credential file"),
        (b'{"version": 1, "keys": {"dev": 5}}', "not a credential file"),
        (b'{"version": 1}', "not a credential file"),
        (b'{"version": 2, "keys": {}}', "unsupported version 2"),
    ],
)
def test_a_corrupt_file_is_a_clear_error_and_is_kept(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(content)
    with pytest.raises(CredentialStoreError) as caught:
        CredentialStore(path)
    assert isinstance(caught.value, ConsoleError)
    assert caught.value.path == path
    assert reason in str(caught.value)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == content  # never overwritten

    kept = CredentialStore.move_aside(path)
    assert kept.read_bytes() == content
    assert kept.name.startswith("c.json.corrupt-")
    fresh = CredentialStore(path)  # a new file can be started now
    fresh.set("dev", "key")
    assert CredentialStore(path).get("dev") == "key"


def test_an_unreadable_path_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.mkdir()  # something that is not a file is in the way
    with pytest.raises(CredentialStoreError, match="cannot read"):
        CredentialStore(path)
