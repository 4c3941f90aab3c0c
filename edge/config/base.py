"""What every config section shares: the section base, how a change to a key is applied (the
``x-apply`` of the JSON schema) and the markers and helpers that keep credentials out of sight.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, JsonValue

# How a changed key takes effect (the ``x-apply`` of its JSON schema; see edge/live_config.py):
# ``hot`` is applied in place; ``restart:<component>`` restarts only that component (the camera
# source, the guards, the zeroconf advertisement) while the HTTP server and the cache keep
# serving; ``restart:process`` keys are read once at start-up and the config API refuses to
# change them (edit the file and restart the service).
ApplyClass = Literal[
    "hot", "restart:camera", "restart:guards", "restart:discovery", "restart:locks",
    "restart:plates", "restart:process",
]  # fmt: skip
APPLY_KEY = "x-apply"
# A string field that may hold a URL with credentials (user info or query parameters): masked in
# the config API and in stored config versions like a SecretStr field (edge/live_config.py).
SECRET_URL_KEY = "x-secret-url"  # noqa: S105 - a schema key, not a secret


def apply_class(kind: ApplyClass) -> dict[str, JsonValue]:
    """``json_schema_extra`` of a field: how a change to it is applied."""
    return {APPLY_KEY: kind}


class Section(BaseModel):
    """A config section: unknown keys are an error, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# Query parameters that carry credentials in camera URLs (Dahua/Hikvision:
# ``/cam/realmonitor?channel=1&user=admin&password=...``), matched case-insensitively.
SECRET_QUERY_KEYS: frozenset[str] = frozenset({
    "password", "passwd", "pass", "pwd", "token", "auth", "secret", "key", "apikey", "api_key",
    "access_token", "signature", "sig",
})  # fmt: skip
URL_MASK = "***"


def _split_netloc(netloc: str) -> tuple[str, str | None, str] | None:
    """``(user, password or None, host)`` of a netloc with user info, else None."""
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        return None
    user, colon, password = userinfo.partition(":")
    return user, (password if colon else None), host


def _query_pairs(query: str) -> list[tuple[str, str, str]]:
    """``(raw pair, name, raw value)`` of each ``&``-separated pair, as written (no decoding)."""
    pairs = []
    for raw in query.split("&"):
        name, _, value = raw.partition("=")
        pairs.append((raw, name, value))
    return pairs


def _is_secret_key(name: str) -> bool:
    return unquote(name).lower() in SECRET_QUERY_KEYS


def redact_url(url: str, mask: str = URL_MASK) -> str:
    """The URL with every credential replaced by ``mask``, for logs and the API.

    Credentials are the password of the user info (``rtsp://user:pass@host``) and the values of
    credential query parameters (``?user=admin&password=...``, see :data:`SECRET_QUERY_KEYS`).
    User names stay readable. :func:`unredact_url` reverses it against the original URL.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    creds = _split_netloc(netloc)
    if creds is not None and creds[1] is not None:
        netloc = f"{creds[0]}:{mask}@{creds[2]}"
    query = parts.query
    if query:
        query = "&".join(
            f"{name}={mask}" if _is_secret_key(name) and value else raw
            for raw, name, value in _query_pairs(query)
        )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def unredact_url(url: str, original: str, mask: str = URL_MASK) -> str:
    """``url`` with each credential shown as ``mask`` put back from ``original`` (same place:
    the user info's password, or the query parameter of the same name)."""
    parts, old = urlsplit(url), urlsplit(original)
    netloc = parts.netloc
    creds, old_creds = _split_netloc(netloc), _split_netloc(old.netloc)
    if creds is not None and creds[1] == mask and old_creds is not None and old_creds[1]:
        netloc = f"{creds[0]}:{old_creds[1]}@{creds[2]}"
    query = parts.query
    if query and mask in query:
        old_values = {name: value for _, name, value in _query_pairs(old.query)}
        query = "&".join(
            f"{name}={old_values[name]}"
            if value == mask and _is_secret_key(name) and old_values.get(name) else raw
            for raw, name, value in _query_pairs(query)
        )  # fmt: skip
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
