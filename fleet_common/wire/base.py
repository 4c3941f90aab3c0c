"""Base models of every wire type."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """What a client sends: unknown fields are refused (422), the model is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ResponseModel(BaseModel):
    """What a server answers: unknown fields are ignored, so an older client parses a newer
    server's answer without a lenient re-parse."""

    model_config = ConfigDict(extra="ignore", frozen=True)
