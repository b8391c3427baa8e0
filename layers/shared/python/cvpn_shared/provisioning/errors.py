"""Named errors of the provisioning tasks.

Step Functions selects Retry and Catch by the error name, which for a Lambda task is the Python
exception class name. So every failure a task can report has its own class here, and the state
machine definitions name them.

- Retryable (Retry with backoff and jitter): ``RequestLimitExceeded``, ``ConcurrentMutationLimitExceeded``,
  ``OperationNotPermitted``, ``EndpointNotYetVisible``, ``ServerError``.
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
    "TRANSIENT_SERVER_STATUSES",
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
    "ServerError",
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


class ServerError(ProvisioningError):
    """AWS answered with a server error (HTTP 5xx: InternalError, ServiceUnavailable ...) on every
    attempt the SDK made; transient on AWS's side (retry with backoff)."""


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


# The HTTP statuses the SDKs treat as a transient server error (botocore's standard retry mode).
TRANSIENT_SERVER_STATUSES = frozenset({500, 502, 503, 504})

RETRYABLE_ERROR_CODES: dict[str, type[ProvisioningError]] = {
    "RequestLimitExceeded": RequestLimitExceeded,
    "Throttling": RequestLimitExceeded,
    "ThrottlingException": RequestLimitExceeded,
    "ConcurrentMutationLimitExceeded": ConcurrentMutationLimitExceeded,
    "OperationNotPermitted": OperationNotPermitted,
    "InvalidClientVpnEndpointId.NotFound": EndpointNotYetVisible,
    # The EC2 API's server errors that say nothing about the request (EC2 API reference, "Error codes").
    "InternalError": ServerError,
    "InternalFailure": ServerError,
    "ServiceUnavailable": ServerError,
    "Unavailable": ServerError,
}


def raise_if_retryable(error: ClientError, operation: str) -> None:
    """Raise the named, retryable error for a code that has one (throttling, concurrency limits,
    server errors), so Step Functions retries the task by that name. Any other code answered with a
    transient server status is a server error too."""
    code = error_code(error)
    retryable = RETRYABLE_ERROR_CODES.get(code)
    if retryable is None and _http_status(error) in TRANSIENT_SERVER_STATUSES:
        retryable = ServerError
    if retryable is not None:
        message = error.response.get("Error", {}).get("Message", "")
        raise retryable(f"{operation}: {code}: {message}") from error


def _http_status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
