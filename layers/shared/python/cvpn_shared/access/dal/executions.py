"""Data access to Step Functions executions: describe one, read its history."""

from __future__ import annotations

from typing import Any

__all__ = ["StepFunctionsExecutions"]


class StepFunctionsExecutions:
    """DescribeExecution and GetExecutionHistory (every page) over one boto3 client."""

    def __init__(self, sfn_client: Any) -> None:
        self._sfn = sfn_client

    @property
    def client(self) -> Any:
        """The boto3 client (the intake's start function takes it)."""
        return self._sfn

    def describe(self, execution_arn: str) -> dict[str, Any]:
        return dict(self._sfn.describe_execution(executionArn=execution_arn))

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._sfn.get_execution_history(
                executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events
