"""The shared wire contract: pydantic models and constants only (no I/O, no heavy imports).

- :mod:`fleet_common.wire.base`: the base models. Requests forbid unknown fields (a typo is an
  error, not a silently ignored setting); responses ignore them, so a client of an older version
  keeps working when a server adds a field.
- :mod:`fleet_common.wire.errors`: the one error body and the registry of error codes.
- :mod:`fleet_common.wire.cloud`: the cloud's API (enrolment, heartbeat, ingest, reads, config).

A test imports every module here in a fresh interpreter and fails if anything beyond pydantic
and the standard library comes along.
"""

from fleet_common.wire.base import RequestModel, ResponseModel
from fleet_common.wire.errors import ERROR_CODES, ErrorBody, ErrorCode, status_of

__all__ = ["ERROR_CODES", "ErrorBody", "ErrorCode", "RequestModel", "ResponseModel", "status_of"]
