"""The config editor's pure half: the edge's JSON schema as a form, values, validation, diffs.

No Qt here: :mod:`console.ui.config_editor` turns a :class:`GroupSpec` into widgets and asks this
module what a text means, whether it is valid, and what changed. Paths are dotted
(``camera.freshness_target_ms``), the same as in the edge's 422 ``errors[].path``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["int", "number", "bool", "enum", "string", "secret", "list", "table"]

#: What the edge sends instead of a secret; sending it back keeps the secret.
MASK = "***"


class FieldValueError(ValueError):
    """A field's text or value is not acceptable; the message is for people."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One leaf of the config: how to edit it and what it accepts."""

    path: str
    title: str
    kind: Kind
    description: str = ""
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    choices: tuple[Any, ...] = ()  # enum values as the schema gives them (str, int, ...)
    item_kind: Literal["string", "int", "number"] = "string"
    apply: str = ""
    default: Any = None
    # A list of objects (``kind == "table"``): one column per leaf of the item, with paths
    # relative to the item (``unit``, ``map.coil_base``).
    columns: tuple[FieldSpec, ...] = ()

    @property
    def restarts(self) -> str | None:
        """The component an edit restarts (``camera`` for ``x-apply: restart:camera``)."""
        if self.apply.startswith("restart:"):
            return self.apply.partition(":")[2] or "component"
        return None

    @property
    def editable(self) -> bool:
        """False for keys only the device's own config file may change (``restart:process``:
        the API refuses them, e.g. ``data_dir``, ``http.listen``)."""
        return self.restarts != "process"

    @property
    def badge(self) -> str:
        """Short text shown beside the field: ``restarts camera``, ``set on the device``."""
        if not self.editable:
            return "set on the device"
        component = self.restarts
        return f"restarts {component}" if component else ""

    @property
    def tooltip(self) -> str:
        parts = [self.description] if self.description else []
        bounds = describe_bounds(self)
        if bounds:
            parts.append(bounds)
        if not self.editable:
            parts.append("Only the device's config file changes it (the edge then restarts).")
        elif self.badge:
            parts.append(f"Changing it {self.badge}.")
        return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """An object of the schema: a group box in the form."""

    path: str
    title: str
    description: str = ""
    children: tuple[FieldSpec | GroupSpec, ...] = field(default=())

    def leaves(self) -> Iterator[FieldSpec]:
        for child in self.children:
            if isinstance(child, GroupSpec):
                yield from child.leaves()
            else:
                yield child


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.path}: {format_value(self.old)} → {format_value(self.new)}"


# ---------------------------------------------------------------- schema → form
def form_from_schema(schema: Mapping[str, Any]) -> GroupSpec:
    """The form of a pydantic JSON schema (``$defs``/``$ref``, ``anyOf`` with null)."""
    defs: Mapping[str, Any] = schema.get("$defs", {})
    return _group("", schema, defs, title=str(schema.get("title", "")))


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """``node`` with any ``$ref`` (or single ``allOf``) merged in; siblings win."""
    merged: dict[str, Any] = dict(node)
    ref = merged.pop("$ref", None)
    all_of = merged.get("allOf")
    if ref is None and isinstance(all_of, list) and len(all_of) == 1:
        merged.pop("allOf")
        ref = all_of[0].get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = dict(_resolve(defs[ref.removeprefix("#/$defs/")], defs))
        target.update(merged)
        return target
    return merged


def _group(path: str, node: Mapping[str, Any], defs: Mapping[str, Any], title: str) -> GroupSpec:
    children: list[FieldSpec | GroupSpec] = []
    for name, raw in node.get("properties", {}).items():
        child_path = f"{path}.{name}" if path else name
        prop = _resolve(raw, defs)
        child_title = _title(name)
        if prop.get("type") == "object" and "properties" in prop:
            children.append(_group(child_path, prop, defs, child_title))
        else:
            children.append(_field(child_path, child_title, prop, defs))
    return GroupSpec(path, title, str(node.get("description", "")), tuple(children))


_UNITS = (
    ("_per_s", "/s"), ("_ms", "ms"), ("_s", "s"), ("_mb", "MiB"),
    ("_c", "°C"),
)  # fmt: skip


def _title(name: str) -> str:
    """``freshness_target_ms`` → ``Freshness target (ms)``: the unit out of the name."""
    for suffix, unit in _UNITS:
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"{_title(name.removesuffix(suffix))} ({unit})"
    return name.replace("_", " ").capitalize()


def _field(path: str, title: str, prop: dict[str, Any], defs: Mapping[str, Any]) -> FieldSpec:
    nullable = False
    body = prop
    any_of = prop.get("anyOf")
    if isinstance(any_of, list):
        options = [_resolve(o, defs) for o in any_of]
        non_null = [o for o in options if o.get("type") != "null"]
        nullable = len(non_null) < len(options)
        body = {
            **(non_null[0] if non_null else {}),
            **{k: v for k, v in prop.items() if k != "anyOf"},
        }
    kind = _kind(body)
    items = _resolve(body.get("items", {}), defs)
    columns: tuple[FieldSpec, ...] = ()
    if kind == "list" and items.get("type") == "object" and "properties" in items:
        kind = "table"  # a list of objects (lock boards): a table, one column per leaf
        columns = tuple(_group("", items, defs, "").leaves())
    # A tuple (pydantic's ``tuple[float, ...]`` of fixed length) has ``prefixItems`` instead:
    # one kind when every position has the same type.
    prefix = [_resolve(p, defs).get("type") for p in body.get("prefixItems", ())]
    item_type = items.get("type") if not prefix or len(set(prefix)) != 1 else prefix[0]
    item_kind: Literal["string", "int", "number"] = "string"
    if item_type == "integer":
        item_kind = "int"
    elif item_type == "number":
        item_kind = "number"
    return FieldSpec(
        path=path,
        title=title,
        kind=kind,
        description=str(body.get("description", "")),
        nullable=nullable,
        minimum=_num(body.get("minimum")),
        maximum=_num(body.get("maximum")),
        exclusive_minimum=_num(body.get("exclusiveMinimum")),
        exclusive_maximum=_num(body.get("exclusiveMaximum")),
        min_length=body.get("minLength"),
        max_length=body.get("maxLength"),
        choices=tuple(body.get("enum", ())),
        item_kind=item_kind,
        apply=str(body.get("x-apply", "")),
        default=body.get("default"),
        columns=columns,
    )


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _kind(body: Mapping[str, Any]) -> Kind:
    if "enum" in body:
        return "enum"
    kind = body.get("type")
    if kind == "integer":
        return "int"
    if kind == "number":
        return "number"
    if kind == "boolean":
        return "bool"
    if kind == "array":
        return "list"
    if body.get("format") == "password" or body.get("writeOnly"):
        return "secret"
    return "string"


def describe_bounds(spec: FieldSpec) -> str:
    """``100 … 60000``, ``> 0``, ``≤ 64 characters``: for tooltips and error messages."""
    low = (
        f"> {_fmt(spec.exclusive_minimum)}"
        if spec.exclusive_minimum is not None
        else (f"≥ {_fmt(spec.minimum)}" if spec.minimum is not None else "")
    )
    high = (
        f"< {_fmt(spec.exclusive_maximum)}"
        if spec.exclusive_maximum is not None
        else (f"≤ {_fmt(spec.maximum)}" if spec.maximum is not None else "")
    )
    if low and high:
        return f"{low} and {high}"
    if spec.max_length is not None:
        return f"at most {spec.max_length} characters"
    return low or high


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


# ---------------------------------------------------------------- values
def set_path(target: dict[str, Any], path: str, value: Any) -> None:
    """``target[a][b] = value`` for ``path`` ``a.b`` (missing objects made on the way)."""
    *parents, leaf = path.split(".")
    node = target
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def cell_text(spec: FieldSpec, value: Any) -> str:
    """How a table cell shows ``value``."""
    if value is None:
        return ""
    if spec.kind == "bool":
        return "yes" if value else "no"
    return text_of(spec, value)


def parse_cell(spec: FieldSpec, text: str) -> Any:
    """A table cell's text as the column's value; :class:`FieldValueError` when unacceptable."""
    stripped = text.strip()
    if spec.kind == "bool":
        low = stripped.lower()
        if low in ("yes", "true", "1", "on"):
            return True
        if low in ("no", "false", "0", "off"):
            return False
        raise FieldValueError(f"{text!r}: write yes or no")
    if spec.kind == "enum":
        for choice in spec.choices:
            if str(choice) == stripped:
                return choice
        raise FieldValueError(f"must be one of {', '.join(str(c) for c in spec.choices)}")
    if spec.kind in ("int", "number") and not stripped and spec.default is not None:
        return spec.default
    return parse_text(spec, text)


def get_path(config: Mapping[str, Any], path: str) -> Any:
    node: Any = config
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def format_value(value: Any) -> str:
    """How a value reads in the form and in a diff."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


def text_of(spec: FieldSpec, value: Any) -> str:
    """The line-edit text for a value of a string, secret or list field."""
    if value is None:
        return ""
    if spec.kind == "list" and isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def parse_text(spec: FieldSpec, text: str) -> Any:
    """The value a line edit's text stands for (strings, secrets, lists); validated."""
    stripped = text.strip()
    if spec.kind == "list":
        if not stripped:
            value: Any = None if spec.nullable else []
        else:
            items = [part.strip() for part in stripped.split(",")]
            if any(not item for item in items):
                raise FieldValueError("empty item in the list (two commas in a row?)")
            value = [_parse_item(spec, item) for item in items]
    elif spec.kind in ("string", "secret"):
        value = None if (spec.nullable and not text) else text
    elif spec.kind in ("int", "number"):
        value = _parse_number(spec, stripped)
    else:
        value = text
    validate(spec, value)
    return value


def _parse_number(spec: FieldSpec, text: str) -> int | float | None:
    if not text and spec.nullable:
        return None
    try:
        number = float(text)
    except ValueError as err:
        raise FieldValueError(f"{text!r} is not a number") from err
    if spec.kind == "int":
        if not number.is_integer():
            raise FieldValueError(f"{text!r} is not a whole number")
        return int(number)
    return number


def _parse_item(spec: FieldSpec, item: str) -> Any:
    if spec.item_kind == "string":
        return item
    try:
        return int(item) if spec.item_kind == "int" else float(item)
    except ValueError as err:
        raise FieldValueError(f"{item!r} is not a number") from err


def validate(spec: FieldSpec, value: Any) -> None:
    """Raise :class:`FieldValueError` when ``value`` breaks the schema's rules for ``spec``."""
    if value is None:
        if spec.nullable:
            return
        raise FieldValueError("a value is required")
    if spec.kind in ("int", "number"):
        _validate_number(spec, value)
    elif spec.kind == "enum":
        if not any(_same(value, choice) for choice in spec.choices):
            raise FieldValueError(f"must be one of {', '.join(str(c) for c in spec.choices)}")
    elif spec.kind in ("string", "secret"):
        if not isinstance(value, str):
            raise FieldValueError("must be text")
        if spec.kind == "secret" and value == MASK:
            return
        if spec.min_length is not None and len(value) < spec.min_length:
            raise FieldValueError(
                "must not be empty"
                if spec.min_length == 1
                else f"needs at least {spec.min_length} characters"
            )
        if spec.max_length is not None and len(value) > spec.max_length:
            raise FieldValueError(f"at most {spec.max_length} characters")
    elif spec.kind == "bool" and not isinstance(value, bool):
        raise FieldValueError("must be yes or no")


def _validate_number(spec: FieldSpec, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise FieldValueError("must be a number")
    if spec.kind == "int" and isinstance(value, float) and not value.is_integer():
        raise FieldValueError("must be a whole number")
    broken = (
        (spec.minimum is not None and value < spec.minimum)
        or (spec.maximum is not None and value > spec.maximum)
        or (spec.exclusive_minimum is not None and value <= spec.exclusive_minimum)
        or (spec.exclusive_maximum is not None and value >= spec.exclusive_maximum)
    )
    if broken:
        raise FieldValueError(f"must be {describe_bounds(spec)}")


# ---------------------------------------------------------------- diff and patch
def diff(
    old: Mapping[str, Any], new_values: Mapping[str, Any], specs: Sequence[FieldSpec]
) -> list[Change]:
    """The fields whose edited value differs from ``old`` (the edge's current config).

    A secret left as the mask is no change. Numbers compare by value (``5`` equals ``5.0``).
    """
    changes = []
    for spec in specs:
        if spec.path not in new_values:
            continue
        before, after = get_path(old, spec.path), new_values[spec.path]
        if spec.kind == "secret" and after == MASK:
            continue
        if not _same(before, after):
            changes.append(Change(spec.path, before, after))
    return changes


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def merge_patch(changes: Sequence[Change]) -> dict[str, Any]:
    """An RFC 7396 merge patch setting each changed path (``None`` clears: JSON null)."""
    patch: dict[str, Any] = {}
    for change in changes:
        *parents, leaf = change.path.split(".")
        node = patch
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = change.new
    return patch


def errors_by_path(errors: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The edge's 422 ``errors`` as ``{dotted path: reason}`` (several reasons joined)."""
    found: dict[str, str] = {}
    for error in errors:
        path = str(error.get("path", "")) or "(root)"
        reason = str(error.get("reason", error.get("message", "invalid")))
        found[path] = f"{found[path]}; {reason}" if path in found else reason
    return found


def nearest_field(path: str, known: Sequence[str], reason: str = "") -> str | None:
    """The form field an error path belongs to: itself, or its longest known prefix (a cell of
    a table); for a group's path, the child the ``reason`` names (``exit_fraction must be
    below enter_fraction`` → ``….exit_fraction``), else None: the group itself shows it."""
    if path in known:
        return path
    best = None
    for candidate in known:
        if path.startswith(candidate + ".") and (best is None or len(candidate) > len(best)):
            best = candidate
    if best is None and reason:
        children = [k for k in known if k.startswith(path + ".")]
        named = [
            k for k in children
            if re.search(rf"\b{re.escape(k.rpartition('.')[2])}\b", reason)
        ]  # fmt: skip
        if named:
            named.sort(key=lambda k: reason.find(k.rpartition(".")[2]))
            best = named[0]
    return best


def group_of(path: str, groups: Sequence[str]) -> str | None:
    """The group box an error path belongs to (the longest group path it is in or equals)."""
    found = [g for g in groups if path == g or path.startswith(g + ".")]
    return max(found, key=len) if found else None
