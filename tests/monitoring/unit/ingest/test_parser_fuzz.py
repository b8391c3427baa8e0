"""The connection-log parser, fuzzed: whatever a log group holds (any text, any JSON, records with any
value in any field, events of any shape), ``parse_events`` never raises, every event is either parsed
or counted as a bad line, and every text it keeps is printable and at most ``MAX_FIELD_CHARS`` long.

Each property runs 1,000 examples; no example database is written (``database=None``).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cvpn_shared.monitoring.attempts import MAX_FIELD_CHARS, ConnectionAttempt, bounded_text, parse_events
from tests.fixtures.connection_logs import failed_record, successful_record

FUZZ = settings(max_examples=1000, deadline=None, database=None)

KNOWN_FIELDS = [*successful_record(), "connection-duration-seconds", "posture-compliance-statuses"]
IDENTIFYING = ("connection-log-type", "connection-id", "client-vpn-endpoint-id")
TEXT_ATTRIBUTES = (
    "event_id",
    "endpoint_id",
    "connection_id",
    "log_type",
    "status",
    "failure_reason",
    "device_ip",
    "username",
    "common_name",
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
# Text as a hostile writer would type it: line breaks, controls, overrides, surrogates, and long runs
# of them (built by repetition: drawing hundreds of characters one by one makes the examples slow).
# Up to 600 pieces is past MAX_FIELD_CHARS raw and escaped alike (an escape is up to ten characters);
# longer runs test nothing more and cost milliseconds of escaping each.
hostile_text = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda head, piece, times: head + piece * times,
        st.text(max_size=10),
        st.sampled_from(["\n", "\r\n", "\x00", "\x1b[2J", "\u202e", "\u2028", "\ud800", "é", "😀", "a"]),
        st.integers(0, 600),
    ),
)


def events_of(messages: list[Any]) -> list[dict[str, Any]]:
    return [
        {"eventId": f"e{i}", "timestamp": 1_700_000_000_000 + i, "message": m} for i, m in enumerate(messages)
    ]


def check(events: list[Any]) -> tuple[list[ConnectionAttempt], int]:
    """Parse ``events`` and check what every parse must hold; answer the attempts and bad lines."""
    attempts, stats = parse_events(events)
    assert stats.parsed == len(attempts)
    assert stats.parsed + stats.bad_lines == len(events)
    assert stats.bad_lines == stats.not_json + stats.not_object + stats.missing_fields
    for attempt in attempts:
        for name in TEXT_ATTRIBUTES:
            value = getattr(attempt, name)
            if name == "event_id" or value is None:
                continue
            assert isinstance(value, str) and value.isprintable() and len(value) <= MAX_FIELD_CHARS, name
        assert attempt.endpoint_id and attempt.connection_id and attempt.log_type
    return attempts, stats.bad_lines


@FUZZ
@given(st.lists(st.text(max_size=100), max_size=4))
def test_any_line_of_text_parses_or_counts_as_bad(lines: list[str]) -> None:
    check(events_of(lines))


@FUZZ
@given(st.lists(json_values, max_size=4))
def test_any_json_parses_or_counts_as_bad(values: list[Any]) -> None:
    """JSON that is not an object (arrays, strings, numbers, null) is a bad line, every time."""
    _, bad = check(events_of([json.dumps(value) for value in values]))
    not_objects = sum(1 for value in values if not isinstance(value, dict))
    assert bad >= not_objects


@FUZZ
# Up to six fields overridden at once: each is still any field, and a larger record multiplies the
# draws of every example without reaching a path of the parser that six do not.
@given(st.dictionaries(st.sampled_from(KNOWN_FIELDS), json_values | hostile_text, max_size=6))
def test_a_record_with_any_value_in_any_field_never_breaks_the_batch(fields: dict[str, Any]) -> None:
    """A record overriding any fields of a genuine one with any JSON or hostile text: it is parsed
    exactly when its three identifying fields are non-empty text, and a good line beside it still is."""
    record = {**failed_record(), **fields}
    attempts, bad = check(events_of([json.dumps(record), json.dumps(successful_record())]))
    identified = all(isinstance(record[name], str) and record[name] for name in IDENTIFYING)
    assert (len(attempts), bad) == ((2, 0) if identified else (1, 1))
    assert attempts[-1].username == "joe"


@FUZZ
@given(hostile_text, hostile_text)
def test_hostile_names_are_kept_bounded_and_distinct(username: str, common_name: str) -> None:
    """The user name and common name a login typed come out as ``bounded_text`` makes them: printable,
    bounded, and two different long names stay two names."""
    record = failed_record(username=username, **{"common-name": common_name})
    (attempt,), bad = check(events_of([json.dumps(record)]))
    assert bad == 0
    for typed, kept in ((username, attempt.username), (common_name, attempt.common_name)):
        assert kept is None if typed in ("", "NA") else kept == bounded_text(typed)
    if username and common_name and username != common_name and username != "NA" != common_name:
        assert attempt.username != attempt.common_name


@FUZZ
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["eventId", "timestamp", "message", "logStreamName"]),
            json_values | hostile_text,
            max_size=4,
        ),
        max_size=3,
    )
)
def test_events_of_any_shape_are_counted_not_raised(events: list[dict[str, Any]]) -> None:
    """An event without a text message or an integer timestamp is a bad line."""
    check(events)
