"""Which AWS answers a provisioning task reports as a named, retryable error (Step Functions retries
those by name): throttling, concurrency limits, not yet visible, and server errors."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
from cvpn_shared.provisioning.errors import (
    ClientVpnApiError,
    ProvisioningError,
    RequestLimitExceeded,
    ServerError,
    raise_if_retryable,
)
from cvpn_shared.provisioning.models.workflow_state import PollState
from cvpn_shared.provisioning.teardown import teardown_step

ENDPOINT = "cvpn-endpoint-0123456789abcdef0"


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "CreateClientVpnEndpoint",
    )


@pytest.mark.parametrize(
    ("code", "status", "named"),
    [
        ("InternalError", 500, ServerError),
        ("InternalFailure", 500, ServerError),
        ("ServiceUnavailable", 503, ServerError),
        ("Unavailable", 503, ServerError),
        # A server error under another code (DynamoDB's, an unmodelled one), or with no body at all.
        ("InternalServerError", 500, ServerError),
        ("", 502, ServerError),
        ("", 504, ServerError),
        # EC2 throttles with 503: still the throttling error, retried by its own name.
        ("RequestLimitExceeded", 503, RequestLimitExceeded),
        # An emulator answering a server error code with 400 is still retried by the code.
        ("InternalError", 400, ServerError),
    ],
)
def test_server_errors_are_raised_as_the_retryable_server_error(
    code: str, status: int, named: type[ProvisioningError]
) -> None:
    """Given AWS answered a call with a server error (by its code, or by a transient 5xx status),
    when the task classifies it,
    then it raises the named error Step Functions retries, with the operation, code and message."""
    with pytest.raises(named) as raised:
        raise_if_retryable(_client_error(code, status), "CreateClientVpnEndpoint")
    assert type(raised.value) is named
    assert str(raised.value) == f"CreateClientVpnEndpoint: {code}: {code} happened"


@pytest.mark.parametrize(
    ("code", "status"),
    [("UnauthorizedOperation", 403), ("InvalidParameterValue", 400), ("NotImplemented", 501)],
)
def test_client_errors_and_permanent_server_answers_are_not_retried(code: str, status: int) -> None:
    """A refusal of the request itself, or a 501 (the server will never do it), is not retryable."""
    raise_if_retryable(_client_error(code, status), "CreateClientVpnEndpoint")


def _offline_ec2() -> Any:
    """An EC2 client for botocore's stubber (fake credentials; it sends nothing)."""
    return boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def test_a_client_vpn_call_answered_with_a_server_error_raises_server_error() -> None:
    """Given a Client VPN call answers InternalError with HTTP 500 (after the SDK's attempts),
    the task raises ServerError (retried by the workflow), not the terminal ClientVpnApiError."""
    ec2 = _offline_ec2()
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "delete_client_vpn_endpoint",
            service_error_code="InternalError",
            service_message="An internal error has occurred.",
            http_status_code=500,
        )
        with pytest.raises(ServerError, match="DeleteClientVpnEndpoint: InternalError"):
            ClientVpnApi(ec2).delete_endpoint(ENDPOINT)


def test_a_client_error_of_the_client_vpn_api_stays_terminal() -> None:
    ec2 = _offline_ec2()
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "delete_client_vpn_endpoint", service_error_code="UnauthorizedOperation", http_status_code=403
        )
        with pytest.raises(ClientVpnApiError, match="DeleteClientVpnEndpoint: UnauthorizedOperation"):
            ClientVpnApi(ec2).delete_endpoint(ENDPOINT)


def test_a_teardown_action_answered_with_a_server_error_is_postponed() -> None:
    """Given an endpoint with nothing left but itself, whose DeleteClientVpnEndpoint answers
    ServiceUnavailable (503),
    when a teardown step runs,
    then the deletion is postponed to the next step (not done, the endpoint still remaining), as
    for throttling, instead of failing the teardown."""
    ec2 = _offline_ec2()
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_client_vpn_endpoints",
            {"ClientVpnEndpoints": [{"ClientVpnEndpointId": ENDPOINT, "Status": {"Code": "available"}}]},
        )
        stub.add_response("describe_client_vpn_authorization_rules", {"AuthorizationRules": []})
        stub.add_response("describe_client_vpn_routes", {"Routes": []})
        stub.add_response("describe_client_vpn_target_networks", {"ClientVpnTargetNetworks": []})
        stub.add_client_error(
            "delete_client_vpn_endpoint", service_error_code="ServiceUnavailable", http_status_code=503
        )

        report = teardown_step(ClientVpnApi(ec2), ENDPOINT, PollState(what="teardown", next_wait_seconds=10))

        stub.assert_no_pending_responses()
    assert report.done is False
    assert report.actions == []
    assert report.remaining == [f"endpoint {ENDPOINT}"]
