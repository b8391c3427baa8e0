"""Data access to the intake workflow's executions (Step Functions): start, describe, task callbacks."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import error_code

__all__ = ["ExecutionAlreadyExists", "IntakeExecutions", "TaskCallbacks", "TaskNoLongerWaiting"]


class ExecutionAlreadyExists(Exception):
    """An execution of that name exists (closed, or running with another input)."""


class TaskNoLongerWaiting(Exception):
    """The task token is unknown, timed out, or its execution has ended."""


class IntakeExecutions:
    """StartExecution and DescribeExecution on one client."""

    def __init__(self, sfn_client: Any) -> None:
        self._sfn = sfn_client

    def describe(self, execution_arn: str) -> dict[str, Any] | None:
        """The execution, or None when there is none of that ARN."""
        try:
            return dict(self._sfn.describe_execution(executionArn=execution_arn))
        except ClientError as error:
            if error_code(error) == "ExecutionDoesNotExist":
                return None
            raise

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
        """Start ``name``; its ARN. Raise ExecutionAlreadyExists as StartExecution does."""
        try:
            answer = self._sfn.start_execution(
                stateMachineArn=state_machine_arn,
                name=name,
                input=json.dumps(payload, sort_keys=True, separators=(",", ":")),
            )
        except ClientError as error:
            if error_code(error) == "ExecutionAlreadyExists":
                raise ExecutionAlreadyExists(name) from error
            raise
        return str(answer["executionArn"])


class TaskCallbacks:
    """SendTaskSuccess / SendTaskFailure for tasks waiting on a token."""

    def __init__(self, sfn_client: Any) -> None:
        self._sfn = sfn_client

    def succeed(self, task_token: str, output: dict[str, Any]) -> None:
        self._call("send_task_success", taskToken=task_token, output=json.dumps(output, sort_keys=True))

    def fail(self, task_token: str, error: str, cause: str) -> None:
        self._call("send_task_failure", taskToken=task_token, error=error[:256], cause=cause[:32768])

    def _call(self, operation: str, **kwargs: Any) -> None:
        try:
            getattr(self._sfn, operation)(**kwargs)
        except ClientError as error:
            if error_code(error) in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
                raise TaskNoLongerWaiting(error_code(error)) from error
            raise
