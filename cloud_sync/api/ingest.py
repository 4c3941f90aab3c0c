"""``POST /api/v1/ingest``: a batch of the device's outbox events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from cloud_sync.api.access import cloud_of, declare, device
from cloud_sync.devices.keys import DeviceAuth
from fleet_common.wire.cloud import IngestBatch, IngestResult

router = APIRouter(prefix="/api/v1", tags=["devices"])


@router.post(
    "/ingest",
    response_model=IngestResult,
    responses={413: {"description": "Body or batch too large"}, 429: {"description": "Slow down"}},
    **declare("device"),
)
async def ingest(
    batch: IngestBatch, me: Annotated[DeviceAuth, Depends(device)], request: Request
) -> IngestResult:
    """Store each event once (by the device and the event's `key`), in any order; a replayed
    batch changes nothing. `Content-Encoding: gzip` is accepted. 413 beyond `max_batch_events`
    events; 429 with `Retry-After` when the device sends faster than its rate."""
    return await cloud_of(request).ingest(me, batch)
