"""What a failed AWS call (a botocore ``ClientError``) reports: its code, and a refused condition."""

from __future__ import annotations

from botocore.exceptions import ClientError

__all__ = ["conditional_check_failed", "error_code"]


def error_code(error: ClientError) -> str:
    """The error's code (``""`` when the answer names none)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def conditional_check_failed(error: ClientError) -> bool:
    """Whether DynamoDB refused a conditional write because its condition did not hold."""
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
