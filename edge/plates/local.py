"""The offline plate reader: RapidOCR's ONNX models (shipped in its wheel) on one worker thread.

Reading a picture takes three steps, all on one dedicated thread (never the event loop):

1. **search**: the region of interest (``plates.roi``) is scaled to ``plates.local.search_max_side``
   and RapidOCR's text detector finds lines of text in it (~40-60 ms at 480 px on 2 cores);
2. **crop**: the lines shaped like a plate's text (wide enough for their height, at least
   :data:`MIN_TEXT_PX` high) are cut out of the *full-resolution* picture along their detected
   quadrilateral, with a margin, widest line first;
3. **recognise**: each crop goes through the text recogniser (~20 ms a crop) and its text is
   fitted to the site's formats (:func:`~edge.plates.normalize.fit_plate`). The first line read
   as it is, fitting a format, with confidence ends the search: one bay, one car.

Text that fits no format is still a read if it looks like one (5 to 10 letters *and* digits),
with a lower score; the wall clock, "BAY 1" and other signs are not. If no line was read with
confidence, the best one is looked at a second time, in one batch of three other crops (a wider
margin, a contrast-stretched grey version, one stretched sideways); the readings vote, and every
plate read goes into the read's ``candidates``.

The models are loaded on first use (in the worker; ~1.5 s), or ahead of it with
:meth:`LocalReader.warm_up`. Nothing is downloaded: the models are files of the wheel.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from edge.plates.normalize import clean, fit_plate
from edge.plates.types import Box, Candidate, Picture, PlateRead, Recognition, RecognizerError

if TYPE_CHECKING:
    from edge.config import PlatesConfig
    from edge.metrics import EdgeMetrics

__all__ = ["LocalReader"]

log = logging.getLogger("edge.plates")

Image = NDArray[np.uint8]
Quad = NDArray[np.float32]  # 4 x 2: top-left, top-right, bottom-right, bottom-left

NAME = "local"
MIN_TEXT_PX = 10  # a text line lower than this (full resolution) is not read
ASPECT = (1.4, 12.0)  # width / height of a plate's text line
MAX_LINES = 4  # lines recognised per picture, the largest first
NO_FORMAT_PENALTY = 0.3  # subtracted from the score of a read that fits no format
SUBSTITUTION_PENALTY = 0.05  # per character changed (look-alike, stray end) to fit a format
SECOND_LOOK_BELOW = 0.85  # a line read below this is looked at again
MARGIN = (0.06, 0.18)  # crop margin, fractions of the line's width and height
WIDE_MARGIN = (0.12, 0.35)
RETRY_BUILD_S = 30.0  # a failed model load is tried again after this long
# The second, finer search: at most this many times search_max_side. Its tensors are what
# a read costs in memory: ~+40 MB at 720 px, ~+70 MB at 960 (bench/memory).
FINE_SEARCH_FACTOR = 1.5
EngineState = Literal["idle", "loading", "ready", "failed"]


class _Engine:
    """RapidOCR's detector and recogniser, called directly.

    ``RapidOCR.__call__`` sorts the detected boxes without their scores (3.10) and runs one
    crop at a time without detection, so its two models are used as they are.
    """

    def __init__(self, threads: int) -> None:
        from rapidocr import RapidOCR
        from rapidocr.ch_ppocr_det.utils import DetPreProcess
        from rapidocr.ch_ppocr_rec import TextRecInput

        _lean_sessions()
        self._rec_input = TextRecInput
        self._pre = DetPreProcess
        ocr = RapidOCR(
            params={
                "Global.log_level": "warning",
                # Crops narrower than 160 px at 48 px high are padded to 160, not 320: half
                # the work for a plate's text (wider ones are read at their own width).
                "Rec.rec_img_shape": [3, 48, 160],
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                # No CPU arena: it keeps the largest tensors of any picture ever searched
                # (bench/memory). RapidOCR's default too, set here so that it stays so.
                "EngineConfig.onnxruntime.enable_cpu_mem_arena": False,
            }
        )
        # RapidOCR's own loaders (they fill in the engine settings); untyped in 3.10.
        self._det = ocr._load_det_model()  # type: ignore[no-untyped-call]
        self._rec = ocr._load_rec_model()  # type: ignore[no-untyped-call]

    def detect(self, image: Image, max_side: int) -> tuple[list[Quad], list[float]]:
        """Text lines in ``image`` searched at ``max_side`` pixels at most (never enlarged):
        their quads in ``image``'s pixels and their detection scores."""
        tensor = self._pre(max_side, "max", self._det.mean, self._det.std)(image)
        if tensor is None:
            return [], []
        preds = self._det.session(tensor)
        boxes, scores = self._det.postprocess_op(preds, image.shape[:2])
        return [np.asarray(b, np.float32) for b in boxes], [float(s) for s in scores]

    def recognise(self, crops: list[Image]) -> list[tuple[str, float]]:
        """The text of each crop and its confidence, in order (one batch)."""
        if not crops:
            return []
        out = self._rec(self._rec_input(img=crops))
        return [(str(t), float(s)) for t, s in zip(out.txts, out.scores, strict=True)]


_lean_lock = threading.Lock()


def _lean_sessions() -> None:
    """RapidOCR's ONNX Runtime sessions without a memory pattern (idempotent).

    RapidOCR builds each session's ``SessionOptions`` in ``OrtInferSession._init_sess_opts``
    and its config has no key for ``enable_mem_pattern``; the pattern pre-plans one block per
    input shape and keeps it, and every picture searched has a shape of its own. So that
    method's result is amended, once, at the one place options are made; threads and the arena
    go through RapidOCR's own config (``EngineConfig.onnxruntime.*``). Only the plate reader
    uses RapidOCR in the edge.
    """
    from rapidocr.inference_engine.onnxruntime.main import OrtInferSession

    with _lean_lock:
        make = OrtInferSession.__dict__["_init_sess_opts"].__func__
        if getattr(make, "_carwash_lean", False):
            return

        def lean(cfg: Any) -> Any:
            options = make(cfg)
            options.enable_mem_pattern = False
            options.enable_cpu_mem_arena = False
            return options

        lean._carwash_lean = True  # type: ignore[attr-defined]
        OrtInferSession._init_sess_opts = staticmethod(lean)  # type: ignore[method-assign]


def _size(quad: Quad) -> tuple[float, float]:
    """(width, height) of a quad: its longer top/bottom and left/right edges."""
    w = max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[3] - quad[2]))
    h = max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2]))
    return float(w), float(h)


def _plausible(quad: Quad) -> bool:
    w, h = _size(quad)
    return h >= MIN_TEXT_PX and ASPECT[0] <= w / max(h, 1.0) <= ASPECT[1]


def _crop(image: Image, quad: Quad, margin: tuple[float, float]) -> Image:
    """The quad (grown by ``margin`` along its own axes) warped upright from ``image``."""
    import cv2  # here: an edge whose policy reads no plates never loads OpenCV

    w, h = _size(quad)
    ux = (quad[1] - quad[0] + quad[2] - quad[3]) / 2 / max(w, 1.0)  # along the line
    uy = (quad[3] - quad[0] + quad[2] - quad[1]) / 2 / max(h, 1.0)  # across it
    dx, dy = ux * w * margin[0], uy * h * margin[1]
    src = np.array(
        [quad[0] - dx - dy, quad[1] + dx - dy, quad[2] + dx + dy, quad[3] - dx + dy], np.float32
    )
    scale = min(1.0, 64.0 / (h * (1 + 2 * margin[1])))  # the recogniser reads 48 px high
    cw = max(8, round(w * (1 + 2 * margin[0]) * scale))
    ch = max(8, round(h * (1 + 2 * margin[1]) * scale))
    dst = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(
        image, m, (cw, ch), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return np.asarray(out, np.uint8)


def _stretched(crop: Image) -> Image:
    """A grey, contrast-stretched version of a crop (night, glare, a faded plate)."""
    import cv2

    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    lo, hi = np.percentile(grey, (2, 98))
    if hi - lo < 8:
        return crop
    out = np.clip((grey.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return np.asarray(cv2.cvtColor(out, cv2.COLOR_GRAY2BGR), np.uint8)


def _widened(crop: Image) -> Image:
    """A crop stretched 1.4x sideways: the recogniser then keeps doubled letters apart
    (``113`` is otherwise read ``13`` now and then)."""
    import cv2

    h, w = crop.shape[:2]
    return np.asarray(
        cv2.resize(crop, (round(w * 1.4), h), interpolation=cv2.INTER_CUBIC), np.uint8
    )


def _looks_like_plate(plate: str) -> bool:
    """A read that fits no format is kept only if it looks like a plate all the same."""
    return (
        5 <= len(plate) <= 10
        and any(c.isdigit() for c in plate)
        and any(c.isalpha() for c in plate)
    )


@dataclasses.dataclass
class _Reading:
    """One recognised crop, fitted."""

    text: str
    rec_score: float
    plate: str
    pattern: str | None
    score: float


def _changed(raw: str, plate: str) -> int:
    """Characters changed from ``raw`` to ``plate``: substituted, or one dropped at an end."""

    def differ(a: str, b: str) -> int:
        return sum(x != y for x, y in zip(a, b, strict=True))

    if len(raw) == len(plate):
        return differ(raw, plate)
    return 1 + min(differ(raw[1:], plate), differ(raw[:-1], plate))


def _fit(text: str, rec_score: float, formats: list[str]) -> _Reading | None:
    """A recognised text fitted to the formats, scored; None if it does not look like a plate.

    A fit that changes more than a third of the characters is not believed (a clock's
    ``08:57:14`` is three look-alikes away from the Dutch ``08STI4``).
    """
    raw = clean(text)
    plate, pattern = fit_plate(text, formats)
    changed = _changed(raw, plate) if pattern is not None else 0
    if 3 * changed > len(plate):
        plate, pattern, changed = raw, None, 0
    if pattern is None and not _looks_like_plate(plate):
        return None
    score = rec_score - (NO_FORMAT_PENALTY if pattern is None else SUBSTITUTION_PENALTY * changed)
    return _Reading(text, rec_score, plate, pattern, max(0.0, min(1.0, score)))


def _confident(reading: _Reading) -> bool:
    """Read as it is, fitting a format, with a high score: no need to look again."""
    return (
        reading.pattern is not None
        and reading.plate == clean(reading.text)
        and reading.rec_score >= SECOND_LOOK_BELOW
    )


def _bbox(quad: Quad, width: int, height: int) -> Box:
    x0, y0 = np.floor(quad.min(axis=0))
    x1, y1 = np.ceil(quad.max(axis=0))
    return Box(max(0, int(x0)), max(0, int(y0)), min(width, int(x1) + 1), min(height, int(y1) + 1))


class LocalReader:
    """The offline :class:`~edge.plates.types.Recognizer` (``name`` "local").

    ``config`` is the running ``plates`` section: ``roi`` and ``formats`` are read at every
    call (they change live); ``local.threads`` and ``local.search_max_side`` when the models
    load. All reading happens on one worker thread; :meth:`read_bgr` is the same work,
    synchronous, for callers already off the loop (the bench).
    """

    name = NAME

    def __init__(self, config: PlatesConfig, metrics: EdgeMetrics | None = None) -> None:
        self._config = config
        self._metrics = metrics
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plates-local")
        self._engine: _Engine | None = None
        self._engine_lock = threading.Lock()
        self._state: EngineState = "idle"
        self._error: str | None = None
        self._failed_at = 0.0
        self._load_ms: float | None = None
        self._reads = 0
        self._last_ms: float | None = None
        self._closed = False

    # ------------------------------------------------------------------ the Recognizer API
    async def recognize(
        self, picture: Picture, *, camera_id: str = "", deadline_s: float | None = None
    ) -> Recognition:
        """Read ``picture`` on the worker thread. Raises :class:`RecognizerError`: ``bad_image``,
        ``timeout`` (past ``deadline_s``, queueing included), ``engine_failed``, ``closed``."""
        if self._closed:
            raise RecognizerError("closed", "the local plate reader is closed")
        started = time.monotonic()
        expires = None if deadline_s is None else started + deadline_s

        def work() -> Recognition:
            if expires is not None and time.monotonic() > expires:
                raise RecognizerError("timeout", "the deadline passed while waiting to be read")
            return self.read_bgr(picture.bgr())

        future = asyncio.get_running_loop().run_in_executor(self._executor, work)
        try:
            async with asyncio.timeout(deadline_s):  # not wait_for: it can swallow a cancel (3.11)
                result = await future
        except TimeoutError:
            raise RecognizerError(
                "timeout", f"the local reader took longer than {deadline_s:.2f} s"
            ) from None
        elapsed = time.monotonic() - started
        if self._metrics is not None:
            self._metrics.plate_recognize_seconds.labels(recognizer=NAME).observe(elapsed)
        return dataclasses.replace(result, latency_ms=elapsed * 1000.0)

    def status(self) -> dict[str, Any]:
        state = {"idle": "loading", "loading": "loading", "ready": "ok", "failed": "failed"}
        out: dict[str, Any] = {
            "state": state[self._state],
            "engine": self._state,  # idle: not loaded yet (it loads on first use)
            "reads": self._reads,
            "last_latency_ms": self._last_ms,
            "load_ms": None if self._load_ms is None else round(self._load_ms, 1),
            "threads": self._config.local.threads,
            "search_max_side": self._config.local.search_max_side,
        }
        if self._error is not None:
            out["error"] = self._error
        return out

    async def warm_up(self) -> None:
        """Load the models now (on the worker thread) rather than at the first picture."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._engine_now)

    async def release(self) -> bool:
        """Drop the models (~100 MB) if loaded, on the worker thread after any read in progress;
        returns whether they were loaded. The next read loads them again."""
        if self._closed or self._engine is None:
            return False
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._release_now)

    def _release_now(self) -> bool:
        with self._engine_lock:
            engine, self._engine = self._engine, None
            if engine is None:
                return False
            self._state, self._load_ms = "idle", None
        del engine
        log.info("offline plate reader: models released (the policy does not use them)")
        return True

    async def aclose(self) -> None:
        """Stop the worker: pending reads are cancelled, a running one finishes first."""
        self._closed = True
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """:meth:`aclose`, blocking (the bench)."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ the work
    def _engine_now(self) -> _Engine:
        with self._engine_lock:
            if self._engine is not None:
                return self._engine
            if self._state == "failed" and time.monotonic() - self._failed_at < RETRY_BUILD_S:
                raise RecognizerError(
                    "engine_failed", f"the OCR models did not load: {self._error}"
                )
            self._state = "loading"
            started = time.perf_counter()
            local = self._config.local
            try:
                self._engine = _Engine(local.threads)
            except Exception as err:  # whatever RapidOCR or ONNX Runtime raise: one error code
                self._state, self._error, self._failed_at = "failed", repr(err), time.monotonic()
                log.exception("the offline plate reader's models did not load")
                raise RecognizerError(
                    "engine_failed", f"the OCR models did not load: {err!r}"
                ) from err
            self._load_ms = (time.perf_counter() - started) * 1000.0
            self._state, self._error = "ready", None
            log.info("offline plate reader ready in %.0f ms", self._load_ms)
            return self._engine

    def read_bgr(self, image: Image) -> Recognition:
        """Read the plates in a BGR picture (blocking: ~60 ms search + ~20 ms per line read).

        ``Recognition.raw`` holds the region searched, the lines found and read, and the
        time of each step: ``search_ms`` (detection), ``recognise_ms`` (crop + recognise).
        When the search at ``search_max_side`` gives no read and the region is larger than
        that, it is searched again at up to :data:`FINE_SEARCH_FACTOR` times the size
        (``raw["fine_search"]``: a small or blurred plate), and only the lines not read yet are
        read.
        """
        started = time.perf_counter()
        image = _checked(image)
        engine = self._engine_now()
        formats = list(self._config.formats)
        height, width = image.shape[:2]
        fx0, fy0, fx1, fy1 = self._config.roi
        x0, y0 = math.floor(fx0 * width), math.floor(fy0 * height)
        x1, y1 = math.ceil(fx1 * width), math.ceil(fy1 * height)
        region = np.ascontiguousarray(image[y0:y1, x0:x1])
        offset = np.array([x0, y0], np.float32)
        raw: dict[str, Any] = {
            "roi": [x0, y0, x1, y1], "detected": [], "lines": [], "second_look": False,
            "fine_search": None,
        }  # fmt: skip
        timing = {"search": 0.0, "recognise": 0.0}
        tried: list[Quad] = []

        def search_and_read(max_side: int) -> list[_Line]:
            t0 = time.perf_counter()
            quads, dscores = engine.detect(region, max_side)
            lines = [(q + offset, d) for q, d in zip(quads, dscores, strict=True)]
            lines = [(q, d) for q, d in lines if not any(_overlaps(q, t) for t in tried)]
            t1 = time.perf_counter()
            raw["detected"] += [{"quad": _jq(q), "score": round(d, 4)} for q, d in lines]
            tried.extend(q for q, _ in lines)
            read = _read_lines(engine, image, lines, formats, raw)
            timing["search"] += t1 - t0
            timing["recognise"] += time.perf_counter() - t1
            return read

        side = self._config.local.search_max_side
        found = search_and_read(side)
        finer = min(max(x1 - x0, y1 - y0), round(FINE_SEARCH_FACTOR * side))
        if not found and finer > side:  # a plate too small or soft at that size?
            raw["fine_search"] = finer
            found = search_and_read(finer)

        reads = [_read(line, width, height) for line in found]
        by_plate: dict[str, PlateRead] = {}
        for read in sorted(reads, key=lambda r: -r.score):
            by_plate.setdefault(read.plate, read)  # two lines read alike: one plate
        raw["search_ms"] = round(timing["search"] * 1000.0, 2)
        raw["recognise_ms"] = round(timing["recognise"] * 1000.0, 2)
        total_ms = (time.perf_counter() - started) * 1000.0
        raw["total_ms"] = round(total_ms, 2)
        self._reads += 1
        self._last_ms = round(total_ms, 1)
        return Recognition(
            reads=tuple(by_plate.values()), recognizer=NAME, latency_ms=total_ms,
            processing_ms=total_ms, raw=raw,
        )  # fmt: skip


@dataclasses.dataclass
class _Line:
    """A text line read as a plate: its readings (the first crop's first), quad and score."""

    readings: list[_Reading]
    quad: Quad
    dscore: float


def _jq(quad: Quad) -> list[list[float]]:
    return [[round(float(x), 1), round(float(y), 1)] for x, y in quad]


def _overlaps(quad: Quad, other: Quad) -> bool:
    """Whether ``quad``'s centre lies in ``other``'s bounding box (the same line found again)."""
    cx, cy = quad.mean(axis=0)
    (ox0, oy0), (ox1, oy1) = other.min(axis=0), other.max(axis=0)
    return bool(ox0 <= cx <= ox1 and oy0 <= cy <= oy1)


def _read_lines(
    engine: _Engine, image: Image, lines: list[tuple[Quad, float]], formats: list[str],
    raw: dict[str, Any],
) -> list[_Line]:  # fmt: skip
    """Crop and recognise the plausible ``lines``, widest first, until one reads with
    confidence; if none does, look at the best again. Appends what was read to ``raw``."""
    # The widest lines first: a plate's text is usually the widest line in a bay's picture.
    kept = sorted((qd for qd in lines if _plausible(qd[0])), key=lambda qd: -_size(qd[0])[0])
    found: list[_Line] = []
    for quad, dscore in kept[:MAX_LINES]:
        ((text, rec_score),) = engine.recognise([_crop(image, quad, MARGIN)])
        raw["lines"].append({"quad": _jq(quad), "text": text, "score": round(rec_score, 4)})
        reading = _fit(text, rec_score, formats)
        if reading is None:
            continue
        found.append(_Line([reading], quad, dscore))
        if _confident(reading):
            return found  # one bay, one car: the plate is read
    if found:  # nothing read with confidence: look at the best line again
        best = max(found, key=lambda line: line.readings[0].score)
        raw["second_look"] = True
        crop = _crop(image, best.quad, MARGIN)
        crops = [_crop(image, best.quad, WIDE_MARGIN), _stretched(crop), _widened(crop)]
        for text, rec_score in engine.recognise(crops):
            raw["lines"].append({"quad": None, "text": text, "score": round(rec_score, 4)})
            again = _fit(text, rec_score, formats)
            if again is not None:
                best.readings.append(again)
    return found


def _read(line: _Line, width: int, height: int) -> PlateRead:
    """One plate from the readings of one line: the best one, the others as candidates.

    Readings of the same plate add up: two crops agreeing on a plate outweigh one that does not.
    """
    votes: dict[str, list[_Reading]] = {}
    for r in line.readings:
        votes.setdefault(r.plate, []).append(r)

    def strength(plate: str) -> tuple[int, float]:
        rs = votes[plate]
        return (any(r.pattern is not None for r in rs), max(r.score for r in rs) + 0.1 * len(rs))

    ranked = sorted(votes, key=strength, reverse=True)
    top = max(votes[ranked[0]], key=lambda r: r.score)
    return PlateRead(
        plate=top.plate,
        score=round(top.score, 4),
        dscore=round(line.dscore, 4),
        box=_bbox(line.quad, width, height),
        recognizer=NAME,
        text=top.text,
        candidates=tuple(Candidate(p, round(max(r.score for r in votes[p]), 4)) for p in ranked),
        format=top.pattern,
    )


def _checked(image: object) -> Image:
    """The picture as a contiguous H x W x 3 uint8 array, or RecognizerError("bad_image")."""
    import cv2

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise RecognizerError("bad_image", "expected an 8-bit image")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 16:
        raise RecognizerError("bad_image", f"expected a BGR picture, got shape {image.shape}")
    return np.asarray(image, np.uint8)
