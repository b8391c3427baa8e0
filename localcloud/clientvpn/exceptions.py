"""Client VPN error responses, with the codes the real EC2 API returns.

Every class subclasses moto's ``EC2ClientError`` so moto renders it as an EC2 XML error that boto3
parses into a ``ClientError`` carrying the same ``Code``.
"""

from __future__ import annotations

from moto.ec2.exceptions import EC2ClientError


class ClientVpnError(EC2ClientError):
    """An EC2 client error with an explicit code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.error_code = code
        self.error_message = message


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
