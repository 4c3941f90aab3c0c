"""Secrets and bad input, pure parts: which config keys are secret, URL credentials masked and
put back, ASCII-only numbers, JSON depth, private file modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from edge.api.asgi import MAX_INT, BadRequest, float_param, int_param
from edge.config import EdgeConfig, redact_url, unredact_url
from edge.datadir import check_writable
from edge.keys import KeyStore
from edge.live_config import MAX_JSON_DEPTH, SECRETS, json_depth, mask, plain, unmask
from edge.store import Store

pytestmark = pytest.mark.unit


def _schema_secrets(schema: dict[str, Any]) -> set[str]:
    """Secret leaves as the JSON schema tells them: SecretStr (``format: password``) or
    ``x-secret-url``; found without the code under test."""
    defs = schema.get("$defs", {})
    found: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, prop in node.get("properties", {}).items():
            ref = prop.get("$ref") or next(
                (s.get("$ref") for s in prop.get("anyOf", []) if "$ref" in s), None
            )
            if ref is not None and "properties" in defs[ref.rsplit("/", 1)[-1]]:
                walk(defs[ref.rsplit("/", 1)[-1]], f"{prefix}{name}.")
                continue
            kinds = [prop, *prop.get("anyOf", [])]
            if any(k.get("format") == "password" for k in kinds) or prop.get("x-secret-url"):
                found.add(f"{prefix}{name}")

    walk(schema, "")
    return found


def test_every_secret_field_is_found_from_the_model() -> None:
    expected = _schema_secrets(EdgeConfig.model_json_schema())
    assert {"camera.password", "plates.cloud.token", "camera.source"} <= expected
    assert set(SECRETS) == expected


def test_plain_reveals_every_secret_and_mask_hides_it() -> None:
    config = EdgeConfig.model_validate({
        "camera": {"password": "pw-1", "source": "rtsp://u:pw-2@cam/x?user=a&password=pw-3"},
        "plates": {"cloud": {"token": "tok-4"}},
    })  # fmt: skip
    data = plain(config)
    assert data["camera"]["password"] == "pw-1"  # noqa: S105 - a test value
    # pydantic alone dumps "**********" (the bug that lost the token)
    assert data["plates"]["cloud"]["token"] == "tok-4"  # noqa: S105 - a test value
    shown = mask(data)
    assert not any(f"-{n}" in str(shown) for n in range(1, 5)), shown
    assert shown["camera"]["source"] == "rtsp://u:***@cam/x?user=a&password=***"
    assert unmask(shown, data) == data


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("rtsp://10.0.0.5/cam/realmonitor?channel=1&user=admin&password=h%26nter2",
         "rtsp://10.0.0.5/cam/realmonitor?channel=1&user=admin&password=***"),
        ("rtsp://admin:pw@[fe80::1]:554/Streaming/Channels/101?auth=xyz",
         "rtsp://admin:***@[fe80::1]:554/Streaming/Channels/101?auth=***"),
        ("rtsp://admin@cam/live?PWD=x&token=", "rtsp://admin@cam/live?PWD=***&token="),
        ("synthetic://?width=320&height=180", "synthetic://?width=320&height=180"),
    ],
)  # fmt: skip
def test_url_credentials_are_masked_and_put_back(url: str, masked: str) -> None:
    assert redact_url(url) == masked
    assert unredact_url(masked, url) == url


def test_a_masked_url_for_another_parameter_is_not_filled_in() -> None:
    original = "rtsp://cam/live?password=one"
    assert unredact_url("rtsp://cam/live?token=***", original) == "rtsp://cam/live?token=***"


@pytest.mark.parametrize(
    "value", ["\u0661\u0662\u0663", "\uff11\uff12", "12a", "99999999999999999999", "-1"]
)
def test_int_params_take_ascii_digits_within_bounds_only(value: str) -> None:
    with pytest.raises(BadRequest) as err:
        int_param({"width": value}, "width", minimum=0)
    assert value not in str(err.value)  # never echoed


def test_int_param_bounds() -> None:
    assert int_param({"after": str(MAX_INT)}, "after") == MAX_INT
    with pytest.raises(BadRequest):
        int_param({"after": str(MAX_INT + 1)}, "after")


@pytest.mark.parametrize("value", ["\u0661.\u0665", "nan", "inf", "1e400", "0x10"])
def test_float_params_take_plain_ascii_decimals_only(value: str) -> None:
    with pytest.raises(BadRequest):
        float_param({"fps": value}, "fps", minimum=0.1, maximum=10)


def test_json_depth_is_measured_without_recursion() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep) > MAX_JSON_DEPTH
    assert json_depth({"a": {"b": [1, {"c": 2}]}}) == 4


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_and_keys_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        data_dir = tmp_path / "fresh" / "data"
        store = Store.in_dir(data_dir)
        try:
            store.save_config_version("{}", "test")
            files = sorted(p.name for p in data_dir.iterdir())
            assert "edge.db" in files
            assert {name: _mode(data_dir / name) for name in files} == dict.fromkeys(files, 0o600)
        finally:
            store.close()
        assert _mode(data_dir) == 0o700
        keys_dir = tmp_path / "keys-only"
        KeyStore.in_dir(keys_dir).create("viewer")
        assert _mode(keys_dir) == 0o700
        assert _mode(next(keys_dir.iterdir())) == 0o600
    finally:
        os.umask(old)


def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    Store.open(db).close()
    db.chmod(0o644)
    Store.open(db).close()
    assert _mode(db) == 0o600


def test_check_writable_refuses_a_folder_that_cannot_be(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(OSError, match="a-file"):
        check_writable(blocker / "data")
    check_writable(tmp_path / "ok")
    assert _mode(tmp_path / "ok") == 0o700
