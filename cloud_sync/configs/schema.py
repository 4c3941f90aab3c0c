"""The edge config's JSON schema, shipped with the cloud, and a small validator for it.

The schema is ``edge.config.EdgeConfig.model_json_schema()`` (``carwash-edge config-schema``),
copied into ``edge_config.schema.json`` next to this module; the cloud never imports the edge.
``tests/unit/test_cloud_config_schema.py`` regenerates it and fails when the copy is stale.

The validator covers the keywords pydantic emits (types, properties, required,
``additionalProperties``, enums, bounds, lengths, items, ``anyOf``, ``$ref``); a schema with a
keyword it does not know is refused when loaded, so a newer edge cannot make it silently lax.
A *partial* document (an assignment's overrides) skips ``required``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Final

SCHEMA_FILE: Final = "edge_config.schema.json"
MAX_PROBLEMS: Final = 20

_CHECKED: Final = frozenset(
    {
        "$ref",
        "additionalProperties",
        "anyOf",
        "const",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "items",
        "maxItems",
        "maxLength",
        "maximum",
        "minItems",
        "minLength",
        "minimum",
        "pattern",
        "prefixItems",
        "properties",
        "required",
        "type",
    }
)
_ANNOTATIONS: Final = frozenset(
    {
        "$defs",
        "default",
        "description",
        "examples",
        "format",
        "title",
        "readOnly",
        "writeOnly",
    }
)


@dataclass(frozen=True, slots=True)
class Problem:
    path: str  # "camera.fps", "locks.boards[0].port", "(root)"
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


class SchemaValidator:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._root = schema
        self._defs: Mapping[str, Any] = schema.get("$defs", {})
        _check_keywords(schema)

    def problems(self, doc: Any, *, partial: bool = False) -> list[Problem]:
        """What is wrong with ``doc`` (at most :data:`MAX_PROBLEMS`); empty when it is valid."""
        found: list[Problem] = []
        for problem in self._walk(self._root, doc, "", partial):
            found.append(problem)
            if len(found) >= MAX_PROBLEMS:
                break
        return found

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            schema = self._defs[name]
        return schema

    def _walk(
        self, schema: Mapping[str, Any], doc: Any, path: str, partial: bool
    ) -> Iterator[Problem]:
        schema = self._resolve(schema)
        here = path or "(root)"
        if "anyOf" in schema:
            branches = [list(self._walk(s, doc, path, partial)) for s in schema["anyOf"]]
            if any(not b for b in branches):
                return
            typed = [
                b
                for s, b in zip(schema["anyOf"], branches, strict=True)
                if _type_ok(self._resolve(s).get("type"), doc)
            ]
            if len(typed) == 1:
                yield from typed[0]
            else:
                kinds = [self._resolve(s).get("type", "?") for s in schema["anyOf"]]
                yield Problem(here, f"expected one of {', '.join(map(str, kinds))}")
            return
        kind = schema.get("type")
        if kind is not None and not _type_ok(kind, doc):
            yield Problem(here, f"expected {kind}, got {_json_type(doc)}")
            return
        if "const" in schema and doc != schema["const"]:
            yield Problem(here, f"must be {json.dumps(schema['const'])}")
        if "enum" in schema and doc not in schema["enum"]:
            yield Problem(
                here, "must be one of " + ", ".join(json.dumps(v) for v in schema["enum"])
            )
        if isinstance(doc, int | float) and not isinstance(doc, bool):
            yield from _bounds(schema, doc, here)
        if isinstance(doc, str):
            if len(doc) < schema.get("minLength", 0):
                yield Problem(here, f"at least {schema['minLength']} characters")
            if "maxLength" in schema and len(doc) > schema["maxLength"]:
                yield Problem(here, f"at most {schema['maxLength']} characters")
            if "pattern" in schema and re.search(schema["pattern"], doc) is None:
                yield Problem(here, f"must match {schema['pattern']}")
        if isinstance(doc, list):
            yield from self._array(schema, doc, path, partial)
        if isinstance(doc, dict):
            yield from self._object(schema, doc, path, partial)

    def _array(
        self, schema: Mapping[str, Any], doc: list[Any], path: str, partial: bool
    ) -> Iterator[Problem]:
        here = path or "(root)"
        if len(doc) < schema.get("minItems", 0):
            yield Problem(here, f"at least {schema['minItems']} items")
        if "maxItems" in schema and len(doc) > schema["maxItems"]:
            yield Problem(here, f"at most {schema['maxItems']} items")
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(doc):
            sub = prefix[i] if i < len(prefix) else schema.get("items")
            if isinstance(sub, Mapping):
                yield from self._walk(sub, item, f"{path}[{i}]", partial)

    def _object(
        self, schema: Mapping[str, Any], doc: dict[str, Any], path: str, partial: bool
    ) -> Iterator[Problem]:
        props: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        if not partial:
            for name in schema.get("required", ()):
                if name not in doc:
                    yield Problem(_join(path, name), "required")
        for name, value in doc.items():
            where = _join(path, str(name))
            if name in props:
                yield from self._walk(props[name], value, where, partial)
            elif extra is False:
                yield Problem(where, "unknown key")
            elif isinstance(extra, Mapping):
                yield from self._walk(extra, value, where, partial)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _bounds(schema: Mapping[str, Any], value: float, here: str) -> Iterator[Problem]:
    if "minimum" in schema and value < schema["minimum"]:
        yield Problem(here, f"must be >= {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        yield Problem(here, f"must be <= {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        yield Problem(here, f"must be > {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        yield Problem(here, f"must be < {schema['exclusiveMaximum']}")


_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def _type_ok(kind: Any, doc: Any) -> bool:
    if kind is None:
        return True
    kinds = kind if isinstance(kind, list) else [kind]
    for k in kinds:
        if isinstance(doc, bool) and k in ("integer", "number"):
            continue
        if isinstance(doc, _TYPES[k]):
            return True
        if k == "integer" and isinstance(doc, float) and doc.is_integer():
            return True
    return False


def _json_type(doc: Any) -> str:
    for name, types in _TYPES.items():
        if isinstance(doc, types) and not (isinstance(doc, bool) and name != "boolean"):
            return name
    return type(doc).__name__


def _check_keywords(schema: Any) -> None:
    """Refuse a schema with a keyword this validator would ignore (names under ``properties``
    and ``$defs`` are field and model names, not keywords; ``x-...`` are annotations)."""
    if isinstance(schema, list):
        for item in schema:
            _check_keywords(item)
        return
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key.startswith("x-") or key in _ANNOTATIONS - {"$defs"}:
            continue
        if key in ("properties", "$defs"):
            for sub in value.values():
                _check_keywords(sub)
        elif key in _CHECKED:
            _check_keywords(value)
        else:
            raise ValueError(f"the edge config schema uses {key!r}, which the validator ignores")


def load_schema() -> dict[str, Any]:
    text = resources.files(__package__ or "cloud_sync.configs").joinpath(SCHEMA_FILE).read_text()
    doc: dict[str, Any] = json.loads(text)
    return doc


@lru_cache(maxsize=1)
def edge_validator() -> SchemaValidator:
    """The validator of the shipped edge config schema (loaded once)."""
    return SchemaValidator(load_schema())
