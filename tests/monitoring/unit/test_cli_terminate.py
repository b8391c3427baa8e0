"""`cvpn connections --terminate NAME`: a user name by Username (beyond five sessions, the rest one
by one), a certificate's common name connection by connection (TerminateClientVpnConnections'
Username matches user names only). The CLI uses the alert path's code for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cvpn.monitoring_cli import terminate_sessions

ENDPOINT = "cvpn-endpoint-0123456789abcdef0"


@pytest.fixture
def ec2() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _status(connection_id: str) -> dict[str, Any]:
    return {
        "ConnectionId": connection_id,
        "PreviousStatus": {"Code": "active"},
        "CurrentStatus": {"Code": "terminating"},
    }


def _connection(connection_id: str, common_name: str, code: str = "active") -> dict[str, Any]:
    return {"ConnectionId": connection_id, "CommonName": common_name, "Status": {"Code": code}}


def test_a_user_name_is_cut_in_one_call(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_response(
        "terminate_client_vpn_connections",
        {"Username": "nina", "ConnectionStatuses": [_status("cvpn-connection-1")]},
        {"ClientVpnEndpointId": ENDPOINT, "Username": "nina"},
    )

    assert [s["ConnectionId"] for s in terminate_sessions(client, ENDPOINT, "nina")] == ["cvpn-connection-1"]


def test_a_common_name_is_cut_connection_by_connection(ec2: tuple[Any, Stubber]) -> None:
    """No user of that name: the active connections of that certificate, on every page, are cut by
    id; another certificate's, and an ended one, are left; one that ends meanwhile is skipped."""
    client, stubber = ec2
    stubber.add_client_error(
        "terminate_client_vpn_connections",
        service_error_code="InvalidClientVpnConnection.UserNotFound",
        expected_params={"ClientVpnEndpointId": ENDPOINT, "Username": "kiosk-7"},
    )
    stubber.add_response(
        "describe_client_vpn_connections",
        {
            "Connections": [
                _connection("cvpn-connection-1", "kiosk-7"),
                _connection("cvpn-connection-2", "kiosk-8"),
                _connection("cvpn-connection-3", "kiosk-7", code="terminated"),
            ],
            "NextToken": "page-2",
        },
        {"ClientVpnEndpointId": ENDPOINT},
    )
    stubber.add_response(
        "describe_client_vpn_connections",
        {
            "Connections": [
                _connection("cvpn-connection-4", "kiosk-7"),
                _connection("cvpn-connection-5", "kiosk-7"),
            ]
        },
        {"ClientVpnEndpointId": ENDPOINT, "NextToken": "page-2"},
    )
    stubber.add_response(
        "terminate_client_vpn_connections",
        {"ConnectionStatuses": [_status("cvpn-connection-1")]},
        {"ClientVpnEndpointId": ENDPOINT, "ConnectionId": "cvpn-connection-1"},
    )
    stubber.add_client_error(
        "terminate_client_vpn_connections",
        service_error_code="InvalidClientVpnConnection.IdNotFound",
        expected_params={"ClientVpnEndpointId": ENDPOINT, "ConnectionId": "cvpn-connection-4"},
    )
    stubber.add_response(
        "terminate_client_vpn_connections",
        {"ConnectionStatuses": [_status("cvpn-connection-5")]},
        {"ClientVpnEndpointId": ENDPOINT, "ConnectionId": "cvpn-connection-5"},
    )

    cut = terminate_sessions(client, ENDPOINT, "kiosk-7")

    assert [s["ConnectionId"] for s in cut] == ["cvpn-connection-1", "cvpn-connection-5"]


def test_other_errors_are_not_swallowed(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_client_error("terminate_client_vpn_connections", service_error_code="UnauthorizedOperation")

    with pytest.raises(Exception, match="UnauthorizedOperation"):
        terminate_sessions(client, ENDPOINT, "nina")


def test_a_user_with_more_than_five_sessions_has_them_all_cut(ec2: tuple[Any, Stubber]) -> None:
    """By Username AWS cuts up to five; the sixth, still active, is cut by its id (the alert path's code)."""
    client, stubber = ec2
    first_five = [f"cvpn-connection-{number}" for number in range(1, 6)]
    stubber.add_response(
        "terminate_client_vpn_connections",
        {"Username": "nina", "ConnectionStatuses": [_status(cid) for cid in first_five]},
        {"ClientVpnEndpointId": ENDPOINT, "Username": "nina"},
    )
    stubber.add_response(
        "describe_client_vpn_connections",
        {
            "Connections": [
                *(
                    {"ConnectionId": cid, "Username": "nina", "Status": {"Code": "terminating"}}
                    for cid in first_five
                ),
                {"ConnectionId": "cvpn-connection-6", "Username": "nina", "Status": {"Code": "active"}},
            ]
        },
        {"ClientVpnEndpointId": ENDPOINT},
    )
    stubber.add_response(
        "terminate_client_vpn_connections",
        {"ConnectionStatuses": [_status("cvpn-connection-6")]},
        {"ClientVpnEndpointId": ENDPOINT, "ConnectionId": "cvpn-connection-6"},
    )

    cut = terminate_sessions(client, ENDPOINT, "nina")

    assert [s["ConnectionId"] for s in cut] == [*first_five, "cvpn-connection-6"]
