"""Named errors of the provisioning tasks.

Step Functions selects Retry and Catch by the error name, which for a Lambda task is the Python
exception class name. So every failure a task can report has its own class here, and the state
machine definitions name them.

- Retryable (Retry with backoff and jitter): ``RequestLimitExceeded``, ``ConcurrentMutationLimitExceeded``,
  ``OperationNotPermitted``, ``EndpointNotYetVisible``.
- Terminal (Catch -> rollback): ``RequestInvalid``, ``PreflightFailed``, ``AssociationFailed``,
  ``ProvisioningTimedOut``, ``ClientVpnApiError``.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import error_code
from cvpn_shared.core.field_errors import describe_field_errors

__all__ = [
    "RETRYABLE_ERROR_CODES",
    "AssociationFailed",
    "ClientVpnApiError",
    "ConcurrentMutationLimitExceeded",
    "EndpointNotYetVisible",
    "OperationNotPermitted",
    "PreflightFailed",
    "ProvisioningError",
    "ProvisioningTimedOut",
    "RequestInvalid",
    "RequestLimitExceeded",
    "RuleOrRouteFailed",
    "raise_if_retryable",
]


class ProvisioningError(Exception):
    """Base of every named error a task raises."""


class RequestInvalid(ProvisioningError):
    """The request does not match the model: the message lists each field and why."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__(f"invalid request: {describe_field_errors(errors)}")


class PreflightFailed(ProvisioningError):
    """A pre-flight rule failed before anything was created: the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("pre-flight validation failed: " + "; ".join(problems))


class RequestLimitExceeded(ProvisioningError):
    """EC2 throttled the call (retry with backoff)."""


class ConcurrentMutationLimitExceeded(ProvisioningError):
    """More than 10 changes in flight on the endpoint (retry with backoff)."""


class OperationNotPermitted(ProvisioningError):
    """Another endpoint is being created, or the endpoint is busy (retry with backoff)."""


class EndpointNotYetVisible(ProvisioningError):
    """The endpoint was just created and Describe does not see it yet (eventual consistency)."""


class AssociationFailed(ProvisioningError):
    """A subnet association ended in association-failed."""


class RuleOrRouteFailed(ProvisioningError):
    """An authorization rule or a route ended in the failed state."""


class ProvisioningTimedOut(ProvisioningError):
    """The endpoint did not become ready within the overall timeout."""


class ClientVpnApiError(ProvisioningError):
    """Any other error of the Client VPN API, with its code."""

    def __init__(self, code: str, message: str, operation: str) -> None:
        self.code = code
        self.operation = operation
        super().__init__(f"{operation}: {code}: {message}")


RETRYABLE_ERROR_CODES: dict[str, type[ProvisioningError]] = {
    "RequestLimitExceeded": RequestLimitExceeded,
    "Throttling": RequestLimitExceeded,
    "ThrottlingException": RequestLimitExceeded,
    "ConcurrentMutationLimitExceeded": ConcurrentMutationLimitExceeded,
    "OperationNotPermitted": OperationNotPermitted,
    "InvalidClientVpnEndpointId.NotFound": EndpointNotYetVisible,
}


def raise_if_retryable(error: ClientError, operation: str) -> None:
    """Raise the named, retryable error for a code that has one (throttling, concurrency limits),
    so Step Functions retries the task by that name."""
    code = error_code(error)
    retryable = RETRYABLE_ERROR_CODES.get(code)
    if retryable is not None:
        message = error.response.get("Error", {}).get("Message", "")
        raise retryable(f"{operation}: {code}: {message}") from error
