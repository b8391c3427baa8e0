"""Parsing connection-log records: AWS samples, "NA" as None, UTC times, malformed lines counted."""

from __future__ import annotations

import copy
import gc
import json
import pickle
from datetime import UTC, datetime

import pytest

from cvpn_shared.monitoring.attempts import ConnectionAttempt, ParseStats, parse_event, parse_events
from tests.fixtures.connection_logs import AWS_SUCCESSFUL_RECORD, failed_record

TIMESTAMP_MS = 1585255035123  # 2020-03-26 20:37:15.123 UTC


def test_aws_successful_sample_parses_into_every_attribute() -> None:
    """Given the AWS documented successful record, the attempt carries its fields, times in UTC."""
    attempt = parse_event("e-1", TIMESTAMP_MS, AWS_SUCCESSFUL_RECORD)

    assert attempt is not None
    assert attempt.event_id == "e-1"
    assert attempt.timestamp == datetime(2020, 3, 26, 20, 37, 15, 123000, tzinfo=UTC)
    assert attempt.timestamp.tzinfo is UTC
    assert attempt.timestamp_ms == TIMESTAMP_MS
    assert attempt.endpoint_id == "cvpn-endpoint-aaa111bbb222ccc33"
    assert attempt.connection_id == "cvpn-connection-abc123abc123abc12"
    assert attempt.log_type == "connection-attempt"
    assert attempt.status == "successful"
    assert attempt.failure_reason is None
    assert attempt.device_ip == "98.247.202.82"
    assert attempt.username == "joe"
    assert attempt.common_name == "client1"
    assert attempt.connection_start_time == datetime(2020, 3, 26, 20, 37, 15, tzinfo=UTC)
    assert attempt.client_ip == "10.0.1.2"
    assert attempt.device_type == "mac"
    assert attempt.transport_protocol == "udp"
    assert attempt.reset_status is None
    assert attempt.extra == {}
    assert attempt.is_success and not attempt.is_failure
    assert attempt.user == "joe"
    assert attempt.attempt_key == ("cvpn-connection-abc123abc123abc12", "successful")


def test_failed_sample_turns_na_into_none() -> None:
    """Given a failed record with NA start time and client-ip, those are None and it is a failure."""
    record = failed_record(username="NA")
    attempt = parse_event("e-2", TIMESTAMP_MS, json.dumps(record))

    assert attempt is not None
    assert attempt.is_failure and not attempt.is_success
    assert attempt.failure_reason == "authentication-failed"
    assert attempt.connection_start_time is None
    assert attempt.client_ip is None
    assert attempt.username is None
    assert attempt.user == "client1"  # username, else the common name
    assert attempt.started_at == attempt.timestamp


@pytest.mark.parametrize(
    ("status", "log_type", "failure", "success"),
    [
        ("failed", "connection-attempt", True, False),
        ("successful", "connection-attempt", False, True),
        ("waiting-for-assertion", "connection-attempt", False, False),
        ("NA", "connection-attempt", False, False),
        ("failed", "connection-reset", False, False),
    ],
)
def test_only_failed_attempts_are_failures(status: str, log_type: str, failure: bool, success: bool) -> None:
    record = failed_record(**{"connection-attempt-status": status, "connection-log-type": log_type})
    attempt = parse_event("e", TIMESTAMP_MS, json.dumps(record))

    assert attempt is not None
    assert (attempt.is_failure, attempt.is_success) == (failure, success)


def test_status_na_is_none() -> None:
    record = failed_record(**{"connection-attempt-status": "NA", "connection-log-type": "connection-reset"})
    record["connection-reset-status"] = "assertion-received"
    attempt = parse_event("e", TIMESTAMP_MS, json.dumps(record))

    assert attempt is not None
    assert attempt.status is None
    assert attempt.reset_status == "assertion-received"


def test_unknown_fields_are_kept_and_volatile_counters_dropped() -> None:
    """Given fields the parser does not know (a nested policy evaluation), they land in ``extra``."""
    record = json.loads(AWS_SUCCESSFUL_RECORD)
    record["authorization-policy-evaluation"] = {"result": "deny", "reason": "device not compliant"}
    record["posture-compliance-statuses"] = "compliant"
    record["some-future-field"] = "x"
    attempt = parse_event("e", TIMESTAMP_MS, json.dumps(record))

    assert attempt is not None
    assert attempt.extra == {
        "authorization-policy-evaluation": {"result": "deny", "reason": "device not compliant"},
        "posture-compliance-statuses": "compliant",
        "some-future-field": "x",
    }
    assert "ingress-bytes" not in attempt.extra


def test_missing_optional_fields_become_none() -> None:
    record = {
        "connection-log-type": "connection-attempt",
        "connection-id": "cvpn-connection-1",
        "client-vpn-endpoint-id": "cvpn-endpoint-1",
    }
    attempt = parse_event("e", TIMESTAMP_MS, json.dumps(record))

    assert attempt is not None
    assert attempt.status is None and attempt.device_ip is None and attempt.user is None
    assert attempt.connection_start_time is None


def test_malformed_start_time_is_none_not_an_error() -> None:
    record = json.loads(AWS_SUCCESSFUL_RECORD)
    record["connection-start-time"] = "yesterday"
    attempt = parse_event("e", TIMESTAMP_MS, json.dumps(record))

    assert attempt is not None and attempt.connection_start_time is None


@pytest.mark.parametrize(
    "message",
    [
        "not json at all",
        AWS_SUCCESSFUL_RECORD[:80],  # truncated
        "[1, 2, 3]",  # JSON, not an object
        '"a string"',
        "null",
        "",
        '{"connection-log-type": "connection-attempt"}',  # no connection id nor endpoint
        '{"connection-id": 5, "client-vpn-endpoint-id": "e", "connection-log-type": "connection-attempt"}',
    ],
)
def test_bad_lines_are_none(message: str) -> None:
    assert parse_event("e", TIMESTAMP_MS, message) is None


def test_a_batch_skips_and_counts_bad_lines_without_failing() -> None:
    """Given a page with good and bad lines, the good ones parse and each bad one is counted."""
    events: list[dict[str, object]] = [
        {"eventId": "1", "timestamp": TIMESTAMP_MS, "message": AWS_SUCCESSFUL_RECORD},
        {"eventId": "2", "timestamp": TIMESTAMP_MS, "message": "garbage"},
        {"eventId": "3", "timestamp": TIMESTAMP_MS, "message": "[]"},
        {"eventId": "4", "timestamp": TIMESTAMP_MS, "message": AWS_SUCCESSFUL_RECORD[:-10]},
        {"eventId": "5", "timestamp": TIMESTAMP_MS, "message": '{"port": "1"}'},
        {"eventId": "6", "message": AWS_SUCCESSFUL_RECORD},  # no timestamp
        {"eventId": "7", "timestamp": TIMESTAMP_MS + 1, "message": json.dumps(failed_record())},
    ]
    attempts, stats = parse_events(events)

    assert [attempt.event_id for attempt in attempts] == ["1", "7"]
    assert stats == ParseStats(parsed=2, bad_lines=5, not_json=2, not_object=1, missing_fields=2)


def test_fast_construction_equals_validated_model() -> None:
    """The parser's unvalidated fast path builds the same model pydantic validation would."""
    attempt = parse_event("e", TIMESTAMP_MS, AWS_SUCCESSFUL_RECORD)
    assert attempt is not None

    validated = ConnectionAttempt.model_validate(attempt.model_dump())

    assert validated == attempt
    assert validated.model_dump() == attempt.model_dump()
    assert attempt.model_dump(mode="json")["timestamp"] == "2020-03-26T20:37:15.123000Z"
    with pytest.raises(AttributeError):
        attempt.status = "failed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        attempt[5] = "failed"  # type: ignore[index]


def test_times_are_utc_from_milliseconds() -> None:
    attempt = parse_event("e", 0, AWS_SUCCESSFUL_RECORD)
    assert attempt is not None and attempt.timestamp == datetime(1970, 1, 1, tzinfo=UTC)


def test_values_that_are_not_text_are_kept_as_json_text() -> None:
    """AWS writes strings only; a number or an object where text belongs is tolerated, as JSON text."""
    record = json.loads(AWS_SUCCESSFUL_RECORD)
    record["username"] = {"name": "joe"}
    record["device-ip"] = 42
    record["future"] = [1, 2]
    attempt = parse_event("e", TIMESTAMP_MS, json.dumps(record))

    assert attempt is not None
    assert attempt.username == '{"name": "joe"}'
    assert attempt.device_ip == "42"
    assert attempt.extra == {"future": [1, 2]}
    assert attempt.connection_start_time == datetime(2020, 3, 26, 20, 37, 15, tzinfo=UTC)
    assert attempt.timestamp_ms == TIMESTAMP_MS


def test_attempts_survive_pickle_and_copy() -> None:
    """The tuple form round-trips through pickle and copy unchanged (no validation needed)."""
    attempt = parse_event("e", TIMESTAMP_MS, AWS_SUCCESSFUL_RECORD)
    assert attempt is not None

    assert pickle.loads(pickle.dumps(attempt)) == attempt
    assert copy.deepcopy(attempt) == attempt
    assert isinstance(pickle.loads(pickle.dumps(attempt)), ConnectionAttempt)


def test_lines_are_judged_as_json_loads_judges_them() -> None:
    """Surrounding whitespace is JSON; trailing text and a byte-order mark are not (json.loads' verdict)."""
    events: list[dict[str, object]] = [
        {"eventId": "1", "timestamp": TIMESTAMP_MS, "message": f"  {AWS_SUCCESSFUL_RECORD}\n"},
        {"eventId": "2", "timestamp": TIMESTAMP_MS, "message": f"{AWS_SUCCESSFUL_RECORD} x"},
        {"eventId": "3", "timestamp": TIMESTAMP_MS, "message": f"\ufeff{AWS_SUCCESSFUL_RECORD}"},
    ]
    attempts, stats = parse_events(events)

    assert [attempt.event_id for attempt in attempts] == ["1"]
    assert attempts[0] == parse_event("1", TIMESTAMP_MS, AWS_SUCCESSFUL_RECORD)
    assert stats == ParseStats(parsed=1, bad_lines=2, not_json=2)


def test_the_garbage_collector_is_back_as_it_was_after_a_batch() -> None:
    """parse_events pauses the cyclic collector and switches it back on only if it was on."""
    events = [{"eventId": "1", "timestamp": TIMESTAMP_MS, "message": AWS_SUCCESSFUL_RECORD}]
    assert gc.isenabled()
    parse_events(events)
    assert gc.isenabled()
    gc.disable()
    try:
        parse_events(events)
        assert not gc.isenabled()
    finally:
        gc.enable()
