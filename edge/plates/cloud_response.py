"""Plate Recognizer's Snapshot API answers as :class:`Recognition` (pure), and pictures made to
fit its upload limit. Used by :mod:`edge.plates.cloud`; no HTTP here.

Their documented answer: ``processing_time`` (ms), ``results[]`` with ``plate`` (lower case),
``score``, ``dscore``, ``box{xmin,ymin,xmax,ymax}``, ``region{code,score}``,
``vehicle{type,score,box}``, ``candidates[{plate,score}]``, and with ``mmc`` ``model_make[]``,
``color[]``, ``orientation[]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from edge.plates.types import Box, Candidate, PlateRead, Recognition, RecognizerError, Vehicle

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["NAME", "Normalize", "map_response", "shrink_jpeg", "simple_normalize"]

NAME = "platerecognizer"

Normalize = Callable[[str], tuple[str, str | None]]


def simple_normalize(text: str) -> tuple[str, str | None]:
    """Upper case, ASCII letters and digits only; no format (the service passes ``fit_plate``)."""
    return "".join(c for c in text.upper() if c.isascii() and c.isalnum()), None


# ---------------------------------------------------------------------- the pure mapping
def map_response(
    body: Any, *, normalize: Normalize = simple_normalize, latency_ms: float,
    scale: float = 1.0,
) -> Recognition:  # fmt: skip
    """Plate Recognizer's JSON answer as a :class:`Recognition` (reads best first, raw kept).

    ``scale`` is the size of the picture sent relative to the caller's picture (below 1 when
    it was scaled down): boxes are mapped back to the caller's pixels. Both the default answer
    and the ``detection_mode: vehicle`` one are understood. Raises ``RecognizerError``
    ``bad_response`` when the body is not that.
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
        raise RecognizerError("bad_response", "Plate Recognizer's answer has no results list")
    try:
        reads = [r for r in (_read(res, normalize, scale) for res in body["results"]) if r]
        processing = body.get("processing_time")
        processing_ms = None if processing is None else float(processing)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise RecognizerError(
            "bad_response", f"Plate Recognizer's answer is not as documented ({err!r})"
        ) from err
    reads.sort(key=lambda r: (r.score, r.dscore), reverse=True)
    return Recognition(tuple(reads), NAME, latency_ms, processing_ms, raw=body)


def _read(res: Mapping[str, Any], normalize: Normalize, scale: float) -> PlateRead | None:
    plate = res["plate"]
    if isinstance(plate, Mapping):  # detection_mode "vehicle": {type, score, box, props}
        props = plate["props"]
        text, score = str(props["plate"][0]["value"]), float(props["plate"][0]["score"])
        dscore, box = float(plate["score"]), _box(plate.get("box"), scale)
        regions = props.get("region") or []
        region = (str(regions[0]["value"]), float(regions[0]["score"])) if regions else None
        candidates = [(str(c["value"]), float(c["score"])) for c in props["plate"]]
        extra = _vehicle_props(res.get("vehicle"))
    elif plate is None:  # a vehicle without a plate
        return None
    else:
        text, score, dscore = str(plate), float(res["score"]), float(res.get("dscore", 0.0))
        box = _box(res.get("box"), scale)
        reg = res.get("region")
        region = (str(reg["code"]), float(reg["score"])) if reg else None
        candidates = [(str(c["plate"]), float(c["score"])) for c in res.get("candidates") or []]
        extra = {k: list(res[k]) for k in ("model_make", "color", "orientation") if res.get(k)}
    fitted, pattern = normalize(text)
    if not fitted:
        return None
    return PlateRead(
        plate=fitted, score=score, dscore=dscore, box=box, recognizer=NAME, text=text,
        region=region[0] if region else None, region_score=region[1] if region else None,
        vehicle=_vehicle(res.get("vehicle"), scale),
        candidates=_candidates(fitted, score, candidates, normalize), format=pattern,
        extra=extra,
    )  # fmt: skip


def _box(raw: Any, scale: float) -> Box | None:
    if not raw:
        return None
    coords = [round(float(raw[k]) / scale) for k in ("xmin", "ymin", "xmax", "ymax")]
    if not any(coords):
        return None  # "if we cannot find a vehicle, the coordinates are all 0"
    return Box(*coords)


def _vehicle(raw: Any, scale: float) -> Vehicle | None:
    if not raw or not raw.get("type"):
        return None
    box = _box(raw.get("box"), scale)
    score = float(raw.get("score", 0.0))
    if score == 0.0 and box is None:
        return None  # no vehicle found
    return Vehicle(str(raw["type"]), score, box)


def _vehicle_props(raw: Any) -> dict[str, Any]:
    props = (raw or {}).get("props") or {}
    return {k: list(props[k]) for k in ("make_model", "color", "orientation") if props.get(k)}


def _candidates(
    plate: str, score: float, raw: Sequence[tuple[str, float]], normalize: Normalize
) -> tuple[Candidate, ...]:
    """Normalised, best first, each plate once, ``plate`` itself included."""
    best: dict[str, float] = {plate: score}
    for text, cand_score in raw:
        fitted = normalize(text)[0]
        if fitted and cand_score > best.get(fitted, -1.0):
            best[fitted] = cand_score
    best[plate] = max(best[plate], score)
    ordered = sorted(best.items(), key=lambda kv: (kv[0] != plate, -kv[1]))
    return tuple(Candidate(p, s) for p, s in ordered)


# ---------------------------------------------------------------------- pictures
def shrink_jpeg(image: NDArray[np.uint8], size: int, max_bytes: int) -> tuple[bytes, float]:
    """``image`` (BGR) re-encoded under ``max_bytes``: (jpeg, scale). Blocking (OpenCV)."""
    import cv2

    scale = min(1.0, math.sqrt(max_bytes / max(size, 1)) * 0.9)
    quality = 90
    h, w = image.shape[:2]
    for _ in range(8):
        dims = (max(16, int(w * scale)), max(16, int(h * scale)))
        small = cv2.resize(image, dims, interpolation=cv2.INTER_AREA) if scale < 1 else image
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(buf) <= max_bytes:
            return buf.tobytes(), dims[0] / w
        scale *= 0.8
        quality = max(70, quality - 5)
    raise RecognizerError("too_large", f"the picture does not fit in {max_bytes} bytes")
