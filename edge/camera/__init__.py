"""Camera sources: one reader thread per camera feeding decoded frames to the encoder."""

from __future__ import annotations

from urllib.parse import urlsplit

from edge.camera.source import FrameSink, FrameSource
from edge.config import CameraConfig
from edge.errors import SourceURLError
from edge.metrics import EdgeMetrics

__all__ = ["FrameSink", "FrameSource", "open_source"]


def open_source(config: CameraConfig, sink: FrameSink, metrics: EdgeMetrics) -> FrameSource:
    """The source for ``config.source``, not started. Heavy libraries load only when used."""
    url = config.source_url_with_credentials()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("rtsp", "rtsps", "file"):
        from edge.camera.av_source import AvSource

        return AvSource(url, config, sink, metrics)
    if scheme == "synthetic":
        from edge.camera.synthetic import SyntheticSource

        return SyntheticSource(url, config, sink, metrics)
    if scheme == "usb":
        from edge.camera.usb import UsbSource

        return UsbSource(url, config, sink, metrics)
    raise SourceURLError(f"unsupported source scheme {scheme!r}")
