from __future__ import annotations

import time

import pytest

from edge.camera.av_source import AvSource
from edge.config import CameraConfig
from edge.metrics import EdgeMetrics

pytestmark = pytest.mark.unit


def _source() -> AvSource:
    config = CameraConfig(source="file:///nonexistent.mp4", demand_hold_s=5.0)
    return AvSource(config.source, config, lambda frame: None, EdgeMetrics())


def test_while_hot_viewers_do_not_force_full_decode() -> None:
    source = _source()
    now = time.monotonic()
    source._last_key_mono = now  # a keyframe just arrived: keyframes meet the target
    source.request_fresh(2.0, explicit=False)
    assert source.want_full_decode(now)
    source.hot = True
    assert not source.want_full_decode(now)


def test_while_hot_an_explicit_request_decodes_briefly() -> None:
    source = _source()
    now = time.monotonic()
    source._last_key_mono = now + 10  # keep the freshness fallback out of the way
    source.hot = True
    source.request_fresh()
    assert source.want_full_decode(time.monotonic())
    assert not source.want_full_decode(time.monotonic() + 1.5)  # not the 5 s demand_hold_s
    source.hot = False
    assert source.want_full_decode(time.monotonic() + 1.5)
