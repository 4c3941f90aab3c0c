"""What a plate recogniser returns, and the interface every recogniser implements.

Pure data: no OpenCV, no HTTP. Coordinates are pixels of the picture that was read (the full
snapshot, whatever region of interest the recogniser searched).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from edge.errors import EdgeError

__all__ = [
    "Box",
    "Candidate",
    "Picture",
    "PlateRead",
    "Recognition",
    "Recognizer",
    "RecognizerError",
    "RecognizerUnavailable",
    "UnavailableReason",
    "Vehicle",
]

Image = NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box, ``xmax``/``ymax`` exclusive (Plate Recognizer's ``box``)."""

    xmin: int
    ymin: int
    xmax: int
    ymax: int

    def as_dict(self) -> dict[str, int]:
        return {"xmin": self.xmin, "ymin": self.ymin, "xmax": self.xmax, "ymax": self.ymax}


@dataclass(frozen=True, slots=True)
class Candidate:
    plate: str  # normalised like PlateRead.plate
    score: float


@dataclass(frozen=True, slots=True)
class Vehicle:
    type: str  # Plate Recognizer's vehicle type: Sedan, SUV, Van, Pickup Truck, ...
    score: float
    box: Box | None = None


@dataclass(frozen=True)
class PlateRead:
    """One plate found in a picture.

    ``plate`` is normalised: upper case, letters and digits only (no spaces or dashes), fitted
    to the site's formats where a format matched (see :mod:`edge.plates.normalize`).
    ``text`` is what the recogniser read before normalising. ``candidates`` are alternative
    readings, best first, ``plate`` itself included.
    """

    plate: str
    score: float  # confidence in the text, 0..1
    dscore: float  # confidence that this is a plate (detection), 0..1
    box: Box | None
    recognizer: str  # "local" or "platerecognizer"
    text: str = ""
    region: str | None = None  # e.g. "fr", "us-ca" (Plate Recognizer's region code)
    region_score: float | None = None
    vehicle: Vehicle | None = None
    candidates: tuple[Candidate, ...] = ()
    format: str | None = None  # the matching format's pattern, None if none matched
    extra: Mapping[str, Any] = field(default_factory=dict)  # model_make, color, orientation...


@dataclass(frozen=True)
class Recognition:
    """Everything one recogniser found in one picture: ``reads`` best first (may be empty)."""

    reads: tuple[PlateRead, ...]
    recognizer: str
    latency_ms: float  # wall time of recognize(), including any waiting for the rate limit
    processing_ms: float | None = None  # the recogniser's own figure (Plate Recognizer's)
    raw: Any = None  # the recogniser's raw answer, kept (cloud: the parsed JSON body)

    @property
    def best(self) -> PlateRead | None:
        return self.reads[0] if self.reads else None


@dataclass(eq=False)
class Picture:
    """A snapshot handed to a recogniser: the JPEG as served, and its pixels on demand."""

    jpeg: bytes
    seq: int
    captured_at: float  # wall clock
    width: int
    height: int
    _bgr: Image | None = field(default=None, repr=False)

    def bgr(self) -> Image:
        """The decoded picture (BGR). Blocking (a few ms): call it from a worker thread."""
        if self._bgr is None:
            import cv2  # the pure part of the package stays free of OpenCV

            img = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                raise RecognizerError("bad_image", "the picture is not a readable JPEG")
            self._bgr = np.asarray(img, dtype=np.uint8)
        return self._bgr

    @classmethod
    def from_bgr(cls, image: Image, *, seq: int = 0, captured_at: float = 0.0,
                 quality: int = 90) -> Picture:  # fmt: skip
        """A picture from pixels (tests, the bench, the dataset). Blocking."""
        import cv2

        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RecognizerError("bad_image", "cannot encode the picture as JPEG")
        h, w = image.shape[:2]
        return cls(buf.tobytes(), seq, captured_at, w, h, image)


UnavailableReason = Literal[
    "throttled",  # the rate limit would make the caller wait past its deadline
    "circuit_open",  # too many failures in a row; calls resume after a pause
    "quota_exhausted",  # the month's lookups (minus the reserve) are used up
    "no_credits",  # Plate Recognizer answered 403: the account has no lookups left
    "not_configured",  # no token, or the policy does not use this recogniser
]


class RecognizerError(EdgeError):
    """A picture could not be read: ``code`` is stable (``timeout``, ``http_500``,
    ``too_large``, ``bad_image``, ``bad_response``...), the message is for people. These codes
    name what went wrong inside the recogniser (metrics, logs); over HTTP the handshake answers
    with a :class:`edge.plates.service.PlatesError` instead."""

    code: ClassVar[str] = "recognizer_failed"
    http_status: ClassVar[int] = 502

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class RecognizerUnavailable(RecognizerError):
    """The recogniser refuses to be called now (no request was sent); see ``reason``."""

    def __init__(self, reason: UnavailableReason, message: str, retry_after_s: float | None = None):
        super().__init__(reason, message)
        self.reason: UnavailableReason = reason
        self.retry_after_s = retry_after_s


class Recognizer(Protocol):
    """A plate reader. ``recognize`` never blocks the event loop (CPU work runs in a thread,
    network calls are async with timeouts) and raises :class:`RecognizerError` on failure."""

    name: str

    async def recognize(
        self, picture: Picture, *, camera_id: str = "", deadline_s: float | None = None
    ) -> Recognition:
        """Read ``picture``. ``deadline_s``: seconds the caller can wait in all (queueing,
        rate limit, retries included); past it, raise rather than answer late."""
        ...

    def status(self) -> dict[str, Any]:
        """JSON-able state for ``GET /api/plates/status`` and the health (``state`` first)."""
        ...

    async def aclose(self) -> None: ...
