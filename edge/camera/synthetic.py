"""``synthetic://``: the generated bay scene as a camera, so the whole pipeline runs with none.

Parameters come from the URL query (``synthetic://?width=640&height=360&fps=5&night=1``); see
:class:`edge.camera.scene.SceneParams`. Frames are produced in real time at the scene's rate.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from edge.camera.frame import RawFrame
from edge.camera.scene import BayScene, SceneParams
from edge.camera.source import FrameSink, FrameSource
from edge.config import CameraConfig
from edge.errors import SourceURLError
from edge.metrics import EdgeMetrics


class SyntheticSource(FrameSource):
    scheme = "synthetic"

    def __init__(
        self, url: str, config: CameraConfig, sink: FrameSink, metrics: EdgeMetrics
    ) -> None:
        super().__init__(url, config, sink, metrics)
        try:
            self.params = SceneParams.from_query(urlsplit(url).query)
        except ValueError as err:
            raise SourceURLError(f"bad synthetic:// parameter: {err}") from err
        self.scene = BayScene(self.params)

    def _session(self) -> None:
        period = 1.0 / self.params.fps
        start = time.monotonic()
        n = 0
        self.stats.codec = "synthetic"
        self.stats.width, self.stats.height = self.params.width, self.params.height
        self.stats.keyframe_interval_s = period  # every generated picture stands alone
        while not self.stopping:
            due = start + n * period
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            mono, wall = time.monotonic(), time.time()
            image = self.scene.render(mono - start)
            self._received(mono, keyframe=True)
            if not self.stats.connected:
                self._connected()
            self._emit(RawFrame(image, wall, mono, keyframe=True))
            n += 1
            if time.monotonic() - due > 1.0:  # fell far behind (suspended host): resync
                start, n = time.monotonic(), 0
