"""H.264 clips of the synthetic bay (edge/camera/scene.py) for the GStreamer RTSP server.

``scene_clip(params, start_s, seconds)`` encodes the scene from ``start_s`` on; clips are cached
like :func:`tests.support.encode_clip.cached_clip`'s (the scene is deterministic in its params).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from edge.camera.scene import BayScene, SceneParams
from tests.support.encode_clip import cache_dir, encode_clip

__all__ = ["scene_clip"]


def scene_clip(params: SceneParams, start_s: float, seconds: float, *, gop: int = 0) -> Path:
    """Annex-B H.264 of the scene from ``start_s`` for ``seconds`` (a keyframe every ``gop``
    frames, default two seconds), written once to the clip cache."""
    gop = gop or 2 * params.fps
    key = "-".join(f"{k}{v}" for k, v in asdict(params).items())
    path = cache_dir() / f"scene-v1-{key}-from{start_s:g}-{seconds:g}s-gop{gop}.h264"
    if path.exists():
        return path
    scene = BayScene(params)
    return encode_clip(
        path, params.width, params.height, params.fps, gop, seconds, crf=21,
        render=lambda n: scene.render(start_s + n / params.fps),
    )  # fmt: skip
