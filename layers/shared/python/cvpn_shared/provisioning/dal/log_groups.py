"""Data access to CloudWatch Logs for the endpoint's connection log group."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

__all__ = ["ConnectionLogGroups"]


class ConnectionLogGroups:
    def __init__(self, logs_client: Any) -> None:
        self._logs = logs_client

    def ensure(self, name: str, retention_days: int, tags: dict[str, str]) -> bool:
        """Create the log group with its retention when missing; True when it was created."""
        try:
            self._logs.create_log_group(logGroupName=name, tags=tags)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                raise
            return False
        self._logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)
        return True
