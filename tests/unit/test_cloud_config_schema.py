"""The edge config schema the cloud ships, its validator, the merge and the rollout rules."""

from __future__ import annotations

import json

import pytest

from cloud_sync.configs.merge import deep_merge, digest, merge_layers
from cloud_sync.configs.schema import SchemaValidator, edge_validator, load_schema
from cloud_sync.errors import Invalid
from cloud_sync.rollouts.plan import DeviceView, check_waves, judge, split, wave_verdict
from edge.config import EdgeConfig

pytestmark = pytest.mark.unit


def test_the_shipped_schema_is_the_edges() -> None:
    """Fails when edge/config/ changed and cloud_sync/configs/edge_config.schema.json was not
    regenerated: python -c 'import json; from edge.config import EdgeConfig;
    print(json.dumps(EdgeConfig.model_json_schema(), indent=2, sort_keys=True))'
    > cloud_sync/configs/edge_config.schema.json"""
    assert load_schema() == json.loads(json.dumps(EdgeConfig.model_json_schema()))


def test_the_edges_defaults_are_valid_and_bad_values_name_their_paths() -> None:
    validator = edge_validator()
    assert validator.problems(json.loads(EdgeConfig().model_dump_json())) == []
    bad = {"snapshots": {"history": 0, "jpeg_quality": "high"}, "camera": {"rtsp_transport": "x"},
           "http": {"rate_limit_per_s": 0}, "extra": 1}  # fmt: skip
    found = {p.path: p.reason for p in validator.problems(bad)}
    assert found == {
        "snapshots.history": "must be >= 1",
        "snapshots.jpeg_quality": "expected integer, got string",
        "camera.rtsp_transport": 'must be one of "tcp", "udp"',
        "http.rate_limit_per_s": "must be > 0",
        "extra": "unknown key",
    }


def test_partial_documents_skip_required_and_unknown_keywords_are_refused() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
              "additionalProperties": False}  # fmt: skip
    validator = SchemaValidator(schema)
    assert [p.path for p in validator.problems({})] == ["a"]
    assert validator.problems({}, partial=True) == []
    assert validator.problems({"a": True})[0].reason == "expected integer, got boolean"
    with pytest.raises(ValueError, match="oneOf"):
        SchemaValidator({"oneOf": [{"type": "string"}]})


def test_deep_merge_precedence_and_no_aliasing() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    merged = merge_layers([base, {"a": {"y": [3]}}, {"a": {"x": None}, "c": {"d": 1}}])
    assert merged == {"a": {"x": None, "y": [3]}, "b": 1, "c": {"d": 1}}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    out = deep_merge({}, {"l": [{"k": 1}]})
    out["l"][0]["k"] = 2
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1}) != digest({"a": 2, "b": 2})


def test_waves_split_cover_every_device_once() -> None:
    ids = [f"d{i}" for i in range(10)]
    waves = split("r", ids, [0.1, 0.5, 1.0])
    assert [len(w) for w in waves] == [1, 4, 5]
    assert sorted(d for w in waves for d in w) == sorted(ids)
    assert [len(w) for w in split("r", ids[:2], [0.1, 0.2, 1.0])] == [1, 1]
    with pytest.raises(Invalid):
        check_waves([0.5, 0.4, 1.0])
    with pytest.raises(Invalid):
        check_waves([0.1, 0.9])


def _view(**kw: object) -> DeviceView:
    base: dict[str, object] = {
        "version": 3, "started_at": 100.0, "last_seen": None, "status": None,
        "stream_status": None, "cloud_config_version": None, "report_version": None,
        "report_outcome": None, "report_message": "", "report_at": None,
    }  # fmt: skip
    return DeviceView(**{**base, **kw})  # type: ignore[arg-type]


def test_judging_a_device() -> None:
    ok = _view(last_seen=110.0, status="ok", stream_status="online", cloud_config_version=3)
    assert judge(ok, 111.0, 60, 30) == ("succeeded", "applied; stream online")
    reported = _view(report_version=3, report_outcome="applied", report_at=105.0,
                     last_seen=106.0, status="ok", stream_status="online")  # fmt: skip
    assert judge(reported, 107.0, 60, 30) is not None
    stale = _view(last_seen=104.0, stream_status="online", report_version=3,
                  report_outcome="applied", report_at=105.0)  # fmt: skip
    assert judge(stale, 107.0, 60, 30) is None  # no heartbeat since it applied
    rejected = _view(report_version=3, report_outcome="rejected", report_message="bad url")
    assert judge(rejected, 101.0, 60, 30) == ("failed", "rejected by the device: bad url")
    assert judge(_view(last_seen=99.0), 200.0, 600, 30) == ("failed", "device offline")
    offline_stream = _view(last_seen=159.0, cloud_config_version=3, stream_status="offline")
    assert judge(offline_stream, 161.0, 60, 30) == ("failed", "timeout after 60 s: stream offline")
    assert wave_verdict(["succeeded", "failed"], 0.5) == "done"
    assert wave_verdict(["in_progress", "failed"], 0.0) == "failed"
    assert wave_verdict(["in_progress", "succeeded"], 0.0) == "running"
