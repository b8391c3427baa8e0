"""The client-connect handler: its request, and how each kind of answer decides the attempt."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from localcloud.clientvpn.connections import (
    ClientConnectHandlerServiceError,
    ClientConnectHandlerThrottled,
    simulate_connect,
)
from localcloud.clock import Clock
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


def test_slow_handler_times_out(handler_endpoint: FakeEndpoint, clock: Clock) -> None:
    """An allow that arrives after Client VPN's 30 s wait counts as a timeout."""

    def slow(function_arn: str, request: dict[str, Any]) -> Answer:
        clock.advance(31)
        return None, b'{"allow": true}'

    result = simulate_connect(handler_endpoint, username="joe", invoke_handler=slow)
    assert result.failure_reason == "client-connect-handler-timed-out"


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
