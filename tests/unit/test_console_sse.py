"""The SSE parser and the Prometheus text reader of console.services: pure text in, values out."""

from __future__ import annotations

import math

import pytest

from console.services.promtext import metric_key, parse_metrics
from console.services.sse import SseMessage, SseParser

pytestmark = pytest.mark.unit

STREAM = (
    ": keepalive\n"
    "id: 41\n"
    "event: stream\n"
    'data: {"id":41,"kind":"stream"}\n'
    "\n"
    "id: 42\n"
    "event: plate\n"
    "data: line one\n"
    "data: line two\n"
    "\n"
)
EXPECTED = [
    SseMessage(id="41", event="stream", data='{"id":41,"kind":"stream"}'),
    SseMessage(id="42", event="plate", data="line one\nline two"),
]


def feed_all(parser: SseParser, chunks: list[str]) -> list[SseMessage]:
    out: list[SseMessage] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_whole_stream_with_each_line_ending(newline: str) -> None:
    assert SseParser().feed(STREAM.replace("\n", newline)) == EXPECTED


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_split_anywhere_gives_the_same_messages(newline: str) -> None:
    text = STREAM.replace("\n", newline)
    for cut in range(len(text) + 1):
        assert feed_all(SseParser(), [text[:cut], text[cut:]]) == EXPECTED, f"cut at {cut}"


def test_one_character_at_a_time_with_crlf() -> None:
    text = STREAM.replace("\n", "\r\n")
    assert feed_all(SseParser(), list(text)) == EXPECTED


def test_crlf_split_between_cr_and_lf_is_one_line_break() -> None:
    parser = SseParser()
    assert parser.feed("data: a\r") == []
    # The LF belongs to the CR before it: not an empty line, so nothing is dispatched yet.
    assert parser.feed("\ndata: b\r") == []
    assert parser.feed("\n\r\n") == [SseMessage(id=None, event="message", data="a\nb")]


def test_message_is_dispatched_only_at_the_blank_line() -> None:
    parser = SseParser()
    assert parser.feed("data: x\n") == []
    assert parser.feed("\n") == [SseMessage(id=None, event="message", data="x")]


def test_comments_and_keepalives_give_nothing() -> None:
    parser = SseParser()
    assert parser.feed(": keepalive\n\n:\n\n: another one\n") == []
    assert parser.last_id is None


def test_id_without_data_sets_last_id_but_dispatches_nothing() -> None:
    parser = SseParser()
    assert parser.feed("id: 7\n\n") == []
    assert parser.last_id == "7"
    # The id sticks to later messages that do not set their own.
    assert parser.feed("data: later\n\n") == [SseMessage(id="7", event="message", data="later")]


def test_event_type_resets_after_each_message_but_id_does_not() -> None:
    parser = SseParser()
    out = parser.feed("id: 1\nevent: alert\ndata: a\n\ndata: b\n\n")
    assert out == [
        SseMessage(id="1", event="alert", data="a"),
        SseMessage(id="1", event="message", data="b"),
    ]


def test_event_without_data_is_dropped_with_its_type() -> None:
    parser = SseParser()
    assert parser.feed("event: alert\n\ndata: x\n\n") == [
        SseMessage(id=None, event="message", data="x")
    ]


def test_id_with_nul_is_ignored() -> None:
    parser = SseParser()
    parser.feed("id: 5\n\nid: 6\x007\n\n")
    assert parser.last_id == "5"


@pytest.mark.parametrize(
    ("line", "expected"), [("retry: 2500", 2500), ("retry: 25x", None), ("retry:", None)]
)
def test_retry_takes_only_digits(line: str, expected: int | None) -> None:
    parser = SseParser()
    assert parser.feed(line + "\n\n") == []
    assert parser.retry_ms == expected


def test_field_value_spacing() -> None:
    # One space after the colon is removed; more are kept; no colon means an empty value.
    out = SseParser().feed("data:no-space\ndata:  two\ndata\n\n")
    assert out == [SseMessage(id=None, event="message", data="no-space\n two\n")]


def test_empty_data_line_is_still_a_message() -> None:
    assert SseParser().feed("data:\n\n") == [SseMessage(id=None, event="message", data="")]


def test_unknown_fields_are_ignored() -> None:
    assert SseParser().feed("foo: bar\ndata: x\n\n") == [
        SseMessage(id=None, event="message", data="x")
    ]


def test_bom_is_stripped_only_at_the_start() -> None:
    parser = SseParser()
    assert parser.feed("\ufeffdata: a\n\n") == [SseMessage(id=None, event="message", data="a")]
    # Later, a BOM is just a character of the field name: the line is an unknown field.
    assert parser.feed("\ufeffdata: b\n\n") == []


def test_unfinished_message_is_kept_until_completed() -> None:
    parser = SseParser()
    assert parser.feed("data: par") == []
    assert parser.feed("tial") == []
    assert parser.feed("\n\n") == [SseMessage(id=None, event="message", data="partial")]


# ---------------------------------------------------------------------- Prometheus text
METRICS = """\
# HELP carwash_edge_frame_age_seconds Age of the newest snapshot (NaN with none)
# TYPE carwash_edge_frame_age_seconds gauge
carwash_edge_frame_age_seconds 0.25
carwash_edge_temperature_celsius NaN
carwash_edge_source_errors_total{kind="timeout"} 3.0
carwash_edge_stream_state{carwash_edge_stream_state="online"} 1.0
carwash_edge_http_seconds_bucket{le="+Inf",route="/api/snapshot"} 17.0 1700000000000
odd{msg="a \\"quoted\\", {braced} \\\\ value\\nline"} -Inf
  spaced_out   42
this line is garbage
broken{label="unterminated 1.0
novalue{a="b"}
bad_value 12abc
"""


def test_parse_metrics_reads_samples_and_skips_garbage() -> None:
    got = parse_metrics(METRICS)
    assert got["carwash_edge_frame_age_seconds"] == 0.25
    assert math.isnan(got["carwash_edge_temperature_celsius"])
    assert got['carwash_edge_source_errors_total{kind="timeout"}'] == 3.0
    assert got['carwash_edge_stream_state{carwash_edge_stream_state="online"}'] == 1.0
    # The timestamp is ignored; label order is kept as sent.
    assert got['carwash_edge_http_seconds_bucket{le="+Inf",route="/api/snapshot"}'] == 17.0
    assert got[metric_key("odd", [("msg", 'a "quoted", {braced} \\ value\nline')])] == -math.inf
    assert got["spaced_out"] == 42.0
    assert len(got) == 7  # the four bad lines are skipped


def test_metric_key_round_trips_escapes() -> None:
    key = metric_key("m", [("a", 'x"y\\z\n')])
    assert key == 'm{a="x\\"y\\\\z\\n"}'
    assert parse_metrics(f"{key} 1\n") == {key: 1.0}


@pytest.mark.parametrize(("text", "value"), [("+Inf", math.inf), ("Inf", math.inf), ("1e3", 1e3)])
def test_parse_values(text: str, value: float) -> None:
    assert parse_metrics(f"m {text}\n") == {"m": value}


def test_real_prometheus_client_output_is_read_completely() -> None:
    # The edge's own registry, rendered by prometheus-client: every sample comes through.
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from edge.metrics import EdgeMetrics

    metrics = EdgeMetrics()
    metrics.source_errors.labels(kind='we"ird').inc(2)
    metrics.temperature.set(71.5)
    text = generate_latest(metrics.registry).decode()
    got = parse_metrics(text)
    reference = {
        metric_key(s.name, list(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert got.keys() == reference.keys()
    for key, value in reference.items():
        assert got[key] == value or (math.isnan(got[key]) and math.isnan(value)), key
    assert got["carwash_edge_temperature_celsius"] == 71.5
    assert got[metric_key("carwash_edge_source_errors_total", [("kind", 'we"ird')])] == 2.0


def test_endless_lines_and_messages_are_refused() -> None:
    from console.services.sse import MAX_MESSAGE_CHARS

    with pytest.raises(ValueError, match="line longer"):
        SseParser().feed("data: " + "x" * MAX_MESSAGE_CHARS)
    many_lines = ("data: " + "y" * 1000 + "\n") * (MAX_MESSAGE_CHARS // 1000 + 1)
    with pytest.raises(ValueError, match="message longer"):
        SseParser().feed(many_lines)
    # Below the limit, big messages are fine and the count starts again after each one.
    ok = SseParser()
    for _ in range(3):
        (message,) = ok.feed("data: " + "z" * (MAX_MESSAGE_CHARS // 2) + "\n\n")
        assert len(message.data) == MAX_MESSAGE_CHARS // 2
