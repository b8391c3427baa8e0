"""The client-connect handler: its request, and how each kind of answer decides the attempt."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from localcloud.clientvpn.connections import (
    ClientConnectHandlerServiceError,
    ClientConnectHandlerThrottled,
    simulate_connect,
)
from localcloud.clock import Clock, get_clock, set_clock
from tests.localcloud.connections.support import DIRECTORY, HANDLER_ARN, FakeEndpoint, read_records

Answer = tuple[str | None, bytes]


@pytest.fixture
def handler_endpoint(aws: None) -> FakeEndpoint:
    """An Active Directory endpoint whose client-connect handler is enabled."""
    return FakeEndpoint(
        authentication_options=[dict(DIRECTORY)],
        client_connect_options={"Enabled": True, "LambdaFunctionArn": HANDLER_ARN},
    )


def answering(answer: Answer, calls: list[tuple[str, dict[str, Any]]] | None = None) -> Callable[..., Answer]:
    """A fake invoke_handler that records its calls and returns ``answer``."""

    def invoke(function_arn: str, request: dict[str, Any]) -> Answer:
        if calls is not None:
            calls.append((function_arn, request))
        return answer

    return invoke


def test_allowed_connection_carries_request_fields_and_posture(handler_endpoint: FakeEndpoint) -> None:
    """The handler gets the v2 request; its allow and posture statuses reach the record and connection."""
    calls: list[tuple[str, dict[str, Any]]] = []
    answer = {"allow": True, "posture-compliance-statuses": ["compliant", "edr-ok"], "schema-version": "v2"}
    result = simulate_connect(
        handler_endpoint,
        username="joe",
        device_ip="198.51.100.9",
        device_type="windows",
        groups=["engineering", "vpn-users"],
        invoke_handler=answering((None, json.dumps(answer).encode()), calls),
    )

    assert result.connected
    [(function_arn, request)] = calls
    assert function_arn == HANDLER_ARN
    assert set(request) == {
        "connection-id",
        "endpoint-id",
        "common-name",
        "username",
        "platform",
        "platform-version",
        "public-ip",
        "client-openvpn-version",
        "groups",
        "schema-version",
    }
    assert request["connection-id"] == result.connection_id
    assert request["endpoint-id"] == handler_endpoint.id
    assert request["username"] == "joe"
    assert request["public-ip"] == "198.51.100.9"
    assert request["platform"] == "windows"
    assert request["groups"] == "engineering,vpn-users"
    assert request["schema-version"] == "v2"
    [record] = read_records()
    assert record["connection-attempt-status"] == "successful"
    assert record["posture-compliance-statuses"] == "compliant,edr-ok"
    assert result.connection is not None
    assert result.connection.to_api()["PostureComplianceStatuses"] == ["compliant", "edr-ok"]


def test_denied_connection_keeps_the_message(handler_endpoint: FakeEndpoint) -> None:
    """allow false fails the attempt with client-connect-failed; the denial message is returned."""
    answer = {
        "allow": False,
        "error-msg-on-denied-connection": "Device not compliant",
        "schema-version": "v2",
    }
    result = simulate_connect(
        handler_endpoint, username="joe", invoke_handler=answering((None, json.dumps(answer).encode()))
    )

    assert not result.connected
    assert result.failure_reason == "client-connect-failed"
    assert result.error_msg_on_denied_connection == "Device not compliant"
    [record] = read_records()
    assert record["connection-attempt-status"] == "failed"
    assert record["connection-attempt-failure-reason"] == "client-connect-failed"
    assert record["client-ip"] == "NA"
    assert handler_endpoint.connections == {}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            ("Unhandled", b'{"errorType":"KeyError","errorMessage":"x"}'),
            "client-connect-handler-other-execution-error",
        ),
        (
            (
                "Unhandled",
                b'{"errorType":"Sandbox.Timedout","errorMessage":"Task timed out after 30.00 seconds"}',
            ),
            "client-connect-handler-timed-out",
        ),
        ((None, b"not json"), "client-connect-handler-invalid-response"),
        ((None, b"[true]"), "client-connect-handler-invalid-response"),
        ((None, b"{}"), "client-connect-handler-invalid-response"),
        ((None, b'{"allow": "true"}'), "client-connect-handler-invalid-response"),
        (
            (None, json.dumps({"allow": False, "error-msg-on-denied-connection": "x" * 256}).encode()),
            "client-connect-handler-invalid-response",
        ),
        (
            (None, json.dumps({"allow": True, "posture-compliance-statuses": ["s"] * 11}).encode()),
            "client-connect-handler-invalid-response",
        ),
    ],
    ids=[
        "error",
        "timeout",
        "not-json",
        "not-object",
        "no-allow",
        "allow-not-bool",
        "long-message",
        "11-statuses",
    ],
)
def test_handler_failures_deny_with_their_reason(
    handler_endpoint: FakeEndpoint, answer: Answer, reason: str
) -> None:
    """Any handler error, timeout or malformed answer denies the connection with AWS's reason."""
    result = simulate_connect(handler_endpoint, username="joe", invoke_handler=answering(answer))

    assert not result.connected and result.failure_reason == reason
    assert read_records()[0]["connection-attempt-failure-reason"] == reason


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ClientConnectHandlerThrottled("Rate exceeded"), "client-connect-handler-throttled"),
        (ClientConnectHandlerServiceError("ResourceNotFound"), "client-connect-handler-service-error"),
    ],
)
def test_lambda_refusals_deny_with_their_reason(
    handler_endpoint: FakeEndpoint, error: Exception, reason: str
) -> None:
    """A throttled invocation or a Lambda service failure denies the connection."""

    def refuse(function_arn: str, request: dict[str, Any]) -> Answer:
        raise error

    result = simulate_connect(handler_endpoint, username="joe", invoke_handler=refuse)
    assert result.failure_reason == reason
    assert read_records()[0]["connection-attempt-failure-reason"] == reason


def test_cold_start_at_a_fast_time_scale_is_answered(handler_endpoint: FakeEndpoint) -> None:
    """Given the local cloud at time scale 120, a handler that takes a cold start's few hundred real
    milliseconds (a minute of emulated time) is still within Client VPN's 30 s: the client connects."""
    previous = get_clock()
    fast = set_clock(Clock(time_scale=120))
    try:

        def cold_start(function_arn: str, request: dict[str, Any]) -> Answer:
            time.sleep(0.5)
            return None, b'{"allow": true}'

        started = fast.timestamp()
        result = simulate_connect(handler_endpoint, username="joe", invoke_handler=cold_start)
        emulated_wait = fast.timestamp() - started
    finally:
        set_clock(previous)

    assert emulated_wait > 30
    assert result.connected and result.failure_reason is None
    assert read_records()[0]["connection-attempt-status"] == "successful"


def test_emulated_time_passing_does_not_time_the_handler_out(
    handler_endpoint: FakeEndpoint, clock: Clock
) -> None:
    """The clock advanced by minutes while the handler runs (``cvpn local clock --advance``) leaves its
    prompt answer in time: the limit counts real seconds."""

    def prompt(function_arn: str, request: dict[str, Any]) -> Answer:
        clock.advance(300)
        return None, b'{"allow": true}'

    result = simulate_connect(handler_endpoint, username="joe", invoke_handler=prompt)
    assert result.connected


def test_handler_slower_than_the_limit_in_real_seconds_is_refused(handler_endpoint: FakeEndpoint) -> None:
    """A handler still running when the limit has passed in real seconds (the emulated clock stands
    still here) refuses the client with client-connect-handler-timed-out, without waiting for it."""
    release = threading.Event()

    def hanging(function_arn: str, request: dict[str, Any]) -> Answer:
        release.wait(10)
        return None, b'{"allow": true}'

    started = time.monotonic()
    try:
        result = simulate_connect(
            handler_endpoint, username="joe", invoke_handler=hanging, handler_timeout_seconds=0.3
        )
        waited = time.monotonic() - started
    finally:
        release.set()

    assert not result.connected
    assert result.failure_reason == "client-connect-handler-timed-out"
    assert read_records()[0]["connection-attempt-failure-reason"] == "client-connect-handler-timed-out"
    assert 0.3 <= waited < 5
    assert handler_endpoint.connections == {}


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "30", True])
def test_handler_timeout_must_be_a_positive_number(handler_endpoint: FakeEndpoint, bad: Any) -> None:
    """A limit that is not a finite number of seconds above zero is refused by name."""
    with pytest.raises(ValueError, match="handler_timeout_seconds"):
        simulate_connect(
            handler_endpoint,
            username="joe",
            invoke_handler=answering((None, b'{"allow": true}')),
            handler_timeout_seconds=bad,
        )


def test_handler_is_not_asked_when_authentication_fails(handler_endpoint: FakeEndpoint) -> None:
    """The handler runs only after authentication succeeded."""
    calls: list[tuple[str, dict[str, Any]]] = []
    simulate_connect(
        handler_endpoint,
        username="joe",
        outcome="failure",
        failure_reason="bad-password",
        invoke_handler=answering((None, b'{"allow": true}'), calls),
    )
    assert calls == []
