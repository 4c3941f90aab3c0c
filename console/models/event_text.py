"""Edge events as sentences for people (the device page's "Recent events"): "Cart 8 locked
(was in use)", not "cart: cart=8, state=locked, previous=un...". Qt-free."""

from __future__ import annotations

from typing import Any

_CART_STATES = {
    "locked": "locked", "unlocked": "unlocked", "in_use": "in use", "returned": "returned",
    "fault": "in fault", "unknown": "unknown", "missing": "missing from its bay",
}  # fmt: skip
_STREAM = {
    "online": "Camera stream online",
    "degraded": "Camera stream degraded",
    "offline": "Camera stream offline",
}


def describe_event(kind: str, payload: dict[str, Any]) -> str:
    """One line for an event of ``kind`` with ``payload``; unknown kinds still read as text."""
    try:
        text = _describe(kind, payload)
    except (KeyError, TypeError, ValueError):
        text = None
    return text if text else _generic(kind, payload)


def _describe(kind: str, p: dict[str, Any]) -> str | None:
    if kind == "cart":
        state = _CART_STATES.get(str(p.get("state")), str(p.get("state")))
        previous = p.get("previous")
        text = f"Cart {p['cart']} {state}"
        if p.get("change") == "sensors":
            parts = []
            if p.get("cart_present") is not None:
                parts.append("cart present" if p["cart_present"] else "bay empty")
            if p.get("bolt_closed") is not None:
                parts.append("bolt closed" if p["bolt_closed"] else "bolt open")
            return f"Cart {p['cart']}: " + (", ".join(parts) or "sensors changed")
        if previous and previous != p.get("state"):
            text += f" (was {_CART_STATES.get(str(previous), str(previous))})"
        if p.get("detail"):
            text += f": {p['detail']}"
        return text
    if kind == "alert":
        message = str(p.get("message") or p.get("code") or "alert")
        if p.get("active", True):
            severity = str(p.get("severity", "warning"))
            return f"{'Critical' if severity == 'critical' else 'Warning'}: {message}"
        return f"Cleared: {message}"
    if kind == "stream":
        text = _STREAM.get(str(p.get("status")), f"Camera stream {p.get('status')}")
        return f"{text}: {p['detail']}" if p.get("detail") else text
    if kind == "config":
        action = str(p.get("action", "applied")).replace("_", " ")
        text = f"Config version {p['version']} {action}"
        if p.get("restarted"):
            text += f", restarted {', '.join(str(c) for c in p['restarted'])}"
        if p.get("reason"):
            text += f" ({p['reason']})"
        return text
    if kind == "plate.read":
        plate = p.get("plate") or p.get("text")
        member = p.get("member")
        return f"Plate {plate} read" + (" (member)" if member else "")
    return None


def _generic(kind: str, payload: dict[str, Any]) -> str:
    parts = [f"{k.replace('_', ' ')} {v}" for k, v in payload.items() if v not in (None, "", [])]
    return f"{kind.replace('_', ' ').capitalize()}: {', '.join(parts)}" if parts else kind
