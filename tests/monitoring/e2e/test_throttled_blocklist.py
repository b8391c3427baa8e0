"""The client-connect handler under a throttled or slow blocklist table, on the local cloud: its
lookup gives up within its time budget (about 2 s), the connection is then allowed (fail open, the
default) or refused (fail closed, ClientConnectFailMode), and the BlocklistUnavailable metric that
the template's alarm watches is emitted. DynamoDB's faults come from the local cloud's injector."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cvpn.monitoring_demo import LocalMonitoring
from localcloud.faults import get_fault_injector

BATCH_GET = "dynamodb:BatchGetItem"
BUDGET_SECONDS = 2.0
# What invoking a warm function through the local cloud's Lambda API adds to the handler's own time.
INVOKE_OVERHEAD_SECONDS = 1.0


@pytest.fixture
def handler(monitoring: LocalMonitoring) -> Iterator[tuple[Any, str]]:
    """The Lambda client and the handler's name; its fail mode and the table's faults put back after."""
    lambda_client = monitoring.cloud.client("lambda")
    name = monitoring.stack.outputs["ClientConnectFunctionArn"]
    variables = environment(lambda_client, name)
    monitoring.warm_client_connect_handler()
    try:
        yield lambda_client, name
    finally:
        get_fault_injector().configure(
            BATCH_GET, throttle_rate=0.0, latency_seconds=0.0, unprocessed_keys_rate=0.0
        )
        lambda_client.update_function_configuration(FunctionName=name, Environment={"Variables": variables})


def environment(lambda_client: Any, name: str) -> dict[str, str]:
    variables = lambda_client.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    return {key: str(value) for key, value in variables.items()}


def fail_mode(lambda_client: Any, name: str, mode: str) -> None:
    variables = environment(lambda_client, name)
    lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {**variables, "CLIENT_CONNECT_FAIL_MODE": mode}}
    )


def ask(
    lambda_client: Any, name: str, monitoring: LocalMonitoring, user: str, address: str
) -> tuple[dict[str, Any], float]:
    """The handler's answer to one request, and how long the invocation took (wall seconds)."""
    request = {
        "connection-id": f"cvpn-connection-{user}",
        "endpoint-id": monitoring.endpoint_id,
        "common-name": "NA",
        "username": user,
        "public-ip": address,
        "schema-version": "v2",
    }
    started = time.monotonic()
    answer = lambda_client.invoke(FunctionName=name, Payload=json.dumps(request).encode())
    elapsed = time.monotonic() - started
    assert "FunctionError" not in answer
    return json.loads(answer["Payload"].read()), elapsed


@pytest.mark.parametrize(
    "fault",
    [{"throttle_rate": 1.0}, {"unprocessed_keys_rate": 1.0}, {"latency_seconds": 5.0}],
    ids=["throttled", "unprocessed-keys", "slow"],
)
def test_a_throttled_table_is_answered_within_the_budget_with_the_chosen_fail_mode(
    monitoring: LocalMonitoring, handler: tuple[Any, str], fault: dict[str, float]
) -> None:
    """Given the blocklist table throttled, leaving every key unprocessed, or answering after 5 s,
    when a user connects, then the handler answers within its 2 s budget (plus the invocation's own
    overhead): it allows with fail open (the default), and refuses with a clear message once the fail
    mode is closed; each time the BlocklistUnavailable metric is emitted."""
    lambda_client, name = handler
    get_fault_injector().configure(BATCH_GET, **fault)

    opened, open_seconds = ask(lambda_client, name, monitoring, "uma", "198.51.100.161")
    fail_mode(lambda_client, name, "closed")
    ask(lambda_client, name, monitoring, "uma", "198.51.100.161")  # the new configuration's cold start
    closed, closed_seconds = ask(lambda_client, name, monitoring, "uma", "198.51.100.161")

    assert opened["allow"] is True
    assert closed["allow"] is False
    assert "access check is unavailable" in closed["error-msg-on-denied-connection"]
    assert open_seconds < BUDGET_SECONDS + INVOKE_OVERHEAD_SECONDS
    assert closed_seconds < BUDGET_SECONDS + INVOKE_OVERHEAD_SECONDS
    assert get_fault_injector().injected_counts()[BATCH_GET]
    assert monitoring.cloud.runtime is not None
    logs = monitoring.cloud.runtime.logs(name)
    assert '"BlocklistUnavailable"' in logs and "refused (fail closed)" in logs
    # The handler signs its own DynamoDB calls: the local cloud's IAM knew them as the function's role.
    enforcer = monitoring.cloud.iam_enforcer
    if monitoring.cloud.iam:  # on unless LOCALCLOUD_IAM=off
        assert enforcer is not None
        roles = enforcer.observations()
        batch_reads = {role: seen["allowed"].get(BATCH_GET, 0) for role, seen in roles.items()}
        assert any("ClientConnectFunctionRole" in role and count for role, count in batch_reads.items())
