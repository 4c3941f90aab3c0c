"""Plate routes: stored reads (viewer), their crops, the readers' status, and the handshake
(operator): ``POST /api/plates/recognize`` reads the bay now and answers with the read and the
exact picture used.

Handshake errors: ``plates_disabled`` (503: policy none), ``no_frame`` (503: no picture fresh
enough), ``timeout`` (504), ``recognizer_unavailable`` (503: the cloud's quota, breaker or
credits; the message says which), ``recognizer_failed`` (502).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query, Response
from fastapi import Path as PathParam

from edge.api.asgi import MAX_INT
from edge.api.errors import documented
from edge.api.routes import Route
from edge.errors import ApiError
from fleet_common.wire.edge import (
    PlateList,
    PlateReadInfo,
    PlatesStatus,
    RecognizeRequest,
    RecognizeResult,
)

if TYPE_CHECKING:
    from edge.plates.service import PlateService
    from edge.service import Edge

PLATE_ROUTES = [
    Route("GET", "/api/plates", "viewer"),
    Route("GET", "/api/plates/status", "viewer"),
    Route("GET", "/api/plates/{read_id}", "viewer"),
    Route("GET", "/api/plates/{read_id}/crop.jpg", "viewer"),
    Route("POST", "/api/plates/recognize", "operator"),
]

_ERRORS = documented(
    "plates_disabled", "no_frame", "recognizer_unavailable", "timeout", "recognizer_failed"
)

ServiceGetter = Callable[[], "PlateService | None"]


def _epoch(text: str | None, name: str) -> float | None:
    """An RFC 3339 time or epoch seconds, as epoch seconds."""
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: expected RFC 3339 or epoch seconds") from None
    if stamp.tzinfo is None:
        raise ValueError(f"{name}: the time needs a zone (Z or +hh:mm)")
    return stamp.timestamp()


def add_plate_routes(api: FastAPI, edge: Edge, plates: ServiceGetter) -> None:
    """The routes; ``plates()`` is the running plate service (None while stopped)."""

    @api.get(
        "/api/plates", response_model=PlateList, tags=["plates"],
        responses=documented("no_store", "bad_time"),
    )  # fmt: skip
    async def list_reads(
        since: str | None = Query(None, description="Captured at or after (RFC 3339 or epoch s)."),
        until: str | None = Query(None, description="Captured before (RFC 3339 or epoch s)."),
        plate: str | None = Query(None, max_length=16, description="Plate prefix (any case)."),
        member: str | None = Query(None, max_length=64,
                                   description="A member id, or `*` for reads of any member."),
        recognizer: str | None = Query(None, description="`local` or `platerecognizer`."),
        trigger: str | None = Query(None, description="`handshake`, `motion` or `interval`."),
        before_id: int | None = Query(None, ge=1, le=MAX_INT,
                                      description="Paging: reads older than this."),
        limit: int = Query(50, ge=1, le=500),
    ) -> Any:  # fmt: skip
        """Stored reads, newest first, filtered; page with `next_before_id`."""
        from edge.plates.normalize import clean
        from edge.plates.store import ReadFilter, query_reads

        store = edge.store
        if store is None:
            raise ApiError("no_store", "this edge runs without its store: no reads are kept")
        try:
            f = ReadFilter(
                since=_epoch(since, "since"), until=_epoch(until, "until"),
                plate_prefix=clean(plate) if plate else None, member=member,
                recognizer=recognizer, trigger=trigger, before_id=before_id, limit=limit + 1,
            )  # fmt: skip
        except ValueError as err:
            raise ApiError("bad_time", str(err)) from err
        rows = await asyncio.to_thread(query_reads, store, f)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"reads": [r.payload for r in rows],
                "next_before_id": rows[-1].id if more and rows else None}  # fmt: skip

    @api.get("/api/plates/status", response_model=PlatesStatus, tags=["plates"],
             responses=documented("plates_disabled"))  # fmt: skip
    async def status() -> Any:
        """The policy in force, each reader's state (the cloud's quota and breaker), members."""
        service = plates()
        if service is None:
            raise ApiError("plates_disabled", "the plate service is not running")
        await service.refresh_members()
        body = service.status()
        if edge.store is not None:
            from edge.plates.store import read_count

            body["reads_stored"] = await asyncio.to_thread(read_count, edge.store)
        return body

    read_path = PathParam(ge=1, le=MAX_INT, description="Read id.")

    @api.get("/api/plates/{read_id}", response_model=PlateReadInfo, tags=["plates"],
             responses=documented("not_found"))  # fmt: skip
    async def one_read(read_id: int = read_path) -> Any:
        """One stored read."""
        from edge.plates.store import get_read

        store = edge.store
        stored = await asyncio.to_thread(get_read, store, read_id) if store is not None else None
        if stored is None:
            raise ApiError("not_found", f"no stored read {read_id}")
        return stored.payload

    @api.get(
        "/api/plates/{read_id}/crop.jpg", tags=["plates"], response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}, "description": "The plate crop"},
                   **documented("not_found")},
    )  # fmt: skip
    async def crop(read_id: int = read_path) -> Response:
        """The plate's crop (JPEG) while the store keeps it (`store.max_plate_crops`)."""
        from edge.plates.store import get_crop

        store = edge.store
        jpeg = await asyncio.to_thread(get_crop, store, read_id) if store is not None else None
        if jpeg is None:
            raise ApiError("not_found", f"no crop kept for read {read_id}")
        return Response(jpeg, media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=86400, immutable"})  # fmt: skip

    @api.post(
        "/api/plates/recognize", response_model=RecognizeResult, responses=_ERRORS,
        tags=["plates"],
    )  # fmt: skip
    async def recognize(body: RecognizeRequest | None = None) -> Any:
        """The handshake: read the car in the bay now. Answers with the read (null: no plate),
        whether it repeats a read already stored within the dedup window, and the picture used."""
        service = plates()
        if service is None:
            raise ApiError("plates_disabled", "the plate service is not running")
        started = time.monotonic()
        req = body or RecognizeRequest()
        outcome = await service.recognize_now(
            max_age_ms=req.max_age_ms, timeout_s=req.timeout_s
        )  # PlatesError: 5xx

        return {
            "read": outcome.payload, "duplicate": outcome.duplicate,
            "snapshot": edge.meta(outcome.snapshot).model_dump(),
            "recognizers": outcome.recognizers,
            "latency_ms": round((time.monotonic() - started) * 1000.0, 1), "note": outcome.note,
        }  # fmt: skip
