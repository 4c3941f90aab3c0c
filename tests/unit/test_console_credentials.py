"""CredentialStore: API keys in a private JSON file, written atomically, corrupt files named."""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError, PasswordSetError

from console.services.credentials import (
    KEYRING_INDEX,
    KEYRING_SERVICE,
    CredentialStore,
    KeyringCredentialStore,
    open_credentials,
    usable_keyring,
)
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


# ---------------------------------------------------------------------- OS keyring
class MemoryKeyring(KeyringBackend):
    """A keyring in a dict: what a desktop's Secret Service does, without a desktop."""

    priority = 5  # a class attribute is what keyring reads

    def __init__(self) -> None:  # not keyring's: it only reads KEYRING_PROPERTY_* variables
        self.entries: dict[tuple[str, str], str] = {}
        self.fail: str = ""  # "get" / "set": raise KeyringError on those

    def get_password(self, service: str, username: str) -> str | None:
        if self.fail == "get":
            raise KeyringLocked("the keyring is locked")
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.fail == "set":
            raise PasswordSetError("refused")
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")


class LowKeyring(MemoryKeyring):
    priority = 0.5  # type: ignore[assignment]  # like keyrings.alt's plain-text file


# Defining a backend registers it with keyring as a candidate for the default: not these.
KeyringBackend._classes.discard(MemoryKeyring)
KeyringBackend._classes.discard(LowKeyring)


def fail_keyring() -> KeyringBackend:
    """keyring's own "no keyring here" backend (what a machine without a desktop gets)."""
    return keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]  # untyped in keyring


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    # On Linux a keyring is looked for only with a session bus (a desktop): say there is one.
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    before = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(before)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(fail_keyring())
    yield
    keyring.set_keyring(before)


def test_only_a_real_keyring_is_used(memory_keyring: MemoryKeyring) -> None:
    assert usable_keyring() is memory_keyring
    null = keyring.backends.null.Keyring()  # type: ignore[no-untyped-call]  # untyped in keyring
    for backend in (fail_keyring(), null, LowKeyring()):
        keyring.set_keyring(backend)
        assert usable_keyring() is None, backend


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's session bus")
def test_on_linux_without_a_session_bus_keyring_is_not_even_imported(
    memory_keyring: MemoryKeyring,
) -> None:
    assert usable_keyring({}) is None
    assert usable_keyring({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus"}) is not None
    assert usable_keyring({"PYTHON_KEYRING_BACKEND": "x.Keyring"}) is not None


def test_keys_go_to_the_keyring_and_only_their_names_to_a_private_index(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    path = tmp_path / "config" / "credentials.json"
    store = open_credentials(path)
    assert isinstance(store, KeyringCredentialStore)
    store.set("dev-1", "key-one")
    store.set("http://10.0.0.5:8080", "key-two")
    store.set("dev-1", "key-new")
    assert store.get("dev-1") == "key-new"
    assert memory_keyring.entries == {
        (KEYRING_SERVICE, "dev-1"): "key-new",
        (KEYRING_SERVICE, "http://10.0.0.5:8080"): "key-two",
    }
    assert not path.exists()  # never both
    index = path.with_name(KEYRING_INDEX)
    assert mode(index) == 0o600
    text = index.read_text(encoding="utf-8")
    assert "key-" not in text  # device names only, no API keys
    assert json.loads(text)["devices"] == ["dev-1", "http://10.0.0.5:8080"]

    again = open_credentials(path)
    assert again.items() == [("dev-1", "key-new"), ("http://10.0.0.5:8080", "key-two")]
    again.delete("http://10.0.0.5:8080")
    again.delete("never-there")
    assert list(memory_keyring.entries) == [(KEYRING_SERVICE, "dev-1")]
    # Removed by hand in the keyring's own program: forgotten from the index too.
    memory_keyring.entries.clear()
    assert open_credentials(path).keys() == []
    assert json.loads(index.read_text(encoding="utf-8"))["devices"] == []


def test_keys_in_the_file_move_into_the_keyring_when_it_appears(
    tmp_path: Path, memory_keyring: MemoryKeyring, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "credentials.json"
    keyring.set_keyring(fail_keyring())
    before = open_credentials(path)
    assert isinstance(before, CredentialStore)
    before.set("dev-1", "key-one")
    before.set("dev-2", "key-two")
    keyring.set_keyring(memory_keyring)  # e.g. the user logged in to a desktop session

    with caplog.at_level(logging.INFO, logger="console.credentials"):
        store = open_credentials(path)
    assert isinstance(store, KeyringCredentialStore)
    assert store.items() == [("dev-1", "key-one"), ("dev-2", "key-two")]
    assert not path.exists()
    assert len(memory_keyring.entries) == 2
    assert "moved 2 API keys" in caplog.text


def test_a_keyring_that_refuses_leaves_the_keys_in_the_file(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    path = tmp_path / "credentials.json"
    CredentialStore(path).set("dev-1", "key-one")
    memory_keyring.fail = "set"
    store = open_credentials(path)
    assert isinstance(store, CredentialStore)
    assert store.get("dev-1") == "key-one"
    assert memory_keyring.entries == {}
    assert mode(path) == 0o600


def test_a_locked_keyring_falls_back_to_the_file_for_this_run(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    path = tmp_path / "credentials.json"
    open_credentials(path).set("dev-1", "key-one")
    memory_keyring.fail = "get"
    store = open_credentials(path)
    assert isinstance(store, CredentialStore)
    assert store.get("dev-1") is None
    memory_keyring.fail = ""
    assert open_credentials(path).get("dev-1") == "key-one"  # nothing was lost


def test_switched_off_the_keys_move_back_to_the_file(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    path = tmp_path / "credentials.json"
    open_credentials(path).set("dev-1", "key-one")
    store = open_credentials(path, use_keyring=False)  # CARWASH_CONSOLE_KEYRING=0
    assert isinstance(store, CredentialStore)
    assert store.get("dev-1") == "key-one"
    assert mode(path) == 0o600
    assert memory_keyring.entries == {}
    assert not path.with_name(KEYRING_INDEX).exists()
    store.set("dev-2", "key-two")
    assert memory_keyring.entries == {}


def test_without_a_keyring_the_private_file_is_used(tmp_path: Path, no_keyring: None) -> None:
    path = tmp_path / "config" / "credentials.json"
    store = open_credentials(path)
    assert isinstance(store, CredentialStore)
    store.set("dev-1", "key-one")
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert not path.with_name(KEYRING_INDEX).exists()
