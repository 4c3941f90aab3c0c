#!/usr/bin/python3
"""A real RTSP server (GStreamer's gst-rtsp-server) for tests and benchmarks.

Run it with Debian's own interpreter, which has ``gi`` (the project venv does not)::

    /usr/bin/python3 tests/support/rtsp_server.py --mode live --width 640 --height 360
    /usr/bin/python3 tests/support/rtsp_server.py --mode file --file clip.h264 --fps 25

It serves one H.264 stream at ``rtsp://127.0.0.1:PORT/stream`` (UDP and TCP-interleaved
transports), prints exactly one line ``READY rtsp://127.0.0.1:PORT/stream`` on stdout once it
listens, and exits with status 0 on SIGTERM/SIGINT (and when its parent process goes away).

Modes:

* ``live``: frames are rendered in real time, each carrying as its timecode the wall clock in
  milliseconds (``int(time.time() * 1000) % 2**40``) at the moment it is rendered, and encoded by
  ``x264enc`` (zerolatency, ultrafast, exactly ``--gop`` frames between keyframes, no B-frames).
  The frames are byte-identical to ``tests/support/framecode.make_frame(w, h, timecode)``; they
  are drawn here in pure Python because Debian's python3 has no numpy (a unit test compares the
  two renderers).
* ``file``: the access units of an H.264 Annex-B file are parsed once and re-sent in a loop, in
  real time at ``--fps``, with continuous timestamps and without re-encoding.

GStreamer traps worked around here:

* Buffers are only pushed from the appsrc ``need-data`` signal (blocking in it until the frame is
  due), which a live appsrc emits from its streaming thread once the media pipeline is PLAYING;
  pushing from a timer before that leaves some sessions without any data.
* The media is shared between clients and, once prepared, held prepared for good (an extra
  ``prepare`` count). Without that, the last client leaving unprepares it in a client thread
  while the factory still hands it out, and a client connecting in that window (a quick
  reconnect) gets "503 Service Unavailable".
* ``rtph264pay config-interval=-1`` puts SPS/PPS before every IDR *slice*, breaking multi-slice
  keyframes: live mode encodes one slice per picture (``x264enc threads=1``); file mode lets
  ``h264parse config-interval=-1`` insert them per access unit and the payloader inserts none.

This file must stay importable without ``gi`` (the venv imports :class:`FrameRenderer` to check
it against ``make_frame``), so GStreamer is imported inside :func:`main`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from typing import IO, Any

MOUNT = "/stream"
TIMECODE_BITS = 40
_CHECK_BITS = 8
_CRC_POLY = 0x07
_CRC_XOROUT = 0xA5


# ----------------------------------------------------------------------------- frames
# Pure-Python twin of tests/support/framecode.py (make_frame / draw_timecode). Keep in sync.


def _crc8(value: int, bits: int) -> int:
    crc = 0
    for i in range(bits - 1, -1, -1):
        top = ((crc >> 7) & 1) ^ ((value >> i) & 1)
        crc = (crc << 1) & 0xFF
        if top:
            crc ^= _CRC_POLY
    return crc ^ _CRC_XOROUT


class FrameRenderer:
    """Renders ``make_frame(width, height, value)`` as packed BGR bytes, without numpy.

    ``stride`` is the row length in bytes of the output (``width * 3`` rounded up to a multiple
    of 4, which is what GStreamer expects for BGR video); padding bytes are zero.
    """

    def __init__(self, width: int, height: int) -> None:
        if width < 64 or height < 48 or width % 2 or height % 2:
            raise ValueError(f"frame size {width}x{height} must be even and at least 64x48")
        self.width = w = width
        self.height = h = height
        self.row_bytes = w * 3
        self.stride = (self.row_bytes + 3) & ~3
        per_row = (TIMECODE_BITS + _CHECK_BITS + 1) // 2
        self.n_cols = per_row + 2
        self.per_row = per_row
        self.code_h = (2 * w) // self.n_cols
        self.bw = max(2, w // 8)
        self.bh = max(2, h // 5)
        self.span_x = max(1, w - self.bw + 1)
        self.span_y = max(1, h - self.code_h - self.bh + 1)

        # Background: B = 32 + 192x/w + c, G = 32 + 192y/h + c, R = 128 + 2c,
        # c = +24 on odd 16x16 checker cells, -24 on even ones.
        odd = [[((x >> 4) ^ py) & 1 for x in range(w)] for py in (0, 1)]
        b_row = [
            bytes(32 + (x * 192) // w + (24 if o else -24) for x, o in enumerate(odd[py]))
            for py in (0, 1)
        ]
        r_row = [bytes(176 if o else 80 for o in odd[py]) for py in (0, 1)]
        odd_bytes = [bytes(o) for o in odd]
        rows: list[bytes] = []
        for y in range(h):
            py = (y >> 4) & 1
            g = 32 + (y * 192) // h
            g_table = bytes((g - 24, g + 24)) + bytes(254)
            row = bytearray(self.stride)
            row[0 : self.row_bytes : 3] = b_row[py]
            row[1 : self.row_bytes : 3] = odd_bytes[py].translate(g_table)
            row[2 : self.row_bytes : 3] = r_row[py]
            rows.append(bytes(row))
        self.background = b"".join(rows)

        def box_rows(color: Any) -> list[bytes]:
            out = []
            for by in range(self.bh):
                out.append(b"".join(color(bx, by) for bx in range(self.bw)))
            return out

        white, yellow = bytes((255, 255, 255)), bytes((0, 200, 255))
        purple, cyan = bytes((80, 0, 160)), bytes((255, 255, 0))
        self.fast_rows = box_rows(lambda bx, by: white if ((bx >> 2) ^ (by >> 2)) & 1 else yellow)
        self.slow_rows = box_rows(lambda bx, by: purple if ((bx + by) // 6) & 1 else cyan)
        self._xs = [(c * w) // self.n_cols for c in range(self.n_cols + 1)]

    def _code_lines(self, value: int) -> list[bytes]:
        total = TIMECODE_BITS + _CHECK_BITS
        payload = (value << _CHECK_BITS) | _crc8(value, TIMECODE_BITS)
        cells = [bool((payload >> (total - 1 - i)) & 1) for i in range(total)]
        cells += [False] * (2 * self.per_row - total)
        lines = []
        for row in ([True, *cells[: self.per_row], False], [False, *cells[self.per_row :], True]):
            line = bytearray(self.stride)
            for c, on in enumerate(row):
                if on:
                    x0, x1 = self._xs[c], self._xs[c + 1]
                    line[x0 * 3 : x1 * 3] = b"\xff" * ((x1 - x0) * 3)
            lines.append(bytes(line))
        return lines

    def render(self, value: int) -> bytearray:
        if not 0 <= value < (1 << TIMECODE_BITS):
            raise ValueError(f"value {value} does not fit in {TIMECODE_BITS} bits")
        buf = bytearray(self.background)
        stride, n3 = self.stride, self.bw * 3
        for rows, (x, y) in (
            (self.slow_rows, ((value // 8) % self.span_x, self.height - self.bh)),
            (self.fast_rows, ((value * 4) % self.span_x, self.code_h + (value * 2) % self.span_y)),
        ):
            off = y * stride + x * 3
            for pixels in rows:
                buf[off : off + n3] = pixels
                off += stride
        for r, line in enumerate(self._code_lines(value)):
            y0 = (r * self.width) // self.n_cols
            y1 = ((r + 1) * self.width) // self.n_cols
            buf[y0 * stride : y1 * stride] = line * (y1 - y0)
        return buf


def wall_timecode() -> int:
    """The live-mode timecode: wall clock milliseconds modulo 2**40."""
    return int(time.time() * 1000) % (1 << TIMECODE_BITS)


# ----------------------------------------------------------------------------- server


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("live", "file"), default="live")
    p.add_argument("--port", type=int, default=0, help="TCP port; 0 (default) = ephemeral")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--gop", type=int, default=50, help="live mode: frames between keyframes")
    p.add_argument("--file", help="file mode: H.264 Annex-B elementary stream to loop")
    p.add_argument("--log-pushes", metavar="FILE", help="append one line per pushed buffer to FILE")
    args = p.parse_args(argv)
    if args.mode == "file" and not args.file:
        p.error("--mode file needs --file")
    if args.fps <= 0 or args.gop <= 0:
        p.error("--fps and --gop must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)

    import gi  # type: ignore[import-not-found, unused-ignore]

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import (  # type: ignore[import-not-found, unused-ignore]
        GLib,
        Gst,
        GstRtspServer,
    )

    Gst.init(None)
    frame_ns = Gst.SECOND // args.fps
    stopping = threading.Event()
    log: IO[str] | None = open(args.log_pushes, "a", buffering=1) if args.log_pushes else None  # noqa: SIM115
    log_lock = threading.Lock()

    # ---- what to push
    if args.mode == "live":
        renderer = FrameRenderer(args.width, args.height)
        launch = (
            "( appsrc name=src is-live=true format=time "
            f"caps=video/x-raw,format=BGR,width={args.width},height={args.height},"
            f"framerate={args.fps}/1 "
            "! videoconvert ! video/x-raw,format=I420 "
            # threads=1: tune=zerolatency turns on sliced threads (one slice per thread), and
            # rtph264pay config-interval=-1 inserts SPS/PPS before every IDR *slice*, so decoders
            # see each multi-slice keyframe as two half pictures. One thread = one slice.
            "! x264enc tune=zerolatency speed-preset=ultrafast bframes=0 threads=1 "
            f"key-int-max={args.gop} option-string=scenecut=0 "
            "! rtph264pay config-interval=-1 pt=96 name=pay0 )"
        )

        def make_buffer(index: int) -> tuple[Any, int, bool]:
            del index
            value = wall_timecode()
            return Gst.Buffer.new_wrapped(bytes(renderer.render(value))), value, False

    else:
        units = _load_access_units(Gst, args.file)
        launch = (
            "( appsrc name=src is-live=true format=time "
            "caps=video/x-h264,stream-format=byte-stream,alignment=au "
            # SPS/PPS are already in front of every IDR access unit (h264parse config-interval=-1
            # in _load_access_units); rtph264pay config-interval=-1 would insert them again in
            # front of every IDR *slice*, which splits multi-slice pictures in two.
            "! rtph264pay config-interval=0 pt=96 name=pay0 )"
        )

        def make_buffer(index: int) -> tuple[Any, int, bool]:
            i = index % len(units)
            buf = units[i].copy()
            return buf, i, not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)

    # ---- feeding one media pipeline
    class Feeder:
        def __init__(self, media_id: int) -> None:
            self.media_id = media_id
            self.index = 0
            self.base = 0

        def on_need_data(self, src: Any, _length: int) -> None:
            if stopping.is_set():
                return
            clock = src.get_clock()
            if clock is None:  # not PLAYING (should not happen for a live appsrc)
                stopping.wait(frame_ns / Gst.SECOND)
                now = 0
            else:
                now = clock.get_time() - src.get_base_time()
            if self.index == 0:
                self.base = now
            target = self.base + self.index * frame_ns
            if target > now:
                if stopping.wait((target - now) / Gst.SECOND):
                    return
            elif now - target > 2 * frame_ns:  # fell behind (stalled client): re-anchor
                self.base = now - self.index * frame_ns
                target = now
            buf, value, key = make_buffer(self.index)
            buf.pts = buf.dts = target
            buf.duration = frame_ns
            ret = src.emit("push-buffer", buf)
            if log is not None:
                with log_lock:
                    log.write(
                        f"{time.time():.6f} media={self.media_id} n={self.index} "
                        f"pts={target} value={value} key={int(key)} ret={ret.value_nick}\n"
                    )
            self.index += 1

    feeders: dict[int, tuple[Any, Feeder]] = {}
    media_counter = iter(range(1, 1 << 62))

    def on_media_configure(_factory: Any, media: Any) -> None:
        media_id = next(media_counter)
        feeder = Feeder(media_id)
        appsrc = media.get_element().get_by_name_recurse_up("src")
        appsrc.connect("need-data", feeder.on_need_data)
        feeders[media_id] = (media, feeder)

        def on_unprepared(_media: Any) -> None:
            feeders.pop(media_id, None)

        media.connect("unprepared", on_unprepared)

        held = threading.Event()

        def on_prepared(prepared_media: Any) -> None:
            # Keep the shared media prepared for good (one extra prepare count). Otherwise the
            # last client leaving (TEARDOWN, or a DESCRIBE-only client going away) unprepares it
            # in its own thread while the factory still hands it out: a client connecting in
            # that window gets "503 Service Unavailable" ("media was not unprepared").
            if held.is_set():
                return
            held.set()
            thread = GstRtspServer.RTSPThread.new(GstRtspServer.RTSPThreadType.MEDIA)
            prepared_media.prepare(thread)  # status PREPARED: only bumps the count

        media.connect("prepared", on_prepared)

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    factory.connect("media-configure", on_media_configure)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(MOUNT, factory)
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    port = server.get_bound_port()

    loop = GLib.MainLoop()

    def cleanup_sessions() -> bool:
        server.get_session_pool().cleanup()
        return True

    GLib.timeout_add_seconds(2, cleanup_sessions)

    parent = os.getppid()

    def check_parent() -> bool:
        # A test run that dies without stopping us must not leave the server running.
        if os.getppid() != parent:
            print("rtsp_server: parent process gone, exiting", file=sys.stderr)
            stopping.set()
            loop.quit()
            return False
        return True

    GLib.timeout_add(500, check_parent)

    def on_signal() -> bool:
        stopping.set()
        loop.quit()
        return False

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, on_signal)

    sys.stdout.write(f"READY rtsp://127.0.0.1:{port}{MOUNT}\n")
    sys.stdout.flush()
    try:
        loop.run()
    finally:
        stopping.set()
        for media, _feeder in list(feeders.values()):
            media.get_element().set_state(Gst.State.NULL)
        if log is not None:
            log.close()
    return 0


def _load_access_units(Gst: Any, path: str) -> list[Any]:
    """Parse an Annex-B file into access units (``Gst.Buffer``), starting at a keyframe."""
    pipeline = Gst.Pipeline.new("load")
    src = Gst.ElementFactory.make("filesrc")
    parse = Gst.ElementFactory.make("h264parse")
    parse.set_property("config-interval", -1)
    capsfilter = Gst.ElementFactory.make("capsfilter")
    sink = Gst.ElementFactory.make("appsink")
    src.set_property("location", path)
    capsfilter.set_property(
        "caps", Gst.Caps.from_string("video/x-h264,stream-format=byte-stream,alignment=au")
    )
    sink.set_property("sync", False)
    for element in (src, parse, capsfilter, sink):
        pipeline.add(element)
    src.link(parse)
    parse.link(capsfilter)
    capsfilter.link(sink)
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    units = []
    err = None
    while True:
        sample = sink.emit("try-pull-sample", Gst.SECOND // 10)
        if sample is not None:
            units.append(sample.get_buffer())
            continue
        err = bus.pop_filtered(Gst.MessageType.ERROR)
        if err is not None or sink.get_property("eos"):
            break
    pipeline.set_state(Gst.State.NULL)
    if err is not None:
        raise SystemExit(f"rtsp_server: cannot read {path}: {err.parse_error()[0].message}")
    first_key = next(
        (i for i, u in enumerate(units) if not u.has_flags(Gst.BufferFlags.DELTA_UNIT)), None
    )
    if first_key is None:
        raise SystemExit(f"rtsp_server: no keyframe in {path}")
    return units[first_key:] + units[:first_key]


if __name__ == "__main__":
    sys.exit(main())
