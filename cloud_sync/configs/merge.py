"""Pure config arithmetic: deep merge of layers, and a digest that says whether two configs are
the same document.

Merge rules (JSON objects only): a key of a later layer wins; where both values are objects they
merge key by key; lists and scalars are replaced whole; ``null`` in an override sets ``null``
(it does not delete the key: an edge field that takes ``null`` means "none").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``; neither is changed."""
    out: dict[str, Any] = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = deep_merge(old, value)
        else:
            out[key] = _copy(value)
    return out


def merge_layers(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Layers lowest first (template, then organisation, region, site, device overrides)."""
    out: dict[str, Any] = {}
    for layer in layers:
        out = deep_merge(out, layer)
    return out


def digest(config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys): equal digests, equal documents."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
