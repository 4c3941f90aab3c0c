"""The config editor's pure half against the edge's real config model and its JSON schema."""

from __future__ import annotations

from typing import Any

import pytest

from console.models.config_form import (
    MASK,
    Change,
    FieldSpec,
    FieldValueError,
    GroupSpec,
    diff,
    errors_by_path,
    form_from_schema,
    format_value,
    get_path,
    merge_patch,
    nearest_field,
    parse_text,
    text_of,
    validate,
)
from edge.config import EdgeConfig

pytestmark = pytest.mark.unit


def _schema() -> dict[str, Any]:
    return EdgeConfig.model_json_schema()


def _specs() -> dict[str, FieldSpec]:
    return {spec.path: spec for spec in form_from_schema(_schema()).leaves()}


def _current() -> dict[str, Any]:
    return EdgeConfig(name="bay-1", camera={"password": "hunter2"}).model_dump(mode="json")


def test_objects_become_groups_and_leaves_get_kinds_and_bounds() -> None:
    form = form_from_schema(_schema())
    groups = {c.path: c for c in form.children if isinstance(c, GroupSpec)}
    assert {"camera", "snapshots", "http", "discovery", "store", "guards"} <= set(groups)
    assert groups["camera"].description == "The camera and how its stream is decoded."
    specs = _specs()
    target = specs["camera.freshness_target_ms"]
    assert (target.kind, target.minimum, target.maximum) == ("int", 100, 60_000)
    assert target.description.startswith("Oldest picture the edge may serve")
    assert "≥ 100 and ≤ 60000" in target.tooltip
    timeout = specs["camera.connect_timeout_s"]
    assert (timeout.kind, timeout.exclusive_minimum, timeout.maximum) == ("number", 0, 60)
    assert specs["camera.rtsp_transport"].kind == "enum"
    assert specs["camera.rtsp_transport"].choices == ("tcp", "udp")
    assert specs["discovery.enabled"].kind == "bool"
    interfaces = specs["discovery.interfaces"]
    assert (interfaces.kind, interfaces.nullable, interfaces.item_kind) == ("list", True, "string")
    assert specs["camera.password"].kind == "secret"
    assert specs["camera.username"].nullable
    assert specs["name"].min_length == 1
    # Every leaf of the real config has a field, and nothing else does.
    assert set(specs) == set(_leaf_paths(_current()))


def _leaf_paths(config: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            paths += _leaf_paths(value, path + ".")
        else:
            paths.append(path)
    return paths


def test_x_apply_becomes_a_restart_badge() -> None:
    spec = FieldSpec("camera.source", "Source", "string", apply="restart:camera")
    assert spec.badge == "restarts camera"
    assert "Changing it restarts camera." in spec.tooltip
    assert FieldSpec("camera.x", "X", "int", apply="hot").badge == ""
    # The real schema's x-apply (edge: every leaf says hot or restart:<component>).
    specs = _specs()
    applies = {spec.apply for spec in specs.values()}
    if applies == {""}:
        pytest.skip("this edge's schema has no x-apply yet")
    assert specs["camera.source"].restarts == "camera"
    assert specs["camera.freshness_target_ms"].badge == ""
    # Keys the API refuses to change are shown, not editable.
    assert not specs["http.listen"].editable
    assert specs["http.listen"].badge == "set on the device"
    assert specs["camera.source"].editable


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("camera.freshness_target_ms", "3000", 3000),
        ("camera.connect_timeout_s", "2.5", 2.5),
        ("discovery.interfaces", "127.0.0.1, 10.0.0.2", ["127.0.0.1", "10.0.0.2"]),
        ("discovery.interfaces", "", None),
        ("camera.username", "", None),
        ("camera.username", "admin", "admin"),
        ("site", "", ""),
    ],
)
def test_texts_parse_to_values(path: str, text: str, expected: Any) -> None:
    assert parse_text(_specs()[path], text) == expected


@pytest.mark.parametrize(
    ("path", "text", "message"),
    [
        ("camera.freshness_target_ms", "50", "must be ≥ 100 and ≤ 60000"),
        ("camera.freshness_target_ms", "2.5", "not a whole number"),
        ("camera.freshness_target_ms", "soon", "not a number"),
        ("camera.connect_timeout_s", "0", "must be > 0 and ≤ 60"),
        ("discovery.interfaces", "a,,b", "empty item"),
        ("name", "", "must not be empty"),
        ("name", "x" * 65, "at most 64 characters"),
    ],
)
def test_bad_texts_are_refused_with_a_reason(path: str, text: str, message: str) -> None:
    with pytest.raises(FieldValueError, match=message):
        parse_text(_specs()[path], text)


def test_client_side_validation_agrees_with_the_edge_model() -> None:
    """Whatever the form accepts for a bounded number, the edge's model accepts too."""
    specs = _specs()
    for path in ("camera.freshness_target_ms", "snapshots.jpeg_quality", "camera.reconnect_max_s"):
        spec = specs[path]
        assert spec.minimum is not None
        for value in (spec.minimum - 1, spec.minimum, spec.maximum, (spec.maximum or 0) + 1):
            config = _current()
            section, leaf = path.split(".")
            config[section][leaf] = value
            config["camera"]["password"] = None
            try:
                validate(spec, value)
                form_ok = True
            except FieldValueError:
                form_ok = False
            try:
                EdgeConfig.model_validate(config)
                model_ok = True
            except ValueError:
                model_ok = False
            assert form_ok == model_ok, (path, value)


def test_enum_and_bool_validation() -> None:
    specs = _specs()
    validate(specs["camera.rtsp_transport"], "udp")
    with pytest.raises(FieldValueError, match="one of tcp, udp"):
        validate(specs["camera.rtsp_transport"], "sctp")
    with pytest.raises(FieldValueError, match="yes or no"):
        validate(specs["discovery.enabled"], 1)
    validate(specs["camera.password"], MASK)  # the masked secret is left alone
    # Enums of numbers keep their type (a combo item's data, not its text).
    numeric = [s for s in specs.values() if s.kind == "enum" and isinstance(s.choices[0], int)]
    for spec in numeric:
        validate(spec, spec.choices[-1])
        with pytest.raises(FieldValueError, match="must be one of"):
            validate(spec, str(spec.choices[-1]))


def test_diff_lists_changed_paths_and_the_patch_validates_on_the_edge_model() -> None:
    specs = _specs()
    current = _current()
    current["camera"]["password"] = MASK  # as the edge sends it
    edited = {spec.path: get_path(current, spec.path) for spec in specs.values()}
    edited["camera.freshness_target_ms"] = 4000
    edited["snapshots.jpeg_quality"] = 70
    edited["discovery.interfaces"] = ["127.0.0.1"]
    edited["camera.connect_timeout_s"] = 5  # int for a float equal in value: no change
    changes = diff(current, edited, list(specs.values()))
    assert [str(c) for c in changes] == [
        "camera.freshness_target_ms: 2500 → 4000",
        "snapshots.jpeg_quality: 85 → 70",
        "discovery.interfaces: (none) → 127.0.0.1",
    ]
    patch = merge_patch(changes)
    assert patch == {
        "camera": {"freshness_target_ms": 4000},
        "snapshots": {"jpeg_quality": 70},
        "discovery": {"interfaces": ["127.0.0.1"]},
    }
    merged = _current()
    for section, values in patch.items():
        merged[section].update(values)
    model = EdgeConfig.model_validate(merged)
    assert model.camera.freshness_target_ms == 4000
    assert model.discovery.interfaces == ["127.0.0.1"]


def test_a_cleared_value_patches_to_null() -> None:
    change = Change("camera.username", "u", None)
    assert merge_patch([change]) == {"camera": {"username": None}}
    assert str(change) == "camera.username: u → (none)"


def test_values_format_for_people() -> None:
    specs = _specs()
    assert format_value(True) == "yes"
    assert format_value(5.0) == "5"
    assert format_value(["a", "b"]) == "a, b"
    assert text_of(specs["discovery.interfaces"], ["a", "b"]) == "a, b"
    assert text_of(specs["camera.username"], None) == ""


def test_edge_errors_map_to_form_fields() -> None:
    errors = [
        {"path": "camera.freshness_target_ms", "reason": "too small"},
        {"path": "camera.freshness_target_ms", "reason": "really"},
        {"path": "guards", "reason": "cool_c (90) must be below hot_c (80)"},
    ]
    by_path = errors_by_path(errors)
    assert by_path["camera.freshness_target_ms"] == "too small; really"
    known = list(_specs())
    assert nearest_field("camera.freshness_target_ms", known) == "camera.freshness_target_ms"
    # A group's own objection goes to the field its reason names, else to the group itself.
    assert nearest_field("guards", known) is None
    assert nearest_field("guards", known, "rss_limit_mb must be above 100") == "guards.rss_limit_mb"
    assert nearest_field("discovery.interfaces.0", known) == "discovery.interfaces"
    assert nearest_field("nowhere", known) is None


def test_a_tuple_of_numbers_edits_as_numbers_and_is_no_change_when_equal() -> None:
    # pydantic writes a fixed-length tuple with "prefixItems" (plates.roi: four fractions).
    spec = FieldSpec("plates.roi", "Roi", "list", item_kind="number")
    schema_spec = form_from_schema(
        {"properties": {"roi": {"type": "array", "minItems": 2, "maxItems": 2,
                                "prefixItems": [{"type": "number"}, {"type": "number"}]}}}
    ).leaves()  # fmt: skip
    assert [s.item_kind for s in schema_spec] == ["number"]
    assert parse_text(spec, text_of(spec, [0, 0.5])) == [0.0, 0.5]
    specs = [FieldSpec("plates.roi", "Roi", "list", item_kind="number")]
    current = {"plates": {"roi": [0, 0, 1, 1]}}  # as JSON may carry whole floats
    assert diff(current, {"plates.roi": [0.0, 0.0, 1.0, 1.0]}, specs) == []
    assert [str(c) for c in diff(current, {"plates.roi": [0.0, 0.1, 1.0, 1.0]}, specs)] == [
        "plates.roi: 0, 0, 1, 1 → 0, 0.1, 1, 1"
    ]


def test_a_list_of_objects_is_a_table_whose_unchanged_rows_are_no_change() -> None:
    from console.models.config_form import group_of, parse_cell

    schema = {
        "$defs": {
            "Board": {
                "type": "object",
                "properties": {
                    "unit": {"type": "integer", "minimum": 1, "maximum": 247},
                    "map": {"$ref": "#/$defs/Map"},
                },
            },
            "Map": {
                "type": "object",
                "properties": {"coil_base": {"type": "integer", "default": 0}},
            },
        },
        "type": "object",
        "properties": {
            "locks": {
                "type": "object",
                "properties": {"boards": {"type": "array", "items": {"$ref": "#/$defs/Board"}}},
            }
        },
    }
    form = form_from_schema(schema)
    (boards,) = list(form.leaves())
    assert boards.kind == "table"
    assert [c.path for c in boards.columns] == ["unit", "map.coil_base"]
    config = {"locks": {"boards": [{"unit": 1, "map": {"coil_base": 0}}]}}
    same = {"locks.boards": [{"unit": 1, "map": {"coil_base": 0.0}}]}
    assert diff(config, same, [boards]) == []
    changed = {"locks.boards": [{"unit": 2, "map": {"coil_base": 0}}]}
    assert merge_patch(diff(config, changed, [boards])) == {
        "locks": {"boards": [{"unit": 2, "map": {"coil_base": 0}}]}
    }
    with pytest.raises(FieldValueError, match="≥ 1"):
        parse_cell(boards.columns[0], "0")
    assert group_of("locks.boards.0", ["locks", "plates", "plates.motion"]) == "locks"
    assert group_of("plates.motion", ["locks", "plates", "plates.motion"]) == "plates.motion"
