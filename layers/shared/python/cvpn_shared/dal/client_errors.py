"""What a failed AWS call (a botocore ``ClientError``) reports: its code, and whether it is retryable."""

from __future__ import annotations

from botocore.exceptions import ClientError

from cvpn_shared.errors import RETRYABLE_ERROR_CODES

__all__ = ["conditional_check_failed", "error_code", "raise_if_retryable"]


def error_code(error: ClientError) -> str:
    """The error's code (``""`` when the answer names none)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def conditional_check_failed(error: ClientError) -> bool:
    """Whether DynamoDB refused a conditional write because its condition did not hold."""
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def raise_if_retryable(error: ClientError, operation: str) -> None:
    """Raise the named, retryable error of ``cvpn_shared.errors`` for a code that has one
    (throttling, concurrency limits), so Step Functions retries the task by that name."""
    code = error_code(error)
    retryable = RETRYABLE_ERROR_CODES.get(code)
    if retryable is not None:
        message = error.response.get("Error", {}).get("Message", "")
        raise retryable(f"{operation}: {code}: {message}") from error
