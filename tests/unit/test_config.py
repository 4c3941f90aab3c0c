from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from edge.cli import default_config_toml
from edge.config import EdgeConfig, load_config, parse_listen, redact_url
from edge.errors import ConfigError

pytestmark = pytest.mark.unit


def test_defaults_are_valid_and_described() -> None:
    config = EdgeConfig()
    assert config.camera.source.startswith("synthetic://")
    assert config.http.listen == "127.0.0.1:8080"
    assert (config.guards.rss_limit_mb, config.guards.hot_c, config.guards.cool_c) == (350, 80, 70)
    models = (EdgeConfig, type(config.camera), type(config.snapshots), type(config.http),
              type(config.guards))  # fmt: skip
    for model in models:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_unknown_key_is_an_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('[camera]\nsorce = "rtsp://cam/stream"\n')
    with pytest.raises(ConfigError, match=r"camera\.sorce"):
        load_config(path)


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[camera]\nsource = "http://cam/x"\n', "unsupported scheme 'http'"),
        ("[camera]\nfreshness_target_ms = 5\n", "camera.freshness_target_ms"),
        ('[http]\nlisten = "8080"\n', "expected HOST:PORT"),
        ("[snapshots]\nhistory = 0\n", "snapshots.history"),
        ("[guards]\nhot_c = 70\ncool_c = 75\n", "guards: .*cool_c"),
    ],
)
def test_bad_values_are_reported(tmp_path: Path, toml: str, needle: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=f"(?s){needle}"):
        load_config(path)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[camera\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('name = "from-file"\n[camera]\nsource = "rtsp://a/b"\n')
    config = load_config(path, {"camera.source": "file:///tmp/x.mp4", "name": "flag"})
    assert config.camera.source == "file:///tmp/x.mp4"
    assert config.name == "flag"


def test_printed_default_config_loads_back_to_the_defaults(tmp_path: Path) -> None:
    text = default_config_toml()
    tomllib.loads(text)  # valid TOML
    path = tmp_path / "edge.toml"
    path.write_text(text)
    loaded = load_config(path)
    expected = EdgeConfig(name="bay-1")
    assert loaded.model_dump() == expected.model_dump()


def test_credentials_are_inserted_for_the_reader_and_masked_for_people() -> None:
    config = EdgeConfig.model_validate(
        {"camera": {"source": "rtsp://10.0.0.5:554/live", "username": "adm", "password": "p@ss"}}
    )
    url = config.camera.source_url_with_credentials()
    assert url == "rtsp://adm:p%40ss@10.0.0.5:554/live"
    assert redact_url(url) == "rtsp://adm:***@10.0.0.5:554/live"
    assert redact_url("rtsp://10.0.0.5/live") == "rtsp://10.0.0.5/live"
    assert "p@ss" not in config.model_dump_json()


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    for bad in ("8080", ":80", "host:", "host:99999"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad)


def test_advertised_caps_follow_the_config() -> None:
    from edge.runner import advertised_caps

    assert advertised_caps(EdgeConfig(name="b")) == ("snapshot", "plates")
    off = EdgeConfig.model_validate({"name": "b", "plates": {"policy": "none"}})
    assert advertised_caps(off) == ("snapshot",)
    board = {"enabled": True, "boards": [{"unit": 1, "locks": 2}]}
    both = EdgeConfig.model_validate({"name": "b", "locks": board})
    assert advertised_caps(both) == ("snapshot", "plates", "carts")


def test_plate_policy_auto_follows_the_cloud_token() -> None:
    assert EdgeConfig(name="b").plates.effective_policy() == "local"
    token = EdgeConfig.model_validate({"name": "b", "plates": {"cloud": {"token": "k"}}})
    assert token.plates.effective_policy() == "local_then_cloud"
    fixed = {"name": "b", "plates": {"policy": "local", "cloud": {"token": "k"}}}
    assert EdgeConfig.model_validate(fixed).plates.effective_policy() == "local"


@pytest.mark.parametrize(
    ("plates", "message"),
    [
        ({"roi": [0.5, 0.0, 0.4, 1.0]}, "x0 < x1"),
        ({"formats": ["[A-Z"]}, "not a regular expression"),
        ({"motion": {"enter_fraction": 0.05, "exit_fraction": 0.1}}, "hysteresis"),
        ({"policy": "sometimes"}, "policy"),
    ],
)
def test_bad_plate_settings_are_refused_with_their_path(
    plates: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as err:
        EdgeConfig.model_validate({"name": "b", "plates": plates})
    assert message in str(err.value)
    assert "plates" in str(err.value)
