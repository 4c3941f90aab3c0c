"""The pure parts of the live config: classification, merge patch, diff, masking, validation."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from edge import cli
from edge.config import APPLY_KEY, EdgeConfig, load_config
from edge.live_config import (
    APPLY,
    MASK,
    ConfigInvalid,
    _assign,
    _drop_none,
    classify,
    diff,
    mask,
    merge_patch,
    plain,
    toml_text,
    unmask,
    validate,
)

pytestmark = pytest.mark.unit

APPLY_CLASS = re.compile(r"^(hot|restart:[a-z_]+)$")


def _leaves(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every leaf property of the JSON schema by dotted path (sections followed via $ref)."""
    defs = schema.get("$defs", {})
    found: dict[str, dict[str, Any]] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, prop in node["properties"].items():
            ref = prop.get("$ref") or next(
                (a["$ref"] for a in prop.get("allOf", []) if "$ref" in a), None
            )
            if ref is not None:
                walk(defs[ref.rsplit("/", 1)[1]], f"{prefix}{name}.")
            else:
                found[f"{prefix}{name}"] = prop

    walk(schema, "")
    return found


def test_every_leaf_of_the_schema_is_classified() -> None:
    leaves = _leaves(EdgeConfig.model_json_schema())
    assert len(leaves) > 30
    unclassified = [
        path for path, prop in leaves.items() if not APPLY_CLASS.match(str(prop.get(APPLY_KEY)))
    ]
    assert unclassified == []
    assert set(APPLY) == set(leaves)  # the manager sees exactly the schema's keys
    assert {k: v for k, v in APPLY.items() if v == "restart:process"}.keys() == {
        "data_dir",
        "http.listen",
        "http.max_connections",  # uvicorn's limit_concurrency and the header deadline are
        "http.header_timeout_s",  # set when the server is made
    }
    assert APPLY["camera.source"] == "restart:camera"
    assert APPLY["camera.rollback_grace_s"] == "hot"
    assert APPLY["snapshots.jpeg_quality"] == "hot"


def test_config_schema_command_carries_x_apply(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config-schema"]) == 0
    leaves = _leaves(json.loads(capsys.readouterr().out))
    assert leaves["camera.source"][APPLY_KEY] == "restart:camera"
    assert leaves["http.rate_limit_per_s"][APPLY_KEY] == "hot"


# RFC 7396 appendix A, every example.
RFC7396 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC7396)
def test_merge_patch_follows_rfc_7396(target: Any, patch: Any, result: Any) -> None:
    before = json.dumps(target)
    assert merge_patch(target, patch) == result
    assert json.dumps(target) == before  # the target is not modified


def _config(**camera: Any) -> EdgeConfig:
    return EdgeConfig.model_validate({"name": "bay", "camera": camera})


def test_diff_and_classification() -> None:
    old = plain(_config(source="rtsp://cam/a"))
    new = merge_patch(
        old,
        {
            "camera": {"source": "rtsp://cam/b", "freshness_target_ms": 1000},
            "snapshots": {"history": 5},
            "guards": {"hot_c": 90},
            "http": {"listen": "0.0.0.0:9000"},
        },
    )
    changed = diff(old, new)
    assert changed == [
        "camera.source",
        "camera.freshness_target_ms",
        "snapshots.history",
        "http.listen",
        "guards.hot_c",
    ]
    hot, components, process = classify(changed)
    assert hot == ["camera.freshness_target_ms", "snapshots.history"]
    assert components == ["camera", "guards"]
    assert process == ["http.listen"]
    assert diff(old, old) == []


def test_secrets_are_masked_and_kept_when_sent_back() -> None:
    running = plain(_config(source="rtsp://admin:s3cr%40t@cam:554/live", password="pw"))  # noqa: S106
    shown = mask(running)
    assert shown["camera"]["source"] == f"rtsp://admin:{MASK}@cam:554/live"
    assert shown["camera"]["password"] == MASK
    assert "s3cr" not in json.dumps(shown)
    assert "pw" not in json.dumps(shown["camera"]["password"])
    # Sent back unchanged: the secrets stay; nothing differs.
    assert diff(running, unmask(shown, running)) == []
    # A new path with the mask keeps the password; a new password replaces it.
    moved = merge_patch(shown, {"camera": {"source": f"rtsp://admin:{MASK}@cam2/live"}})
    assert unmask(moved, running)["camera"]["source"] == "rtsp://admin:s3cr%40t@cam2/live"
    changed = merge_patch(shown, {"camera": {"source": "rtsp://admin:new@cam/live"}})
    assert unmask(changed, running)["camera"]["source"] == "rtsp://admin:new@cam/live"
    assert mask(plain(_config(source="rtsp://cam/live")))["camera"]["password"] is None


def test_validation_names_every_path() -> None:
    data = plain(_config())
    bad = merge_patch(
        data,
        {
            "camera": {"source": "ftp://cam", "fps": 5},
            "snapshots": {"history": 0},
            "guards": {"hot_c": 60, "cool_c": 65},
        },
    )
    with pytest.raises(ConfigInvalid) as caught:
        validate(bad)
    paths = {e.path: e.reason for e in caught.value.errors}
    assert "unsupported scheme 'ftp'" in paths["camera.source"]
    assert "extra" in paths["camera.fps"].lower()
    assert "greater than or equal to 1" in paths["snapshots.history"]
    assert "cool_c" in paths["guards"]  # a whole-section check names its section
    with pytest.raises(ConfigInvalid) as root:
        validate(["not", "an", "object"])
    assert [e.path for e in root.value.errors] == ["(root)"]


def test_the_written_file_loads_back_to_the_same_config(tmp_path: Path) -> None:
    config = EdgeConfig.model_validate({
        "name": "bay 7", "site": "Nord", "data_dir": str(tmp_path),
        "camera": {"source": "rtsp://u:p%40ss@cam/x", "username": None, "password": "pw"},
        "discovery": {"interfaces": ["127.0.0.1"]},
    })  # fmt: skip
    text = toml_text(config, 7)
    assert text.startswith("# carwash-edge configuration, version 7")
    tomllib.loads(text)  # valid TOML (no null: unset keys left out)
    path = tmp_path / "edge.toml"
    path.write_text(text, encoding="utf-8")
    loaded = load_config(path)
    assert plain(loaded) == plain(config)
    assert loaded.camera.password is not None
    assert loaded.camera.password.get_secret_value() == "pw"


def test_flag_values_are_not_written_into_the_file() -> None:
    config = _config(source="rtsp://from-flag/x")
    flags = {"camera.source": ("rtsp://from-flag/x", "rtsp://from-file/x"), "site": ("", None)}
    data = tomllib.loads(toml_text(config, 3, flags))
    assert data["camera"]["source"] == "rtsp://from-file/x"  # as the file had it
    assert "site" not in data  # the file did not have it
    # Changed through the API (no longer the flag's value): written.
    config.camera.source = "rtsp://from-api/x"
    assert tomllib.loads(toml_text(config, 4, flags))["camera"]["source"] == "rtsp://from-api/x"


def test_assign_changes_the_running_model_in_place() -> None:
    running = _config()
    snapshots, guards = running.snapshots, running.guards
    new = EdgeConfig.model_validate(
        merge_patch(
            plain(running), {"snapshots": {"history": 3}, "guards": {"hot_c": 95, "cool_c": 85}}
        )
    )
    # Applied one by one, cool_c=85 before hot_c=95 would fail a validated assignment.
    for path in diff(plain(running), plain(new)):
        _assign(running, path, getattr(getattr(new, path.split(".")[0]), path.split(".")[1]))
    assert running.snapshots is snapshots
    assert snapshots.history == 3
    assert running.guards is guards
    assert (guards.hot_c, guards.cool_c) == (95, 85)


def test_nulls_are_dropped_inside_arrays_of_tables_too() -> None:
    # TOML has no null: an optional key unset inside [[locks.boards]] must be left out, not crash
    # the writer after a PATCH.
    data = {"a": None, "boards": [{"unit": 1, "name": None}, None], "t": {"x": None, "y": 2}}
    cleaned = _drop_none(data)
    assert cleaned == {"boards": [{"unit": 1}], "t": {"y": 2}}
    assert tomllib.loads(tomli_w.dumps(cleaned)) == cleaned
