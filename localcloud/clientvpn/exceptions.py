"""Client VPN error responses, with the codes and HTTP statuses the real EC2 API returns.

Every class subclasses moto's ``EC2ClientError`` so moto renders it as an EC2 XML error that boto3
parses into a ``ClientError`` carrying the same ``Code``. The status is what AWS answers that code
with: the server error codes of the EC2 API reference ("Error codes for the Amazon EC2 API") come
with a 5xx status, which the SDKs retry, and every other code with 400.
"""

from __future__ import annotations

from moto.ec2.exceptions import EC2ClientError

# The EC2 API's server error codes and their statuses: "500-series" per the EC2 API reference;
# 503 for the overload and throttling codes (botocore's legacy retry rules, data/_retry.json, match
# RequestLimitExceeded only with 503), 500 for the others.
SERVER_ERROR_STATUS: dict[str, int] = {
    "InternalError": 500,
    "InternalFailure": 500,
    "InsufficientAddressCapacity": 500,
    "InsufficientCapacity": 500,
    "InsufficientHostCapacity": 500,
    "InsufficientInstanceCapacity": 500,
    "InsufficientReservedInstanceCapacity": 500,
    "InsufficientVolumeCapacity": 500,
    "ServiceUnavailable": 503,
    "Unavailable": 503,
    "RequestLimitExceeded": 503,
}


class ClientVpnError(EC2ClientError):
    """An EC2 error with an explicit code and message, answered with the code's HTTP status."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.error_code = code
        self.error_message = message
        self.http_status = SERVER_ERROR_STATUS.get(code, 400)


class ClientVpnEndpointNotFound(ClientVpnError):
    def __init__(self, endpoint_id: str) -> None:
        super().__init__(
            "InvalidClientVpnEndpointId.NotFound",
            f"The Client VPN endpoint ID '{endpoint_id}' does not exist",
        )


class InvalidParameterValue(ClientVpnError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterValue", message)


class MissingParameter(ClientVpnError):
    def __init__(self, message: str) -> None:
        super().__init__("MissingParameter", message)


class IdempotentParameterMismatch(ClientVpnError):
    def __init__(self, token: str) -> None:
        super().__init__(
            "IdempotentParameterMismatch",
            f"The client token '{token}' was already used with different parameters.",
        )


class ConcurrentMutationLimitExceeded(ClientVpnError):
    def __init__(self, endpoint_id: str, limit: int) -> None:
        super().__init__(
            "ConcurrentMutationLimitExceeded",
            f"Client VPN endpoint {endpoint_id} already has {limit} operations in progress. "
            "Wait for them to complete and try again.",
        )


class UnsupportedOperation(ClientVpnError):
    def __init__(self, operation: str) -> None:
        super().__init__(
            "UnsupportedOperation",
            f"The local cloud does not support {operation}.",
        )
