"""The cloud's wire types (what edges and the console send to and get from it).

Light on purpose, like :mod:`edge.wire`: pydantic and the standard library only. The models of
enrolment, ingest and rollouts arrive with issue C1; the error body is shared from the start so
every client parses errors of both services the same way.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """Every error response: a stable machine code and a sentence for people."""

    model_config = ConfigDict(extra="allow", frozen=True)

    error: str = Field(description="Machine-readable code, e.g. `unauthorized`.")
    message: str = Field(description="What went wrong, for people.")
