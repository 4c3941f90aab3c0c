"""What the carts page shows, as plain data: a cart tile's state, its buttons, its texts.

Qt-free (like :mod:`console.models.plate_rows`): :class:`console.presenters.carts.CartsPresenter`
keeps one :class:`CartTile` per cart and one :class:`CartSection` per device and changes them;
:mod:`console.ui.carts` paints them. The rules of when Unlock and Lock make sense, and the
sentences for the edge's error codes, live here and are tested without a window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from fleet_common.wire.edge import CartInfo

Action = Literal["unlock", "lock"]
CommandPhase = Literal["idle", "running", "done", "failed"]

# The error code the presenter uses for a key whose role is too low (the edge answers 403).
OPERATOR_KEY_NEEDED: Final = "operator_key_needed"
# ... and for no key, or one the edge does not know (401).
API_KEY_NEEDED: Final = "api_key_needed"
UNREACHABLE: Final = "unreachable"

STATE_LABELS: Final = {
    "locked": "Locked",
    "unlocked": "Unlocked",
    "in_use": "In use",
    "returned": "Returned",
    "missing": "Missing",
    "fault": "Fault",
    "unknown": "Unknown",
}

# Per edge error code: what it means for the person at the desk (the edge's own message is
# added in brackets: it names the cart and the detail).
_ERROR_TEXTS: Final = {
    "board_down": "Its lock board is not answering; nothing was moved.",
    "board_timeout": "The lock board did not answer in time.",
    "crc_error": "The lock board's answers were garbled (wiring or noise on the bus).",
    "bus_error": "The RS485 adapter of the edge failed.",
    "invalid_state": "The cart cannot do that now.",
    "request_id_reused": "The edge refused the request id (sent twice for different carts).",
    "unknown_cart": "The edge does not know this cart (its lock boards changed?).",
    "locks_disabled": "This edge no longer drives lock boards.",
    API_KEY_NEEDED: "No API key for this device, or the edge refused it. Enter a key in the"
    " device's settings.",
    UNREACHABLE: "The device did not answer.",
}


def operator_key_text(action: Action) -> str:
    verb = "Unlocking" if action == "unlock" else "Locking"
    return (
        f"{verb} a cart needs an operator key: the key stored for this device is a viewer"
        " key. Enter an operator key in the device's settings."
    )


def not_confirmed_text(action: Action) -> str:
    if action == "unlock":
        return "The bolt sensor did not show the lock open in time; the unlock was taken back."
    return "The bolt sensor did not show the lock closed in time."


def command_error_text(action: Action, code: str, message: str = "") -> str:
    """The sentence a tile shows for a failed command, from the edge's error ``code``."""
    if code == OPERATOR_KEY_NEEDED:
        return operator_key_text(action)
    if code == "not_confirmed":
        text = not_confirmed_text(action)
    else:
        text = _ERROR_TEXTS.get(code, "The command failed.")
    return f"{text} ({message})" if message else text


@dataclass
class Command:
    """The last command of one cart, as far as the console knows it."""

    action: Action
    request_id: str
    phase: CommandPhase = "running"
    code: str = ""  # the error code when failed
    text: str = ""  # the confirmed result or the error, for the tile
    finished_at: datetime | None = None


@dataclass
class CartTile:
    """One cart: the edge's view of it and the console's last command for it."""

    info: CartInfo
    command: Command | None = None

    @property
    def running(self) -> bool:
        return self.command is not None and self.command.phase == "running"


@dataclass
class CartSection:
    """One device's carts. ``enabled`` is None until the edge first answered."""

    device_key: str
    name: str
    enabled: bool | None = None
    carts: dict[int, CartTile] = field(default_factory=dict)
    boards_down: list[int] = field(default_factory=list)
    reachable: bool = True
    problem: str = ""  # why the carts are not current (unreachable, no key), else ""
    read_only: str = ""  # why commands cannot be sent (a viewer key), else ""

    def tile(self, cart_id: int) -> CartTile | None:
        return self.carts.get(cart_id)


def board_down(section: CartSection, tile: CartTile) -> bool:
    return tile.info.board in section.boards_down or tile.info.state == "unknown"


def can_unlock(section: CartSection, tile: CartTile) -> bool:
    """Unlock makes sense for a locked cart standing in its bay, on a board that answers, with
    no command running, on a current view (reachable), with a key that may command."""
    return (
        _commandable(section, tile)
        and tile.info.state == "locked"
        and tile.info.cart_present is not False
    )


def can_lock(section: CartSection, tile: CartTile) -> bool:
    """Lock makes sense for a released cart (taken or not) and to clear a fault."""
    return _commandable(section, tile) and tile.info.state in ("unlocked", "in_use", "fault")


def _commandable(section: CartSection, tile: CartTile) -> bool:
    return (
        section.reachable
        and not section.problem
        and not section.read_only
        and not tile.running
        and not board_down(section, tile)
    )


def sensors_text(info: CartInfo) -> str:
    """E.g. "cart present · bolt closed"; "sensors unknown" while the board is silent."""
    parts = []
    if info.cart_present is not None:
        parts.append("cart present" if info.cart_present else "bay empty")
    if info.bolt_closed is not None:
        parts.append("bolt closed" if info.bolt_closed else "bolt open")
    return " · ".join(parts) if parts else "sensors unknown"


def since_text(changed_at: str, now: datetime | None = None) -> str:
    """ "since 14:03:21" (local time) for an RFC 3339 ``changed_at``; with the date when it is
    not today."""
    try:
        when = datetime.fromisoformat(changed_at).astimezone()
    except ValueError:
        return ""
    today = (now or datetime.now().astimezone()).date()
    if when.date() == today:
        return f"since {when:%H:%M:%S}"
    return f"since {when:%d %b %H:%M}"


def running_text(action: Action) -> str:
    return "Unlocking…" if action == "unlock" else "Locking…"


def done_text(action: Action, state: str, at: datetime) -> str:
    label = STATE_LABELS.get(state, state).lower()
    verb = "Unlock" if action == "unlock" else "Lock"
    return f"{verb} confirmed: {label} at {at:%H:%M:%S}"


# ---------------------------------------------------------------------- the wall tile's summary
SummaryKind = Literal["free", "out", "missing", "fault", "unknown"]
# Which cart states each part of the summary counts; the colour of a part is that of its first
# state on the carts page (console.ui.carts.STATE_COLOURS). "free" is further narrowed by
# :func:`summary_kind`: a locked cart counts free only while its cart-present switch says so.
SUMMARY_STATES: Final[dict[SummaryKind, tuple[str, ...]]] = {
    "free": ("locked",),
    "out": ("in_use", "unlocked", "returned"),
    "missing": ("missing",),
    "fault": ("fault",),
    "unknown": ("unknown",),
}


def summary_kind(info: CartInfo) -> SummaryKind:
    """Where ``info`` counts in the summary. Only a locked cart the edge sees standing in its
    bay (cart_present true) is free; a locked bay the switch calls empty counts missing, one
    with the switch unknown counts unknown; a state this console does not know yet (a newer
    edge) counts unknown, never free."""
    state = str(info.state)
    if state == "locked":
        if info.cart_present is True:
            return "free"
        return "missing" if info.cart_present is False else "unknown"
    for kind, states in SUMMARY_STATES.items():
        if state in states:
            return kind
    return "unknown"


@dataclass(frozen=True, slots=True)
class CartSummary:
    """A device's carts in four numbers, for its wall tile: "Carts 3 free · 2 out · 1 fault".

    ``current`` is False while the carts page's view of the device is not current (unreachable,
    no key): the numbers are the last known ones and the tile shows them greyed.
    """

    free: int = 0
    out: int = 0
    fault: int = 0
    unknown: int = 0  # on a lock board that does not answer, or in a state not known here
    current: bool = True
    missing: int = 0  # gone from a locked bay nobody unlocked

    def parts(self) -> list[tuple[SummaryKind, str]]:
        """The non-zero parts (free always, even at 0: "0 free" is the news), in order."""
        counts: dict[SummaryKind, int] = {
            "free": self.free, "out": self.out, "missing": self.missing, "fault": self.fault,
            "unknown": self.unknown,
        }  # fmt: skip
        return [(k, f"{n} {k}") for k, n in counts.items() if n or k == "free"]

    @property
    def text(self) -> str:
        return "Carts " + " · ".join(text for _kind, text in self.parts())


def cart_summary(section: CartSection | None) -> CartSummary | None:
    """The summary of ``section``; None for a device without lock boards (or not yet known):
    its tile shows nothing about carts."""
    if section is None or not section.enabled or not section.carts:
        return None
    counts: dict[SummaryKind, int] = dict.fromkeys(SUMMARY_STATES, 0)
    for tile in section.carts.values():
        if board_down(section, tile):
            counts["unknown"] += 1
            continue
        counts[summary_kind(tile.info)] += 1
    current = section.reachable and not section.problem
    return CartSummary(current=current, **counts)
