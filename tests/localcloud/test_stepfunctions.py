"""moto's ASL interpreter on emulated time, with JSONata (no Lambda involved here)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud import stepfunctions
from localcloud.clock import Clock, get_clock, set_clock

ROLE_ARN = "arn:aws:iam::123456789012:role/sfn"


@pytest.fixture
def fast_clock():
    previous = get_clock()
    clock = set_clock(Clock(time_scale=6000))
    yield clock
    set_clock(previous)


def _run(definition: dict[str, Any], payload: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
    stepfunctions.install()
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    arn = sfn.create_state_machine(name="fixture", definition=json.dumps(definition), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise AssertionError("execution did not finish")


@mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
def test_wait_state_lasts_emulated_seconds(fast_clock: Clock) -> None:
    """Given a 10-minute Wait at scale 6000 (0.1 real seconds), the execution succeeds far sooner than
    the 10 real minutes a wall-clock Wait would take, and emulated time moved at least 600 seconds."""
    wait_seconds = 600
    definition = {
        "StartAt": "WaitForAssociation",
        "States": {"WaitForAssociation": {"Type": "Wait", "Seconds": wait_seconds, "End": True}},
    }
    # A tenth of the wall-clock wait: far above the emulated wait's real duration even on a loaded
    # machine, yet a Wait in real seconds could not end within it.
    real_bound = wait_seconds / 10
    emulated_start = fast_clock.timestamp()
    started = time.monotonic()
    result = _run(definition, {"x": 1}, timeout=2 * real_bound)
    real_elapsed = time.monotonic() - started
    assert result["status"] == "SUCCEEDED"
    assert real_elapsed < real_bound
    assert fast_clock.timestamp() - emulated_start >= wait_seconds


@mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
def test_jsonata_expressions_evaluate(fast_clock: Clock) -> None:
    """A JSONata Pass state computes its output from the input."""
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Count",
        "States": {
            "Count": {
                "Type": "Pass",
                "Output": {
                    "subnets": "{% $count($states.input.subnets) %}",
                    "first": "{% $states.input.subnets[0] %}",
                },
                "End": True,
            }
        },
    }
    result = _run(definition, {"subnets": ["subnet-a", "subnet-b", "subnet-c"]})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"subnets": 3, "first": "subnet-a"}


@mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
def test_retry_interval_follows_the_clock(fast_clock: Clock) -> None:
    """A failing state retried twice with a 300 s interval, then caught, spends >= 900 emulated seconds."""
    # Fail states take no Retry; a Parallel whose branch fails does, as a Task would.
    definition = {
        "StartAt": "Attempt",
        "States": {
            "Attempt": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "RequestLimitExceeded"}}}
                ],
                "Retry": [
                    {
                        "ErrorEquals": ["RequestLimitExceeded"],
                        "IntervalSeconds": 300,
                        "MaxAttempts": 2,
                        "BackoffRate": 2,
                    }
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "GaveUp"}],
                "End": True,
            },
            "GaveUp": {"Type": "Pass", "End": True},
        },
    }
    emulated_start = fast_clock.timestamp()
    result = _run(definition, {})
    assert result["status"] == "SUCCEEDED", result
    assert fast_clock.timestamp() - emulated_start >= 300 + 600


@mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
def test_a_choice_on_an_absent_field_is_quiet_and_a_real_failure_still_logs(
    fast_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A Choice rule asking IsPresent of a missing path branches without an ERROR line in the log;
    a path missing where the definition needs it still logs and fails the execution."""
    definition = {
        "StartAt": "Optional?",
        "States": {
            "Optional?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.request.grant_id", "IsPresent": True, "Next": "Needs"}],
                "Default": "Done",
            },
            "Needs": {"Type": "Pass", "InputPath": "$.request.other", "End": True},
            "Done": {"Type": "Pass", "Result": {"grant": "none"}, "End": True},
        },
    }
    with caplog.at_level("ERROR"):
        quiet = _run(definition, {"request": {}})
    assert quiet["status"] == "SUCCEEDED" and json.loads(quiet["output"]) == {"grant": "none"}
    assert not [record for record in caplog.records if "NoSuchJsonPath" in record.getMessage()]

    with caplog.at_level("ERROR"):
        failed = _run(definition, {"request": {"grant_id": "g-1"}})
    assert failed["status"] == "FAILED"
    assert [record for record in caplog.records if record.levelname == "ERROR"]
