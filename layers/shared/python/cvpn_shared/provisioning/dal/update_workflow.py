"""Data access to the update state machine: starting an apply of a new desired state."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

__all__ = ["UpdateWorkflow"]


class UpdateWorkflow:
    """StartExecution on the update state machine; the same name twice follows the first execution."""

    def __init__(self, stepfunctions_client: Any, state_machine_arn: str) -> None:
        self._sfn = stepfunctions_client
        self._arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any]) -> tuple[str, bool]:
        """Start ``name`` with ``payload``; (execution ARN, whether this call started it)."""
        try:
            answer = self._sfn.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(payload, sort_keys=True)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
            execution_arn = self._arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
            return execution_arn, False
        return str(answer["executionArn"]), True
