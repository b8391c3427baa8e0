"""start_request: one execution per source + ticket key; a duplicate gets the original and starts
nothing (Step Functions through moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from cvpn.provision import execution_name as cli_execution_name
from cvpn_shared.access.naming import MAX_EXECUTION_NAME_LENGTH, execution_name
from cvpn_shared.access.start import ExecutionNameConflict, IntakeStarter, start_request

DEFINITION = {"StartAt": "Hold", "States": {"Hold": {"Type": "Pass", "End": True}}}


@pytest.fixture
def sfn() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("stepfunctions", region_name="us-east-1")
        arn = client.create_state_machine(
            name="intake", definition=json.dumps(DEFINITION), roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        yield client, arn


def test_first_start_then_duplicate(sfn: tuple[Any, str]) -> None:
    client, arn = sfn
    request = {"request_id": "NET-1042", "requester": "jane"}
    first = start_request(client, arn, source="jira", request=request, approval_required=True, callback=None)
    assert (first.duplicate, first.status_url_path) == (False, "/requests/NET-1042")
    assert first.execution_arn.endswith(":execution:intake:jira-NET-1042")
    payload = json.loads(client.describe_execution(executionArn=first.execution_arn)["input"])
    assert payload == {"source": "jira", "request": request, "approval_required": True, "callback": None}

    again = start_request(client, arn, source="jira", request=request, approval_required=True)
    assert (again.duplicate, again.execution_arn) == (True, first.execution_arn)
    changed = start_request(
        client, arn, source="jira", request={**request, "requester": "x"}, approval_required=False
    )
    assert (changed.duplicate, changed.execution_arn) == (True, first.execution_arn)
    assert len(client.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_another_source_is_another_execution(sfn: tuple[Any, str]) -> None:
    client, arn = sfn
    request = {"request_id": "NET-1042"}
    start_request(client, arn, source="jira", request=request, approval_required=False)
    other = start_request(client, arn, source="request-form", request=request, approval_required=True)
    assert not other.duplicate
    assert len(client.list_executions(stateMachineArn=arn)["executions"]) == 2


def test_a_name_taken_by_another_request_is_a_conflict(sfn: tuple[Any, str]) -> None:
    client, arn = sfn
    start_request(client, arn, source="jira", request={"request_id": "NET-1"}, approval_required=False)
    with pytest.raises(ExecutionNameConflict, match="request 'NET-1' already uses"):
        start_request(client, arn, source="jira", request={"request_id": "NET:1"}, approval_required=False)


@pytest.mark.parametrize("request_body", [{}, {"request_id": ""}, {"request_id": 7}])
def test_a_request_without_an_id_starts_nothing(sfn: tuple[Any, str], request_body: dict[str, Any]) -> None:
    client, arn = sfn
    with pytest.raises(ValueError, match=r"request\.request_id: required"):
        start_request(client, arn, source="jira", request=request_body, approval_required=False)
    assert client.list_executions(stateMachineArn=arn)["executions"] == []


def test_the_starter_knows_the_arn_before_starting(sfn: tuple[Any, str]) -> None:
    client, arn = sfn
    starter = IntakeStarter(client, arn)
    expected = starter.execution_arn("github", "GH-42")
    assert starter.start("github", {"request_id": "GH-42"}, True, None).execution_arn == expected


@given(request_id=st.text(max_size=140), source=st.text(max_size=40))
def test_names_follow_the_step_functions_rule_and_the_cli(request_id: str, source: str) -> None:
    """[A-Za-z0-9_-], at most 80 characters, and the same name the command line derives."""
    name = execution_name(request_id, source)
    assert len(name) <= MAX_EXECUTION_NAME_LENGTH
    assert all(char.isascii() and (char.isalnum() or char in "-_") for char in name)
    assert name == cli_execution_name(request_id, source)
