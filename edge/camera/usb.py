"""``usb:///dev/videoN``: a V4L2 camera through OpenCV."""

from __future__ import annotations

import time
from urllib.parse import unquote, urlsplit

from edge.camera.frame import RawFrame
from edge.camera.source import FrameSink, FrameSource
from edge.config import CameraConfig
from edge.errors import SourceError, SourceURLError
from edge.metrics import EdgeMetrics


class UsbSource(FrameSource):
    scheme = "usb"

    def __init__(
        self, url: str, config: CameraConfig, sink: FrameSink, metrics: EdgeMetrics
    ) -> None:
        super().__init__(url, config, sink, metrics)
        self.device = unquote(urlsplit(url).path)
        if not self.device.startswith("/dev/"):
            raise SourceURLError(f"expected usb:///dev/videoN, got {self.safe_url!r}")

    def _session(self) -> None:
        import cv2

        capture = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        try:
            if not capture.isOpened():
                raise SourceError(f"cannot open {self.device}")
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver from queueing old frames
            self.stats.codec = "v4l2"
            while not self.stopping:
                ok, image = capture.read()
                if not ok or image is None:
                    raise SourceError(f"{self.device} stopped delivering frames")
                mono, wall = time.monotonic(), time.time()
                self._received(mono, keyframe=True)
                self.stats.height, self.stats.width = image.shape[:2]
                if not self.stats.connected:
                    self._connected()
                self._emit(RawFrame(image, wall, mono, keyframe=True))
        finally:
            capture.release()
