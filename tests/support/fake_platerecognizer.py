"""A fake Plate Recognizer Snapshot API on real HTTP (127.0.0.1, ephemeral port), for tests.

It speaks the documented format: ``POST /v1/plate-reader/`` with ``Authorization: Token KEY``
(401 otherwise) and a multipart form (``upload`` must be a JPEG, 413 over 3 MB; ``regions``
repeated, ``camera_id``, ``timestamp``, ``mmc``, ``config``); ``GET /v1/statistics/``. Answers
follow a queue of scripted behaviours, then :attr:`FakePlateRecognizer.default`::

    fake.script(Behaviour.throttled(1), Behaviour.ok("AB123CD"))
    fake.script(Behaviour.error(502), Behaviour.hang())

Every request is recorded (:attr:`requests`: arrival time on ``time.monotonic``, headers,
fields) so a test can check the rate. The server runs on its own event loop in a thread,
like a remote service: the test's loop never serves it, so a stall there is the client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_UPLOAD = 3_000_000  # bytes, as the cloud's upload limit
THROTTLE_TEXT = "Request was throttled. Expected available in {n} second{s}."

Plates = Sequence[str] | Callable[["RecordedRequest"], Sequence[str]]


@dataclass(frozen=True)
class Behaviour:
    """One scripted answer of ``POST /v1/plate-reader/``."""

    kind: str  # ok, throttled, no_credits, too_large, error, hang
    plates: Plates = ()
    status: int = 200
    wait_s: int = 1  # throttled: "Expected available in N second(s)"
    retry_after: bool = False  # throttled: also send a Retry-After header
    delay_s: float = 0.0  # answer this much later

    @classmethod
    def ok(cls, *plates: str, delay_s: float = 0.0) -> Behaviour:
        return cls("ok", plates, delay_s=delay_s)

    @classmethod
    def ok_from(cls, plates: Callable[[RecordedRequest], Sequence[str]]) -> Behaviour:
        """Plates computed from the request (e.g. from its ``camera_id``)."""
        return cls("ok", plates)

    @classmethod
    def no_plate(cls) -> Behaviour:
        return cls("ok", ())

    @classmethod
    def throttled(cls, seconds: int = 1, *, retry_after: bool = False) -> Behaviour:
        return cls("throttled", status=429, wait_s=seconds, retry_after=retry_after)

    @classmethod
    def no_credits(cls) -> Behaviour:
        return cls("no_credits", status=403)

    @classmethod
    def too_large(cls) -> Behaviour:
        return cls("too_large", status=413)

    @classmethod
    def error(cls, status: int = 500) -> Behaviour:
        return cls("error", status=status)

    @classmethod
    def hang(cls) -> Behaviour:
        """Never answer (until the server closes)."""
        return cls("hang")


@dataclass
class RecordedRequest:
    at: float  # time.monotonic() when the request reached the app
    method: str
    path: str
    headers: dict[str, str]
    fields: dict[str, list[str]] = field(default_factory=dict)  # text fields (repeats kept)
    upload_bytes: int | None = None
    upload_size: tuple[int, int] | None = None  # (width, height) of the decoded JPEG
    status: int | None = None  # what was answered (None while hanging)
    answered_at: float | None = None  # time.monotonic() when the answer was ready


def parse_multipart(body: bytes, content_type: str) -> dict[str, list[tuple[bytes, str | None]]]:
    """multipart/form-data → {name: [(payload, filename)]}. Strict enough for a fake."""
    boundary = None
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not content_type.lower().startswith("multipart/form-data") or not boundary:
        raise ValueError("not multipart/form-data")
    out: dict[str, list[tuple[bytes, str | None]]] = {}
    delimiter = b"--" + boundary.encode()
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, sep, payload = chunk.partition(b"\r\n\r\n")
        if not sep or not payload.endswith(b"\r\n"):
            raise ValueError("malformed part")
        payload = payload[:-2]
        name = filename = None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                for item in line.split(";")[1:]:
                    k, _, v = item.strip().partition("=")
                    if k == "name":
                        name = v.strip('"')
                    elif k == "filename":
                        filename = v.strip('"')
        if name is None:
            raise ValueError("part without a name")
        out.setdefault(name, []).append((payload, filename))
    return out


def plate_result(
    plate: str, width: int, height: int, index: int = 0, *, region: str = "fr", mmc: bool = False
) -> dict[str, Any]:
    """One realistic ``results[]`` entry: lower-case plate, box, region, vehicle, candidates.

    The plate box sits at fixed fractions of the picture received, so a test can check boxes
    are mapped back when the client scaled the picture down."""
    text = plate.lower()
    x0, y0 = int(width * (0.40 + 0.05 * index)), int(height * 0.70)
    box = {"xmin": x0, "ymin": y0, "xmax": x0 + int(width * 0.15), "ymax": y0 + int(height * 0.06)}
    vbox = {"xmin": int(width * 0.2), "ymin": int(height * 0.3),
            "xmax": int(width * 0.8), "ymax": int(height * 0.95)}  # fmt: skip
    score = round(0.91 - 0.1 * index, 3)
    alt = text[:-1] + ("0" if text[-1] != "0" else "o")
    result: dict[str, Any] = {
        "box": box,
        "plate": text,
        "region": {"code": region, "score": 0.87},
        "vehicle": {"score": 0.83, "type": "Sedan", "box": vbox},
        "score": score,
        "candidates": [{"score": score, "plate": text}, {"score": 0.72, "plate": alt}],
        "dscore": 0.95,
    }
    if mmc:
        result["model_make"] = [{"make": "Renault", "model": "Clio", "score": 0.61}]
        result["color"] = [{"color": "silver", "score": 0.88}]
        result["orientation"] = [{"orientation": "Rear", "score": 0.93}]
    return result


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # no signal handlers in a thread

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._started_event.set()


class FakePlateRecognizer:
    """The fake server; :meth:`start` / :meth:`close` (or ``with``). :attr:`url` and
    :attr:`statistics_url` are what the client's config takes."""

    def __init__(self, token: str = "test-token-0123456789") -> None:  # noqa: S107
        self.token = token
        self.default = Behaviour.ok("AB123CD")
        self.region = "fr"
        self.usage_calls = 0  # statistics: calls this month before our lookups
        self.total_calls = 2500
        self.resets_on = "2026-12-01T00:00:00Z"
        self.statistics_status = 200
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._lookups = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._sock: socket.socket | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ script and records
    def script(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._queue.extend(behaviours)

    def _next(self) -> Behaviour:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/plate-reader/"

    @property
    def statistics_url(self) -> str:
        return f"{self.base_url}/v1/statistics/"

    def lookups(self) -> list[RecordedRequest]:
        """The plate-reader requests so far (statistics reads left out)."""
        return [r for r in list(self.requests) if r.path == "/v1/plate-reader/"]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakePlateRecognizer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self._sock = sock
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app = Starlette(routes=[
            Route("/v1/plate-reader/", self._plate_reader, methods=["POST"]),
            Route("/v1/statistics/", self._statistics, methods=["GET"]),
        ])  # fmt: skip
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1,
            limit_concurrency=None, access_log=False,
        )  # fmt: skip
        started = threading.Event()
        self._server = _Server(config, started)
        self._thread = threading.Thread(target=self._run, name="fake-platerecognizer")
        self._thread.start()
        if not started.wait(10.0):
            self.close()
            raise RuntimeError("the fake Plate Recognizer did not start")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._release = asyncio.Event()
        assert self._server is not None
        assert self._sock is not None
        try:
            loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        finally:
            loop.close()

    def close(self) -> None:
        if self._loop is not None and self._release is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                self._loop.call_soon_threadsafe(self._release.set)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10.0)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> FakePlateRecognizer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the API
    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Token {self.token}"

    async def _statistics(self, request: Request) -> Response:
        record = RecordedRequest(time.monotonic(), "GET", request.url.path, dict(request.headers))
        self.requests.append(record)
        if not self._authorised(request):
            record.status = 401
            return JSONResponse({"detail": "Invalid token."}, status_code=401)
        record.status = self.statistics_status
        if self.statistics_status != 200:
            return JSONResponse({"detail": "unavailable"}, status_code=self.statistics_status)
        with self._lock:
            calls = self.usage_calls + self._lookups
        return JSONResponse({
            "usage": {"month": 11, "calls": calls, "year": 2026, "resets_on": self.resets_on},
            "total_calls": self.total_calls,
        })  # fmt: skip

    async def _plate_reader(self, request: Request) -> Response:
        record = RecordedRequest(time.monotonic(), "POST", request.url.path, dict(request.headers))
        self.requests.append(record)
        response = await self._answer(request, record)
        record.status = response.status_code
        record.answered_at = time.monotonic()
        return response

    async def _answer(self, request: Request, record: RecordedRequest) -> Response:
        if not self._authorised(request):
            return JSONResponse({"detail": "Invalid token."}, status_code=401)
        body = await request.body()
        if len(body) > MAX_UPLOAD + 10_000:
            return JSONResponse({"detail": "Request Entity Too Large"}, status_code=413)
        try:
            parts = parse_multipart(body, request.headers.get("content-type", ""))
        except ValueError as err:
            return JSONResponse({"detail": f"Multipart form parse error: {err}"}, status_code=400)
        record.fields = {
            name: [p.decode() for p, filename in items if filename is None]
            for name, items in parts.items()
        }
        uploads = [p for p, filename in parts.get("upload", []) if filename is not None]
        if not uploads:
            return JSONResponse({"upload": ["No file was submitted."]}, status_code=400)
        jpeg = uploads[0]
        record.upload_bytes = len(jpeg)
        if len(jpeg) > MAX_UPLOAD:
            return JSONResponse({"detail": "Request Entity Too Large"}, status_code=413)
        image = await asyncio.to_thread(cv2.imdecode, np.frombuffer(jpeg, np.uint8), 1)
        if image is None or not jpeg.startswith(b"\xff\xd8"):
            return JSONResponse({"upload": ["Upload a valid image."]}, status_code=400)
        height, width = image.shape[:2]
        record.upload_size = (width, height)
        return await self._behave(self._next(), record, width, height)

    async def _behave(
        self, behaviour: Behaviour, record: RecordedRequest, width: int, height: int
    ) -> Response:
        if behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        if behaviour.kind == "hang":
            assert self._release is not None
            await self._release.wait()
            return JSONResponse({"detail": "server closing"}, status_code=503)
        if behaviour.kind == "throttled":
            n = behaviour.wait_s
            detail = {"detail": THROTTLE_TEXT.format(n=n, s="" if n == 1 else "s"),
                      "status_code": 429}  # fmt: skip
            headers = {"Retry-After": str(n)} if behaviour.retry_after else None
            return JSONResponse(detail, status_code=429, headers=headers)
        if behaviour.kind == "no_credits":
            return JSONResponse(
                {"detail": "You do not have enough credits to perform this action."},
                status_code=403,
            )
        if behaviour.kind == "too_large":
            return JSONResponse({"detail": "Request Entity Too Large"}, status_code=413)
        if behaviour.kind == "error":
            return Response("<h1>Server Error</h1>", status_code=behaviour.status,
                            media_type="text/html")  # fmt: skip
        plates = behaviour.plates(record) if callable(behaviour.plates) else behaviour.plates
        mmc = record.fields.get("mmc", ["false"])[0] == "true"
        with self._lock:
            self._lookups += 1
        camera = record.fields.get("camera_id", [None])[0]
        return JSONResponse({
            "processing_time": 87.215,
            "results": [
                plate_result(p, width, height, i, region=self.region, mmc=mmc)
                for i, p in enumerate(plates)
            ],
            "filename": "1617_7M83K_snapshot.jpg",
            "version": 1,
            "camera_id": camera,
            "timestamp": record.fields.get("timestamp", ["2026-11-24T19:00:00"])[0],
        })  # fmt: skip
