"""Authorization rules and routes: timed states, duplicates, quotas, filters, idempotency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.clientvpn.models import ClientVpnBackend
from localcloud.clock import Clock
from tests.localcloud.clientvpn.support import Network, error_code


@pytest.fixture
def available_endpoint(
    ec2: Any,
    network: Network,
    create_endpoint: Callable[..., str],
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> str:
    """An endpoint with two completed associations (subnets in a and b)."""
    endpoint_id = create_endpoint()
    for subnet in network.subnet_ids[:2]:
        ec2.associate_client_vpn_target_network(ClientVpnEndpointId=endpoint_id, SubnetId=subnet)
    frozen_clock.advance(backend.timings.association_seconds)
    return endpoint_id


def rules(ec2: Any, endpoint_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    response = ec2.describe_client_vpn_authorization_rules(ClientVpnEndpointId=endpoint_id, **kwargs)
    return list(response["AuthorizationRules"])


def manual_routes(ec2: Any, endpoint_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    response = ec2.describe_client_vpn_routes(
        ClientVpnEndpointId=endpoint_id, Filters=[{"Name": "origin", "Values": ["add-route"]}], **kwargs
    )
    return list(response["Routes"])


def test_authorization_rule_becomes_active(
    ec2: Any, create_endpoint: Callable[..., str], frozen_clock: Clock, backend: ClientVpnBackend
) -> None:
    """Rules can be added before any association; authorizing for 30 emulated seconds, then active."""
    endpoint_id = create_endpoint()
    response = ec2.authorize_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.0.0.0/16", AccessGroupId="S-1-5-21-engineers"
    )
    assert response["Status"] == {"Code": "authorizing"}
    assert rules(ec2, endpoint_id)[0]["Status"]["Code"] == "authorizing"
    frozen_clock.advance(backend.timings.authorization_seconds)
    rule = rules(ec2, endpoint_id)[0]
    assert rule["Status"]["Code"] == "active"
    assert rule["GroupId"] == "S-1-5-21-engineers"
    assert rule["AccessAll"] is False
    assert rule["DestinationCidr"] == "10.0.0.0/16"


def test_authorization_rule_errors(
    ec2: Any, create_endpoint: Callable[..., str], backend: ClientVpnBackend
) -> None:
    endpoint_id = create_endpoint()
    ec2.authorize_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.0.0.0/16", AuthorizeAllGroups=True
    )
    with pytest.raises(ClientError) as excinfo:
        ec2.authorize_client_vpn_ingress(
            ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.0.0.0/16", AuthorizeAllGroups=True
        )
    assert error_code(excinfo) == "InvalidClientVpnDuplicateAuthorizationRule"
    with pytest.raises(ClientError) as excinfo:
        ec2.authorize_client_vpn_ingress(ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.1.0.0/16")
    assert error_code(excinfo) == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        ec2.revoke_client_vpn_ingress(
            ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.9.0.0/16", RevokeAllGroups=True
        )
    assert error_code(excinfo) == "InvalidClientVpnEndpointAuthorizationRuleNotFound"


def test_authorization_rule_quota(
    ec2: Any, create_endpoint: Callable[..., str], frozen_clock: Clock, backend: ClientVpnBackend
) -> None:
    backend.quotas.authorization_rules_per_endpoint = 3
    endpoint_id = create_endpoint()
    for index in range(3):
        ec2.authorize_client_vpn_ingress(
            ClientVpnEndpointId=endpoint_id, TargetNetworkCidr=f"10.{index}.0.0/16", AuthorizeAllGroups=True
        )
    with pytest.raises(ClientError) as excinfo:
        ec2.authorize_client_vpn_ingress(
            ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.9.0.0/16", AuthorizeAllGroups=True
        )
    assert error_code(excinfo) == "ClientVpnAuthorizationRuleLimitExceeded"


def test_revoke_removes_rule(ec2: Any, create_endpoint: Callable[..., str]) -> None:
    endpoint_id = create_endpoint()
    ec2.authorize_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.0.0.0/16", AccessGroupId="admins"
    )
    response = ec2.revoke_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="10.0.0.0/16", AccessGroupId="admins"
    )
    assert response["Status"] == {"Code": "revoking"}
    assert rules(ec2, endpoint_id) == []


def test_authorization_rule_filters_and_idempotency(ec2: Any, create_endpoint: Callable[..., str]) -> None:
    endpoint_id = create_endpoint()
    ec2.authorize_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id,
        TargetNetworkCidr="10.0.0.0/16",
        AccessGroupId="admins",
        Description="admins to the VPC",
        ClientToken="rule-1",
    )
    ec2.authorize_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id,
        TargetNetworkCidr="10.0.0.0/16",
        AccessGroupId="admins",
        Description="admins to the VPC",
        ClientToken="rule-1",
    )
    ec2.authorize_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="192.168.0.0/16", AuthorizeAllGroups=True
    )
    assert len(rules(ec2, endpoint_id)) == 2
    with pytest.raises(ClientError) as excinfo:
        ec2.authorize_client_vpn_ingress(
            ClientVpnEndpointId=endpoint_id,
            TargetNetworkCidr="10.0.0.0/16",
            AccessGroupId="ops",
            ClientToken="rule-1",
        )
    assert error_code(excinfo) == "IdempotentParameterMismatch"

    by_description = rules(
        ec2, endpoint_id, Filters=[{"Name": "description", "Values": ["admins to the VPC"]}]
    )
    assert [r["GroupId"] for r in by_description] == ["admins"]
    by_cidr = rules(ec2, endpoint_id, Filters=[{"Name": "destination-cidr", "Values": ["192.168.0.0/16"]}])
    assert [r["AccessAll"] for r in by_cidr] == [True]
    assert len(rules(ec2, endpoint_id, Filters=[{"Name": "group-id", "Values": ["admins"]}])) == 1
    assert len(rules(ec2, endpoint_id, MaxResults=5)) == 2


def test_route_lifecycle(
    ec2: Any, network: Network, available_endpoint: str, frozen_clock: Clock, backend: ClientVpnBackend
) -> None:
    """creating for 90 emulated seconds, then active; deleting for 90, then gone."""
    endpoint_id = available_endpoint
    response = ec2.create_client_vpn_route(
        ClientVpnEndpointId=endpoint_id,
        DestinationCidrBlock="0.0.0.0/0",
        TargetVpcSubnetId=network.subnet_ids[0],
        Description="internet",
    )
    assert response["Status"] == {"Code": "creating"}
    assert manual_routes(ec2, endpoint_id)[0]["Status"]["Code"] == "creating"
    frozen_clock.advance(backend.timings.route_seconds)
    route = manual_routes(ec2, endpoint_id)[0]
    assert (route["Status"]["Code"], route["Origin"], route["Description"]) == (
        "active",
        "add-route",
        "internet",
    )

    response = ec2.delete_client_vpn_route(
        ClientVpnEndpointId=endpoint_id,
        DestinationCidrBlock="0.0.0.0/0",
        TargetVpcSubnetId=network.subnet_ids[0],
    )
    assert response["Status"] == {"Code": "deleting"}
    assert manual_routes(ec2, endpoint_id)[0]["Status"]["Code"] == "deleting"
    frozen_clock.advance(backend.timings.route_seconds)
    assert manual_routes(ec2, endpoint_id) == []


def test_route_needs_an_active_association(
    ec2: Any,
    network: Network,
    create_endpoint: Callable[..., str],
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> None:
    endpoint_id = create_endpoint()
    ec2.associate_client_vpn_target_network(ClientVpnEndpointId=endpoint_id, SubnetId=network.subnet_ids[0])
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_route(
            ClientVpnEndpointId=endpoint_id,
            DestinationCidrBlock="0.0.0.0/0",
            TargetVpcSubnetId=network.subnet_ids[0],
        )
    assert error_code(excinfo) == "InvalidClientVpnActiveAssociationNotFound"
    frozen_clock.advance(backend.timings.association_seconds)
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_route(
            ClientVpnEndpointId=endpoint_id,
            DestinationCidrBlock="0.0.0.0/0",
            TargetVpcSubnetId=network.subnet_ids[1],
        )
    assert error_code(excinfo) == "InvalidClientVpnActiveAssociationNotFound"


def test_route_errors(ec2: Any, network: Network, available_endpoint: str, backend: ClientVpnBackend) -> None:
    endpoint_id = available_endpoint
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_route(
            ClientVpnEndpointId=endpoint_id,
            DestinationCidrBlock=network.vpc_cidr,
            TargetVpcSubnetId=network.subnet_ids[0],
        )
    assert error_code(excinfo) == "InvalidClientVpnDuplicateRoute"
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_route(
            ClientVpnEndpointId=endpoint_id,
            DestinationCidrBlock="172.16.1.0/24",
            TargetVpcSubnetId=network.subnet_ids[0],
        )
    assert error_code(excinfo) == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_client_vpn_route(
            ClientVpnEndpointId=endpoint_id,
            DestinationCidrBlock="192.168.0.0/16",
            TargetVpcSubnetId=network.subnet_ids[0],
        )
    assert error_code(excinfo) == "InvalidClientVpnRouteNotFound"
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_client_vpn_route(
            ClientVpnEndpointId=endpoint_id,
            DestinationCidrBlock=network.vpc_cidr,
            TargetVpcSubnetId=network.subnet_ids[0],
        )
    assert error_code(excinfo) == "InvalidParameterValue"


def test_route_quota_per_subnet(
    ec2: Any, network: Network, available_endpoint: str, frozen_clock: Clock, backend: ClientVpnBackend
) -> None:
    backend.quotas.routes_per_associated_subnet = 3  # the automatic VPC route counts as one
    for index in range(2):
        ec2.create_client_vpn_route(
            ClientVpnEndpointId=available_endpoint,
            DestinationCidrBlock=f"192.168.{index}.0/24",
            TargetVpcSubnetId=network.subnet_ids[0],
        )
    frozen_clock.advance(backend.timings.route_seconds)
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_route(
            ClientVpnEndpointId=available_endpoint,
            DestinationCidrBlock="192.168.9.0/24",
            TargetVpcSubnetId=network.subnet_ids[0],
        )
    assert error_code(excinfo) == "ClientVpnRouteLimitExceeded"


def test_route_filters_and_idempotency(ec2: Any, network: Network, available_endpoint: str) -> None:
    endpoint_id = available_endpoint
    for subnet in network.subnet_ids[:2]:
        for _ in range(2):
            ec2.create_client_vpn_route(
                ClientVpnEndpointId=endpoint_id,
                DestinationCidrBlock="0.0.0.0/0",
                TargetVpcSubnetId=subnet,
                ClientToken=f"route-{subnet}",
            )
    with pytest.raises(ClientError) as excinfo:
        ec2.create_client_vpn_route(
            ClientVpnEndpointId=endpoint_id,
            DestinationCidrBlock="1.1.1.1/32",
            TargetVpcSubnetId=network.subnet_ids[0],
            ClientToken=f"route-{network.subnet_ids[0]}",
        )
    assert error_code(excinfo) == "IdempotentParameterMismatch"

    def routes(filters: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        response = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id, Filters=filters)
        return sorted((r["DestinationCidr"], r["TargetSubnet"], r["Origin"]) for r in response["Routes"])

    assert len(routes([])) == 4
    assert routes([{"Name": "origin", "Values": ["associate"]}]) == sorted(
        (network.vpc_cidr, subnet, "associate") for subnet in network.subnet_ids[:2]
    )
    assert routes(
        [
            {"Name": "destination-cidr", "Values": ["0.0.0.0/0"]},
            {"Name": "target-subnet", "Values": [network.subnet_ids[1]]},
        ]
    ) == [("0.0.0.0/0", network.subnet_ids[1], "add-route")]
    first = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id, MaxResults=5)
    assert len(first["Routes"]) == 4 and "NextToken" not in first
