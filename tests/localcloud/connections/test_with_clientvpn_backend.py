"""The simulation against the real local Client VPN backend, observed through the EC2 API with boto3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localcloud.clientvpn import install
from localcloud.clientvpn.connections import (
    authentication_failure_count_by_id,
    simulate_connect_by_id,
)
from localcloud.clock import Clock
from tests.localcloud.connections.support import ACCOUNT_ID, LOG_GROUP, LOG_STREAM, REGION, read_records

ASSOCIATION_SECONDS = 240  # DEFAULT_TIMINGS.association_seconds of the backend


@pytest.fixture
def ec2(clock: Clock) -> Iterator[Any]:
    """An EC2 client of moto extended with Client VPN, and the connection log group."""
    install()
    with mock_aws():
        boto3.client("logs", region_name=REGION).create_log_group(logGroupName=LOG_GROUP)
        yield boto3.client("ec2", region_name=REGION)


@pytest.fixture
def endpoint_id(ec2: Any) -> str:
    """A mutual-TLS endpoint with logging on and one subnet association requested (not yet complete)."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    certificate = boto3.client("acm", region_name=REGION).request_certificate(DomainName="vpn.example.com")
    endpoint = ec2.create_client_vpn_endpoint(
        ClientCidrBlock="10.100.0.0/22",
        ServerCertificateArn=certificate["CertificateArn"],
        AuthenticationOptions=[
            {
                "Type": "certificate-authentication",
                "MutualAuthentication": {"ClientRootCertificateChainArn": certificate["CertificateArn"]},
            }
        ],
        ConnectionLogOptions={
            "Enabled": True,
            "CloudwatchLogGroup": LOG_GROUP,
            "CloudwatchLogStream": LOG_STREAM,
        },
    )
    ec2.associate_client_vpn_target_network(
        ClientVpnEndpointId=endpoint["ClientVpnEndpointId"], SubnetId=subnet_id
    )
    return str(endpoint["ClientVpnEndpointId"])


def test_connection_lifecycle_through_the_api(ec2: Any, endpoint_id: str, clock: Clock) -> None:
    """Connect once the association completes, list, filter and terminate through the EC2 API."""
    early = simulate_connect_by_id(ACCOUNT_ID, REGION, endpoint_id)
    assert not early.connected and not early.logged

    clock.advance(ASSOCIATION_SECONDS)
    result = simulate_connect_by_id(ACCOUNT_ID, REGION, endpoint_id, common_name="alice")
    assert result.connected and result.connection_id is not None

    [listed] = ec2.describe_client_vpn_connections(
        ClientVpnEndpointId=endpoint_id, Filters=[{"Name": "connection-id", "Values": [result.connection_id]}]
    )["Connections"]
    assert listed["ConnectionId"] == result.connection_id
    assert listed["Status"]["Code"] == "active"
    assert listed["CommonName"] == "alice"
    assert listed["ClientIp"] == read_records()[0]["client-ip"]

    clock.advance(60)
    [terminated] = ec2.terminate_client_vpn_connections(
        ClientVpnEndpointId=endpoint_id, ConnectionId=result.connection_id
    )["ConnectionStatuses"]
    assert terminated["PreviousStatus"]["Code"] == "active"
    assert terminated["CurrentStatus"]["Code"] == "terminated"

    records = read_records()
    assert [record["connection-end-time"] != "NA" for record in records] == [False, True]
    assert records[1]["connection-duration-seconds"] == "60"
    [after] = ec2.describe_client_vpn_connections(ClientVpnEndpointId=endpoint_id)["Connections"]
    assert after["Status"]["Code"] == "terminated" and "ConnectionEndTime" in after


def test_removing_the_last_association_ends_connections(ec2: Any, endpoint_id: str, clock: Clock) -> None:
    """When the endpoint stops serving, every active connection is terminated with an end record."""
    clock.advance(ASSOCIATION_SECONDS)
    result = simulate_connect_by_id(ACCOUNT_ID, REGION, endpoint_id)
    [association] = ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id)[
        "ClientVpnTargetNetworks"
    ]

    ec2.disassociate_client_vpn_target_network(
        ClientVpnEndpointId=endpoint_id, AssociationId=association["AssociationId"]
    )
    clock.advance(3600)
    [listed] = ec2.describe_client_vpn_connections(ClientVpnEndpointId=endpoint_id)["Connections"]

    assert listed["ConnectionId"] == result.connection_id
    assert listed["Status"]["Code"] == "terminated"
    assert read_records()[-1]["connection-end-time"] != "NA"


def test_certificate_failures_are_counted_by_id(endpoint_id: str, clock: Clock) -> None:
    """authentication_failure_count_by_id reads the count kept for the backend's endpoint."""
    clock.advance(ASSOCIATION_SECONDS)
    simulate_connect_by_id(ACCOUNT_ID, REGION, endpoint_id, outcome="failure")

    assert authentication_failure_count_by_id(ACCOUNT_ID, REGION, endpoint_id) == 1


def test_a_certificate_users_common_name_is_no_username(ec2: Any, endpoint_id: str, clock: Clock) -> None:
    """Given a client connected with a certificate alone (common name ``alice``), as on AWS, where a
    Username is an Active Directory or SAML user name: DescribeClientVpnConnections shows its
    CommonName and no Username, the ``username`` filter does not find it by the common name, and
    TerminateClientVpnConnections with Username ``alice`` answers UserNotFound and leaves it up; only
    its ConnectionId cuts it."""
    clock.advance(ASSOCIATION_SECONDS)
    result = simulate_connect_by_id(ACCOUNT_ID, REGION, endpoint_id, common_name="alice")
    assert result.connected and result.connection_id is not None

    [listed] = ec2.describe_client_vpn_connections(ClientVpnEndpointId=endpoint_id)["Connections"]
    assert listed["CommonName"] == "alice" and "Username" not in listed
    by_username = ec2.describe_client_vpn_connections(
        ClientVpnEndpointId=endpoint_id, Filters=[{"Name": "username", "Values": ["alice"]}]
    )["Connections"]
    assert by_username == []
    with pytest.raises(ClientError) as refused:
        ec2.terminate_client_vpn_connections(ClientVpnEndpointId=endpoint_id, Username="alice")
    assert refused.value.response["Error"]["Code"] == "InvalidClientVpnConnection.UserNotFound"
    [still] = ec2.describe_client_vpn_connections(ClientVpnEndpointId=endpoint_id)["Connections"]
    assert still["Status"]["Code"] == "active"

    [cut] = ec2.terminate_client_vpn_connections(
        ClientVpnEndpointId=endpoint_id, ConnectionId=result.connection_id
    )["ConnectionStatuses"]
    assert cut["CurrentStatus"]["Code"] == "terminated"


def test_changing_the_server_certificate_resets_connections(ec2: Any, endpoint_id: str, clock: Clock) -> None:
    """AWS resets the connections when the server certificate changes; naming the same one does not."""
    clock.advance(ASSOCIATION_SECONDS)
    first = simulate_connect_by_id(ACCOUNT_ID, REGION, endpoint_id)
    [endpoint] = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"]
    ec2.modify_client_vpn_endpoint(
        ClientVpnEndpointId=endpoint_id, ServerCertificateArn=endpoint["ServerCertificateArn"]
    )
    [same] = ec2.describe_client_vpn_connections(ClientVpnEndpointId=endpoint_id)["Connections"]
    assert (same["ConnectionId"], same["Status"]["Code"]) == (first.connection_id, "active")

    renewed = boto3.client("acm", region_name=REGION).request_certificate(DomainName="vpn.example.com")
    ec2.modify_client_vpn_endpoint(
        ClientVpnEndpointId=endpoint_id, ServerCertificateArn=renewed["CertificateArn"]
    )
    [reset] = ec2.describe_client_vpn_connections(ClientVpnEndpointId=endpoint_id)["Connections"]
    assert (reset["ConnectionId"], reset["Status"]["Code"]) == (first.connection_id, "terminated")
    [changed] = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"]
    assert changed["ServerCertificateArn"] == renewed["CertificateArn"]
