"""RTSP(S) and file sources through PyAV: demux continuously, decode as little as freshness allows.

Two threads per session:

* the **demuxer** reads packets as fast as the camera sends them (the socket never backs up) and
  keeps the packets of the current GOP — everything since the last keyframe;
* the **decoder** decodes only keyframes while the camera's keyframe interval is within the
  freshness target, and every frame while a consumer asked for fresher pictures
  (:meth:`FrameSource.request_fresh`) or the interval exceeds the target. When such a demand
  starts mid-GOP it first decodes the kept packets from the keyframe on, so no frame is ever
  decoded with missing references, and publishes only the newest picture.

Sending a decoder only the keyframes does what ``skip_frame = "NONKEY"`` does, without even
handing it the skipped packets; it also leaves the decoder holding the keyframe, ready to catch up.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from edge.camera.frame import RawFrame
from edge.camera.source import FrameSink, FrameSource
from edge.config import CameraConfig
from edge.errors import SourceError
from edge.metrics import EdgeMetrics

if TYPE_CHECKING:
    import av.container

log = logging.getLogger("edge.camera")


class _Gop:
    """Packets since one keyframe. Appended by the demuxer; decoded slots are set to None."""

    __slots__ = ("arrivals", "broken", "packets")

    def __init__(self, packet: Any, arrival: tuple[float, float]) -> None:
        self.packets: list[Any] = [packet]
        self.arrivals: list[tuple[float, float]] = [arrival]  # (monotonic, wall)
        self.broken = False  # longer than max_gop_packets: wait for the next keyframe


class AvSource(FrameSource):
    """``rtsp://``, ``rtsps://`` and ``file://`` (looped in real time)."""

    def __init__(
        self, url: str, config: CameraConfig, sink: FrameSink, metrics: EdgeMetrics
    ) -> None:
        super().__init__(url, config, sink, metrics)
        self.scheme = urlsplit(url).scheme.lower()
        self._is_file = self.scheme == "file"
        self._cond = threading.Condition()
        self._gop: _Gop | None = None
        self._last_key_mono: float | None = None
        self._session_over = False

    def request_fresh(self, hold_s: float | None = None, *, explicit: bool = True) -> None:
        super().request_fresh(hold_s, explicit=explicit)
        with self._cond:
            self._cond.notify_all()

    def want_full_decode(self, now: float) -> bool:
        """Decode every frame: on demand, or when keyframes alone cannot meet the target.

        While :attr:`hot`, only an explicit ``?max_age_ms=`` request counts, and only for
        :data:`HOT_DEMAND_HOLD_S`: MJPEG viewers get keyframes until the Pi has cooled down.
        """
        demand = self.explicit_demand_active(now) if self.hot else self.demand_active(now)
        if demand:
            return True
        target_s = self.config.freshness_target_ms / 1000.0
        interval = self.stats.keyframe_interval_s
        if interval is not None and interval > target_s:
            return True
        last = self._last_key_mono
        return last is not None and now - last > target_s

    # ------------------------------------------------------------------ session
    def _open(self) -> av.container.InputContainer:
        import av

        options: dict[str, str] = {}
        if self._is_file:
            target = unquote(urlsplit(self.url).path)
        else:
            target = self.url
            # Reads time out through FFmpeg's own socket timeout (microseconds). PyAV's read
            # timeout would do the same through a callback that takes the GIL on every I/O
            # poll: measurable CPU on a Pi at 25 packets per second. The open (connect, RTSP
            # handshake, probing) is bounded by PyAV's open timeout, which costs nothing after.
            options["rtsp_transport"] = self.config.rtsp_transport
            options["timeout"] = str(round(self.config.read_timeout_s * 1_000_000))
        try:
            return av.open(target, options=options, timeout=(self.config.connect_timeout_s, None))
        except (av.FFmpegError, OSError) as err:
            raise SourceError(self._clean(err)) from err

    def _clean(self, err: BaseException) -> str:
        """An error text without the credentials FFmpeg puts back into its messages."""
        return str(err).replace(self.url, self.safe_url) or type(err).__name__

    def _session(self) -> None:
        import av

        container = self._open()
        decoder: threading.Thread | None = None
        try:
            try:
                stream = container.streams.video[0]
            except IndexError:
                raise SourceError("the stream has no video track") from None
            ctx = stream.codec_context
            ctx.thread_type = "SLICE"  # frame threading would hold each picture back
            self.stats.codec = ctx.name
            with self._cond:
                self._gop = None
                self._last_key_mono = None
                self._session_over = False
            decoder = threading.Thread(
                target=self._decode_loop, args=(ctx,), name=f"decode-{self.scheme}", daemon=True
            )
            decoder.start()
            if self._is_file:
                self._demux_file(container, stream)
            else:
                self._demux(container.demux(stream), pace=None)
        except av.FFmpegError as err:
            raise SourceError(self._clean(err)) from err
        finally:
            with self._cond:
                self._session_over = True
                self._gop = None
                self._cond.notify_all()
            if decoder is not None:
                decoder.join(5.0)
            container.close()

    def _demux_file(self, container: av.container.InputContainer, stream: Any) -> None:
        """Play a file in real time, looping, as if it were a camera.

        Each pass reopens the file (raw ``.h264`` cannot seek); the packets of every pass go
        to the same decoder, which is fine: it is the same stream again.
        """
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        self._demux(container.demux(stream), pace=rate)
        while not self.stopping:
            again = self._open()
            try:
                self._demux(again.demux(again.streams.video[0]), pace=rate)
            finally:
                again.close()

    def _demux(self, packets: Any, pace: float | None) -> None:
        """Feed packets to :meth:`_on_packet`; with ``pace`` (frames/s), in real time."""
        started = time.monotonic()
        first_ts: int | None = None
        for index, packet in enumerate(packets):
            if self.stopping:
                return
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            if pace is not None:
                # Raw H.264 has no timestamps: then the frame rate paces it.
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is not None and packet.time_base is not None:
                    first_ts = ts if first_ts is None else first_ts
                    offset = float((ts - first_ts) * packet.time_base)
                else:
                    offset = index / pace
                if self._stop.wait(max(0.0, started + offset - time.monotonic())):
                    return
            self._on_packet(packet, time.monotonic(), time.time())

    def _on_packet(self, packet: Any, mono: float, wall: float) -> None:
        self._received(mono, keyframe=packet.is_keyframe)
        with self._cond:
            if packet.is_keyframe:
                if self._last_key_mono is not None:
                    self.stats.keyframe_interval_s = mono - self._last_key_mono
                    self.metrics.keyframe_interval.set(self.stats.keyframe_interval_s)
                self._last_key_mono = mono
                self._gop = _Gop(packet, (mono, wall))
            elif self._gop is None or self._gop.broken:
                return  # nothing to decode it against until the next keyframe
            elif len(self._gop.packets) >= self.config.max_gop_packets:
                self._gop.broken = True
                log.warning(
                    "keyframe interval longer than %d packets; waiting for the next keyframe",
                    self.config.max_gop_packets,
                )
            else:
                self._gop.packets.append(packet)
                self._gop.arrivals.append((mono, wall))
                if not self.stats.full_decode:
                    return  # the decoder sleeps until the next keyframe or a demand
            self._cond.notify_all()

    # ------------------------------------------------------------------ decoder thread
    def _decode_loop(self, ctx: Any) -> None:
        synced: _Gop | None = None
        pos = 0
        while True:
            with self._cond:
                while True:
                    if self._session_over:
                        return
                    gop = self._gop
                    full = self.want_full_decode(time.monotonic())
                    if full != self.stats.full_decode:
                        # The demuxer wakes this thread for every packet only while full.
                        self.stats.full_decode = full
                        self.metrics.full_decode.set(1 if full else 0)
                    if gop is not None and gop is not synced:
                        synced, pos = gop, 0
                        break
                    if (
                        full
                        and synced is not None
                        and not synced.broken
                        and pos < len(synced.packets)
                    ):
                        break
                    self._cond.wait(0.25)
                end = len(synced.packets) if full else 1
            pos = self._decode_range(ctx, synced, pos, end)

    def _decode_range(self, ctx: Any, gop: _Gop, pos: int, end: int) -> int:
        """Decode ``gop.packets[pos:end]``; emit only the newest picture. Returns the new pos."""
        import av

        newest: tuple[Any, int] | None = None
        while pos < end:
            if pos > 0 and self._gop is not gop:
                break  # a newer keyframe arrived: no point finishing this GOP
            packet = gop.packets[pos]
            gop.packets[pos] = None  # decoded packets are not needed again
            started = time.perf_counter()
            try:
                frames = ctx.decode(packet)
            except av.FFmpegError as err:
                self.metrics.source_errors.labels("decode").inc()
                log.debug("decode error: %s", err)
                frames = []
            elapsed = time.perf_counter() - started
            self.metrics.decode_seconds.observe(elapsed)
            self.stats.decode_ms = elapsed * 1000.0
            if frames:
                newest = (frames[-1], pos)
                self._decoded()
            pos += 1
        if newest is not None:
            frame, index = newest
            mono, wall = gop.arrivals[index]
            lag = time.monotonic() - mono
            self.metrics.decode_lag_seconds.observe(lag)
            self.stats.decode_lag_ms = lag * 1000.0
            self.stats.width, self.stats.height = frame.width, frame.height
            if not self.stats.connected:
                self._connected()
            self._emit(RawFrame(frame, wall, mono, keyframe=index == 0), decoded=False)
        return pos
