"""A pure, incremental parser of Server-Sent Events (the WHATWG ``text/event-stream`` format).

Text arrives in chunks cut anywhere, even between the CR and LF of one line break;
:meth:`SseParser.feed` returns the messages completed so far and keeps the rest. Lines end with
CRLF, LF or CR. ``: comment`` lines (the edge's keepalives) are skipped; ``data`` lines join with
``\\n``; ``id`` sets the last event id even on a message without data, which is then not
dispatched; ``retry`` (digits only) sets :attr:`SseParser.retry_ms`. A line or message longer
than :data:`MAX_MESSAGE_CHARS` raises ``ValueError`` (memory stays bounded). No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_MESSAGE_CHARS = 1 << 20  # a line or a message this long is not an event stream: refuse it


@dataclass(frozen=True, slots=True)
class SseMessage:
    id: str | None  # the last event id when the message was dispatched (None: never set)
    event: str  # "message" unless the server named it
    data: str


class SseParser:
    """Feed text as it arrives; get whole messages back."""

    __slots__ = (
        "_buffer", "_data", "_data_chars", "_event", "_pending_cr", "_started", "last_id",
        "retry_ms",
    )  # fmt: skip

    def __init__(self) -> None:
        self._buffer = ""  # an unfinished line
        self._pending_cr = False  # the last chunk ended with CR: skip an LF that starts the next
        self._started = False  # a BOM is stripped only at the very start of the stream
        self._data: list[str] = []
        self._data_chars = 0
        self._event = ""
        self.last_id: str | None = None
        self.retry_ms: int | None = None

    def feed(self, text: str) -> list[SseMessage]:
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._pending_cr and text:
            self._pending_cr = False
            if text[0] == "\n":
                text = text[1:]
        messages: list[SseMessage] = []
        start = 0
        end = len(text)
        while start < end:
            cr = text.find("\r", start)
            lf = text.find("\n", start)
            if cr < 0 and lf < 0:
                break
            brk = lf if cr < 0 else cr if lf < 0 else min(cr, lf)
            line = self._buffer + text[start:brk]
            self._buffer = ""
            if text[brk] == "\r":
                if brk + 1 == end:
                    self._pending_cr = True
                    start = end
                else:
                    start = brk + 2 if text[brk + 1] == "\n" else brk + 1
            else:
                start = brk + 1
            message = self._line(line)
            if message is not None:
                messages.append(message)
        self._buffer += text[start:]
        if len(self._buffer) > MAX_MESSAGE_CHARS:
            raise ValueError(f"SSE line longer than {MAX_MESSAGE_CHARS} characters")
        return messages

    def _line(self, line: str) -> SseMessage | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None  # comment (keepalive)
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_chars += len(value) + 1
            if self._data_chars > MAX_MESSAGE_CHARS:
                raise ValueError(f"SSE message longer than {MAX_MESSAGE_CHARS} characters")
        elif name == "event":
            self._event = value
        elif name == "id" and "\x00" not in value:
            self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        # Any other field name is ignored, as the standard says.
        return None

    def _dispatch(self) -> SseMessage | None:
        data, event = self._data, self._event
        self._data, self._event, self._data_chars = [], "", 0
        if not data:
            return None
        return SseMessage(id=self.last_id, event=event or "message", data="\n".join(data))
