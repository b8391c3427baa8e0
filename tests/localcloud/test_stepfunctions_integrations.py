"""Service integrations the intake workflow relies on, on the local cloud's Step Functions:
``lambda:invoke.waitForTaskToken`` answered by SendTaskSuccess / SendTaskFailure, and
``states:startExecution.sync:2`` (moto 5.2.5 failed every start with ``States.Runtime: 'StateMachineArn'``
and dropped SendTaskFailure's cause; ``localcloud.stepfunctions.install`` fixes both)."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from localcloud.cloud import LocalCloud

# The function under the waitForTaskToken task hands the token to the test through a queue.
_TOKEN_KEEPER = """
import json, os, boto3

def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl=os.environ["TOKENS_QUEUE_URL"], MessageBody=json.dumps(event))
    return {"kept": True}
"""


@dataclass
class Machines:
    cloud: LocalCloud
    parent_arn: str
    child_arn: str
    failing_child_arn: str
    tokens_queue_url: str

    def start(self, name: str, child_arn: str) -> str:
        return str(
            self.cloud.client("stepfunctions").start_execution(
                stateMachineArn=self.parent_arn,
                name=name,
                input=json.dumps({"who": name, "child": child_arn}),
            )["executionArn"]
        )

    def next_token(self, timeout: float = 30) -> dict[str, Any]:
        sqs = self.cloud.client("sqs")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = sqs.receive_message(QueueUrl=self.tokens_queue_url, WaitTimeSeconds=1).get(
                "Messages", []
            )
            if messages:
                sqs.delete_message(QueueUrl=self.tokens_queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
                return dict(json.loads(messages[0]["Body"]))
        raise AssertionError("the waitForTaskToken task never invoked its function")

    def finish(self, execution_arn: str, timeout: float = 30) -> dict[str, Any]:
        sfn = self.cloud.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, f"{execution_arn} still running"
            time.sleep(0.05)
        return dict(described)


def _zipped(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def machines() -> Iterator[Machines]:
    with LocalCloud(time_scale=60.0) as cloud:
        iam = cloud.client("iam")
        role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        # What the machines and the function do with this role; the local cloud enforces it.
        grants = {
            "Effect": "Allow",
            "Action": [
                "lambda:InvokeFunction",
                "sqs:SendMessage",
                "states:StartExecution",
                "states:DescribeExecution",
                "states:StopExecution",
            ],
            "Resource": "*",
        }
        iam.put_role_policy(
            RoleName="sfn",
            PolicyName="integrations",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [grants]}),
        )
        queue_url = cloud.client("sqs").create_queue(QueueName="task-tokens")["QueueUrl"]
        function_arn = cloud.client("lambda").create_function(
            FunctionName="keep-token",
            Runtime="python3.13",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": _zipped(_TOKEN_KEEPER)},
            Environment={"Variables": {"TOKENS_QUEUE_URL": queue_url}},
        )["FunctionArn"]
        sfn = cloud.client("stepfunctions")

        def create(name: str, definition: dict[str, Any]) -> str:
            return str(
                sfn.create_state_machine(name=name, roleArn=role, definition=json.dumps(definition))[
                    "stateMachineArn"
                ]
            )

        child = create(
            "child",
            {
                "StartAt": "Echo",
                "States": {"Echo": {"Type": "Pass", "Parameters": {"got.$": "$.who"}, "End": True}},
            },
        )
        failing = create(
            "failing-child",
            {"StartAt": "Fail", "States": {"Fail": {"Type": "Fail", "Error": "Boom", "Cause": "it broke"}}},
        )
        parent = create(
            "parent",
            {
                "StartAt": "AwaitDecision",
                "States": {
                    "AwaitDecision": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                        "Parameters": {
                            "FunctionName": function_arn,
                            "Payload": {"task_token.$": "$$.Task.Token", "who.$": "$.who"},
                        },
                        "ResultPath": "$.decision",
                        "Catch": [
                            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Refused"}
                        ],
                        "Next": "RunChild",
                    },
                    "RunChild": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::states:startExecution.sync:2",
                        "Parameters": {
                            "StateMachineArn.$": "$.child",
                            "Name.$": "States.Format('{}-child', $$.Execution.Name)",
                            "Input": {"who.$": "$.who"},
                        },
                        "ResultSelector": {
                            "status.$": "$.Status",
                            "output.$": "$.Output",
                            "arn.$": "$.ExecutionArn",
                        },
                        "ResultPath": "$.child_run",
                        "Catch": [
                            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ChildFailed"}
                        ],
                        "End": True,
                    },
                    "Refused": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
                    "ChildFailed": {"Type": "Pass", "End": True},
                },
            },
        )
        yield Machines(cloud, parent, child, failing, queue_url)


def _decide(
    machines: Machines, name: str, child_arn: str, decide: Callable[[Any, str], None]
) -> dict[str, Any]:
    execution_arn = machines.start(name, child_arn)
    token = machines.next_token()
    assert token["who"] == name
    assert machines.cloud.client("stepfunctions").describe_execution(executionArn=execution_arn)[
        "status"
    ] == ("RUNNING"), "the task must wait for its token"
    decide(machines.cloud.client("stepfunctions"), token["task_token"])
    return machines.finish(execution_arn)


def test_task_token_success_then_start_execution_sync2_returns_the_child_output(machines: Machines) -> None:
    """Given a waitForTaskToken task, when SendTaskSuccess answers it, the execution goes on; the
    startExecution.sync:2 task waits for the child and returns its output as JSON under PascalCase keys;
    the token cannot be used twice."""
    tokens: list[str] = []

    def approve(sfn: Any, token: str) -> None:
        tokens.append(token)
        sfn.send_task_success(taskToken=token, output=json.dumps({"decision": "approve"}))

    described = _decide(machines, "alice", machines.child_arn, approve)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["decision"] == {"decision": "approve"}
    assert output["child_run"]["status"] == "SUCCEEDED"
    assert output["child_run"]["output"] == {"got": "alice"}
    assert output["child_run"]["arn"].endswith(":execution:child:alice-child")
    sfn = machines.cloud.client("stepfunctions")
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.send_task_success(taskToken=tokens[0], output="{}")


def test_task_token_failure_keeps_error_and_cause(machines: Machines) -> None:
    """SendTaskFailure's error and cause reach the Catch (moto dropped the cause)."""

    def reject(sfn: Any, token: str) -> None:
        sfn.send_task_failure(taskToken=token, error="ApprovalRejected", cause="rejected by bob")

    described = _decide(machines, "mallory", machines.child_arn, reject)
    assert described["status"] == "FAILED"
    assert (described["error"], described["cause"]) == ("ApprovalRejected", "rejected by bob")


def test_failing_child_fails_the_sync2_task_with_its_error(machines: Machines) -> None:
    """A child that fails makes the .sync:2 task fail with States.TaskFailed; the cause carries the
    child's error and cause."""

    def approve(sfn: Any, token: str) -> None:
        sfn.send_task_success(taskToken=token, output="{}")

    described = _decide(machines, "carol", machines.failing_child_arn, approve)
    assert described["status"] == "SUCCEEDED"
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "States.TaskFailed"
    cause = json.loads(error["Cause"])
    assert (cause["Status"], cause["Error"], cause["Cause"]) == ("FAILED", "Boom", "it broke")
