"""``carwash-edge enroll``: a one-time enrolment token → this edge's device id and key.

:func:`enroll` asks the cloud (``POST /api/v1/devices/enroll``) and writes the answer to
``DATA_DIR/cloud.json`` (0600, atomically). Blocking: it is a command-line step.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from edge.sync.client import Timeouts, raise_for
from edge.sync.credentials import CloudCredentials
from edge.sync.errors import CloudCallFailed, CloudUnavailable, EnrollRefused, SyncError
from fleet_common.version import VERSION
from fleet_common.wire.cloud import EnrollRequest, EnrollResponse

log = logging.getLogger("edge.sync")

ENROLL_PATH: Final = "/api/v1/devices/enroll"


def normalise_url(url: str) -> str:
    """``https://host[:port][/prefix]`` without a trailing slash; SyncError if not http(s)."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SyncError(f"--cloud {url!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SyncError(f"--cloud {url!r}: give the cloud's base URL only (no query, no user)")
    return text.rstrip("/")


def enroll(
    cloud_url: str,
    token: str,
    data_dir: Path,
    name: str = "",
    *,
    edge_id: str = "",
    edge_version: str = VERSION,
    force: bool = False,
    timeouts: Timeouts | None = None,
    transport: httpx.BaseTransport | None = None,
) -> CloudCredentials:
    """Exchange ``token`` for a device id and key, save them in ``data_dir``; return them.

    Raises :class:`EnrollRefused` (the token is unknown, used or expired), :class:`SyncError`
    (a bad URL, enrolled already without ``force``, or ``data_dir`` not writable) and
    :class:`CloudUnavailable` (no answer, or not a carwash cloud).
    """
    url = normalise_url(cloud_url)
    token = token.strip()
    if not token:
        raise EnrollRefused("the enrolment token is empty")
    path = CloudCredentials.path_in(data_dir)
    if path.exists() and not force:
        try:
            known = CloudCredentials.load(data_dir)
        except SyncError:
            pass  # unreadable: enrolling again is the fix
        else:
            raise SyncError(
                f"already enrolled as device {known.device_id} with {known.cloud_url} ({path});"
                " pass --force to enrol again (the old device stays in the cloud until an admin"
                " revokes it)"
            )
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        log.warning("the cloud URL is plain http: the device key crosses the network unencrypted")
    request = EnrollRequest(token=token, name=name[:120], edge_id=edge_id[:64],
                            edge_version=edge_version[:40])  # fmt: skip
    timeout = (timeouts or Timeouts()).httpx()
    try:
        with httpx.Client(base_url=url, timeout=timeout, transport=transport) as http:
            resp = http.post(ENROLL_PATH, json=request.model_dump())
    except httpx.TimeoutException as err:
        raise CloudUnavailable(f"the cloud at {url} did not answer in time",
                               reason="timeout") from err  # fmt: skip
    except httpx.TransportError as err:
        raise CloudUnavailable(f"cannot reach the cloud at {url}: {err or type(err).__name__}",
                               reason="unreachable") from err  # fmt: skip
    if resp.status_code in (401, 403, 422):  # token_invalid (401), a malformed token (422)
        raise EnrollRefused(f"the cloud refused the token: {_reason(resp)}")
    try:
        raise_for(resp, "enrol")
    except CloudCallFailed as err:
        raise CloudUnavailable(f"{err} (is {url} a carwash cloud?)", reason=err.reason) from err
    try:
        answer = EnrollResponse.model_validate_json(resp.content)
    except ValidationError as err:
        raise CloudUnavailable(f"{url} answered, but not as a carwash cloud does",
                               reason="bad_answer") from err  # fmt: skip
    credentials = CloudCredentials(
        cloud_url=url, device_id=answer.device_id, device_key=answer.device_key,
        site_id=answer.site_id, heartbeat_interval_s=answer.heartbeat_interval_s,
        enrolled_at=CloudCredentials.now(),
    )  # fmt: skip
    try:
        credentials.save(data_dir)
    except OSError as err:
        raise SyncError(
            f"enrolled as device {answer.device_id}, but cannot write {path}: {err}; the key is"
            " lost: have an admin revoke that device, fix the folder and enrol with a new token"
        ) from err
    return credentials


def _reason(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:300]
    return f"HTTP {resp.status_code}"
