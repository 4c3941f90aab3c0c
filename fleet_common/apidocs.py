"""``GET /docs``: an API reference as one self-contained HTML page, made from an OpenAPI document.

Swagger UI and ReDoc load their scripts from a CDN, which leaves the page blank without
internet, and no installed package ships their assets. This page needs nothing but the server:
no script, no external style sheet, font or image. The machine-readable contract stays at
``/openapi.json``. Standard library only: the edge and the cloud both serve it.
"""

from __future__ import annotations

import html
import json
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2em}
.op{border:1px solid #ddd;border-radius:4px;margin:.7em 0;padding:.4em .8em}
.method{display:inline-block;min-width:4.5em;font-weight:bold}
.role{float:right;color:#555}
code,pre{background:#f5f5f5;padding:0 .2em}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(_type(s) for s in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(_e(json.dumps(v)) for v in schema["enum"])
    return _e(kind)


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    role = op.get("x-required-role") or "none (open)"
    parts = [
        f'<div class="op"><span class="method">{_e(method.upper())}</span>'
        f'<code>{_e(path)}</code> <span class="role">role: {_e(role)}</span>',
        f"<p>{_e(op.get('summary', ''))}</p>",
    ]
    if op.get("description"):
        parts.append(f"<p>{_e(op['description'])}</p>")
    params = op.get("parameters", [])
    if params:
        rows = "".join(
            f"<tr><td><code>{_e(p.get('name'))}</code></td><td>{_e(p.get('in'))}</td>"
            f"<td>{_type(p.get('schema', {}))}</td><td>{_e(p.get('description', ''))}</td></tr>"
            for p in params
        )
        parts.append(f"<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>"
                     f"{rows}</table>")  # fmt: skip
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        parts.append(f"<p>body ({_e(media)}): {_type(content.get('schema', {}))}</p>")
    rows = ""
    for status, response in sorted(op.get("responses", {}).items()):
        kinds = ", ".join(
            f"{_e(media)} {_type(c.get('schema', {}))}" if c.get("schema") else _e(media)
            for media, c in response.get("content", {}).items()
        )
        rows += (f"<tr><td>{_e(status)}</td><td>{_e(response.get('description', ''))}</td>"
                 f"<td>{kinds}</td></tr>")  # fmt: skip
    parts.append(f"<table><tr><th>status</th><th></th><th>body</th></tr>{rows}</table></div>")
    return "".join(parts)


def _schema(name: str, schema: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(prop)}</code></td><td>{_type(spec)}</td>"
        f"<td>{_e(spec.get('description', ''))}</td></tr>"
        for prop, spec in schema.get("properties", {}).items()
    )
    table = f"<table><tr><th>field</th><th>type</th><th></th></tr>{rows}</table>" if rows else ""
    text = _e(schema.get("description", ""))
    return f'<h3 id="schema-{_e(name)}">{_e(name)}</h3><p>{text}</p>{table}'


def docs_page(doc: dict[str, Any]) -> str:
    """The whole page: every route (method, path, role, parameters, responses), every schema."""
    info = doc.get("info", {})
    ops = [
        _operation(path, method, op)
        for path, item in sorted(doc.get("paths", {}).items())
        for method, op in item.items()
    ]
    components = doc.get("components", {}).get("schemas", {})
    schemas = [_schema(name, schema) for name, schema in sorted(components.items())]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(info.get('title', 'API'))} API</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(info.get('title', ''))} {_e(info.get('version', ''))}</h1>"
        f"<p>{_e(info.get('description', ''))}</p>"
        '<p>The machine-readable contract: <a href="/openapi.json">/openapi.json</a>.</p>'
        f"<h2>Routes</h2>{''.join(ops)}<h2>Schemas</h2>{''.join(schemas)}</body></html>"
    )
