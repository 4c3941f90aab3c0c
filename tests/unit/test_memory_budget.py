"""What keeps the edge inside its memory budget (bench/memory): the allocator's settings, the
synthetic scene's buffers, ONNX Runtime's session options, models only while the policy uses
them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from edge.camera import scene
from edge.config import EdgeConfig, PlatesConfig
from edge.guards import tune_allocator
from edge.plates.local import LocalReader, _lean_sessions
from edge.plates.service import PlateService

pytestmark = pytest.mark.unit


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tune_allocator_applies_on_glibc() -> None:
    assert tune_allocator() is True
    assert tune_allocator() is True  # idempotent


def test_an_edge_that_reads_no_plates_does_not_load_opencv() -> None:
    """OpenCV (~17 MB) comes with the motion trigger and the offline reader, once used."""
    code = (
        "import sys, edge.runner, edge.plates.service, edge.plates.local;"
        " sys.exit('cv2' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


def test_scene_noise_in_bands_is_the_noise_of_one_draw() -> None:
    """The frames are those of the scene before it drew its noise in bands (no new picture for
    the data set or the tests), with ~1/17 of the float64 scratch at 1080p."""
    shape = (203, 150, 3)  # not a multiple of the band
    pos, neg = scene._noise_planes(np.random.default_rng(7), 5.0, shape)
    n = np.random.default_rng(7).normal(0.0, 5.0, shape)
    assert np.array_equal(pos, np.clip(n, 0, 255).astype(np.uint8))
    assert np.array_equal(neg, np.clip(-n, 0, 255).astype(np.uint8))


def test_onnx_sessions_have_no_arena_and_no_memory_pattern() -> None:
    from omegaconf import OmegaConf
    from rapidocr.inference_engine.onnxruntime.main import OrtInferSession

    _lean_sessions()
    _lean_sessions()  # once only: not wrapped twice
    cfg = OmegaConf.create({"enable_cpu_mem_arena": True, "intra_op_num_threads": 1})
    options = OrtInferSession._init_sess_opts(cfg)
    assert options.enable_mem_pattern is False
    assert options.enable_cpu_mem_arena is False
    assert options.intra_op_num_threads == 1


class _Reader:
    name = "local"

    def __init__(self) -> None:
        self.released = 0

    async def release(self) -> bool:
        self.released += 1
        return True


@pytest.mark.asyncio
@pytest.mark.parametrize(("policy", "released"), [
    ("none", 1), ("cloud", 1), ("local", 0), ("local_then_cloud", 0), ("auto", 0),
])  # fmt: skip
async def test_models_are_released_when_the_policy_stops_using_them(
    policy: str, released: int
) -> None:
    config = EdgeConfig()
    config.plates.policy = policy  # type: ignore[assignment]
    reader = _Reader()
    service = PlateService(edge=SimpleNamespace(config=config), local=reader)  # type: ignore[arg-type]
    await service._release_unused()
    assert reader.released == released


@pytest.mark.asyncio
async def test_local_reader_release_drops_the_models_and_loads_them_again() -> None:
    reader = LocalReader(PlatesConfig())
    try:
        assert await reader.release() is False  # nothing loaded yet
        await reader.warm_up()
        assert reader.status()["engine"] == "ready"
        assert await reader.release() is True
        assert reader.status()["engine"] == "idle"
        image: Any = scene.BayScene(scene.SceneParams(width=640, height=360)).render(10.0)
        result = await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(None, reader.read_bgr, image), 60
        )
        assert result.recognizer == "local"
        assert reader.status()["engine"] == "ready"
    finally:
        await reader.aclose()
