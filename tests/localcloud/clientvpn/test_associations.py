"""Target-network associations: timed states, automatic routes, placement rules, disassociation."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localcloud.clientvpn.models import ClientVpnBackend
from localcloud.clock import Clock
from tests.localcloud.clientvpn.support import (
    REGION,
    FakeConnection,
    Network,
    association_state,
    endpoint_state,
    error_code,
)


def associate(ec2: Any, endpoint_id: str, subnet_id: str, **extra: Any) -> str:
    response = ec2.associate_client_vpn_target_network(
        ClientVpnEndpointId=endpoint_id, SubnetId=subnet_id, **extra
    )
    return str(response["AssociationId"])


def test_association_lifecycle_and_automatic_route(
    ec2: Any,
    network: Network,
    create_endpoint: Callable[..., str],
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> None:
    """associating for 240 emulated seconds, then associated with a VPC route; endpoint becomes available."""
    endpoint_id = create_endpoint()
    response = ec2.associate_client_vpn_target_network(
        ClientVpnEndpointId=endpoint_id, SubnetId=network.subnet_ids[0]
    )
    association_id = response["AssociationId"]
    assert re.fullmatch(r"cvpn-assoc-[0-9a-f]{17}", association_id)
    assert response["Status"] == {"Code": "associating"}
    assert backend.timings.association_seconds == 240

    frozen_clock.advance(239)
    assert association_state(ec2, endpoint_id, association_id) == "associating"
    assert endpoint_state(ec2, endpoint_id) == "pending-associate"
    assert ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"] == []

    frozen_clock.advance(1)
    assert association_state(ec2, endpoint_id, association_id) == "associated"
    assert endpoint_state(ec2, endpoint_id) == "available"
    routes = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
    assert [(r["DestinationCidr"], r["TargetSubnet"], r["Origin"], r["Status"]["Code"]) for r in routes] == [
        (network.vpc_cidr, network.subnet_ids[0], "associate", "active")
    ]


def test_first_association_sets_vpc_and_default_security_group(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint()
    association_id = associate(ec2, endpoint_id, network.subnet_ids[0])

    endpoint = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"][0]
    assert endpoint["VpcId"] == network.vpc_id
    assert endpoint["SecurityGroupIds"] == [network.default_security_group_id]
    assert endpoint["AssociatedTargetNetworks"] == [
        {"NetworkId": network.subnet_ids[0], "NetworkType": "vpc"}
    ]
    target = ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id)[
        "ClientVpnTargetNetworks"
    ][0]
    assert target["AssociationId"] == association_id
    assert target["VpcId"] == network.vpc_id
    assert target["TargetNetworkId"] == network.subnet_ids[0]
    assert target["SecurityGroups"] == [network.default_security_group_id]


def test_duplicate_subnet_rejected(ec2: Any, network: Network, create_endpoint: Callable[..., str]) -> None:
    endpoint_id = create_endpoint()
    associate(ec2, endpoint_id, network.subnet_ids[0])
    with pytest.raises(ClientError) as excinfo:
        associate(ec2, endpoint_id, network.subnet_ids[0])
    assert error_code(excinfo) == "InvalidClientVpnDuplicateAssociationException"


def test_one_subnet_per_availability_zone(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint()
    associate(ec2, endpoint_id, network.subnet_ids[0])
    same_az = ec2.create_subnet(
        VpcId=network.vpc_id, CidrBlock="10.0.10.0/24", AvailabilityZone=f"{REGION}a"
    )["Subnet"]["SubnetId"]
    with pytest.raises(ClientError) as excinfo:
        associate(ec2, endpoint_id, same_az)
    assert error_code(excinfo) == "InvalidClientVpnSubnetId.DuplicateAz"


def test_subnets_must_share_the_endpoint_vpc(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint()
    associate(ec2, endpoint_id, network.subnet_ids[0])
    with pytest.raises(ClientError) as excinfo:
        associate(ec2, endpoint_id, network.other_subnet_id)
    assert error_code(excinfo) == "InvalidParameterValue"


def test_subnet_overlapping_client_cidr(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    vpc = ec2.create_vpc(CidrBlock="172.16.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="172.16.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"][
        "SubnetId"
    ]
    endpoint_id = create_endpoint(ClientCidrBlock="172.16.0.0/22")
    with pytest.raises(ClientError) as excinfo:
        associate(ec2, endpoint_id, subnet)
    assert error_code(excinfo) == "InvalidClientVpnSubnetId.OverlappingCidr"


def test_client_cidr_overlapping_vpc_cidr(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint(ClientCidrBlock="10.0.128.0/22")
    with pytest.raises(ClientError) as excinfo:
        associate(ec2, endpoint_id, network.subnet_ids[0])
    assert error_code(excinfo) == "InvalidParameterValue"


def test_dedicated_tenancy_subnet_rejected(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16", InstanceTenancy="dedicated")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"][
        "SubnetId"
    ]
    endpoint_id = create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        associate(ec2, endpoint_id, subnet)
    assert error_code(excinfo) == "InvalidParameterValue"


def test_subnet_not_found(ec2: Any, network: Network, create_endpoint: Callable[..., str]) -> None:
    endpoint_id = create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        associate(ec2, endpoint_id, "subnet-0123456789abcdef0")
    assert error_code(excinfo) == "InvalidClientVpnSubnetId.NotFound"


def test_subnet_of_another_account(ec2: Any, network: Network, create_endpoint: Callable[..., str]) -> None:
    """A subnet that exists, but in another account, answers DifferentAccount."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn="arn:aws:iam::210987654321:role/network-admin", RoleSessionName="other"
    )["Credentials"]
    other_ec2 = boto3.client(
        "ec2",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    other_vpc = other_ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    foreign_subnet = other_ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.50.1.0/24")["Subnet"]["SubnetId"]
    endpoint_id = create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        associate(ec2, endpoint_id, foreign_subnet)
    assert error_code(excinfo) == "InvalidClientVpnSubnetId.DifferentAccount"


def test_association_idempotency(ec2: Any, network: Network, create_endpoint: Callable[..., str]) -> None:
    endpoint_id = create_endpoint()
    first = associate(ec2, endpoint_id, network.subnet_ids[0], ClientToken="assoc-1")
    assert associate(ec2, endpoint_id, network.subnet_ids[0], ClientToken="assoc-1") == first
    with pytest.raises(ClientError) as excinfo:
        associate(ec2, endpoint_id, network.subnet_ids[1], ClientToken="assoc-1")
    assert error_code(excinfo) == "IdempotentParameterMismatch"


def test_disassociating_last_subnet_resets_endpoint_and_terminates_connections(
    ec2: Any,
    network: Network,
    create_endpoint: Callable[..., str],
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> None:
    """Removing the last association: routes go, connections end, endpoint back to pending-associate."""
    endpoint_id = create_endpoint()
    association_id = associate(ec2, endpoint_id, network.subnet_ids[0])
    frozen_clock.advance(backend.timings.association_seconds)
    ec2.authorize_client_vpn_ingress(
        ClientVpnEndpointId=endpoint_id, TargetNetworkCidr="0.0.0.0/0", AuthorizeAllGroups=True
    )
    ec2.create_client_vpn_route(
        ClientVpnEndpointId=endpoint_id,
        DestinationCidrBlock="0.0.0.0/0",
        TargetVpcSubnetId=network.subnet_ids[0],
    )
    endpoint = backend.get_endpoint(endpoint_id)
    connection = FakeConnection(endpoint_id, "cvpn-connection-0123456789abcdef0", "alice")
    endpoint.connections[connection.connection_id] = connection

    response = ec2.disassociate_client_vpn_target_network(
        ClientVpnEndpointId=endpoint_id, AssociationId=association_id
    )
    assert response["Status"] == {"Code": "disassociating"}
    assert association_state(ec2, endpoint_id, association_id) == "disassociating"
    assert endpoint_state(ec2, endpoint_id) == "available"
    assert connection.status == "active"

    frozen_clock.advance(backend.timings.disassociation_seconds)
    assert endpoint_state(ec2, endpoint_id) == "pending-associate"
    assert (
        ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id)["ClientVpnTargetNetworks"]
        == []
    )
    assert ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"] == []
    assert connection.status == "terminated"
    assert (
        len(
            ec2.describe_client_vpn_authorization_rules(ClientVpnEndpointId=endpoint_id)["AuthorizationRules"]
        )
        == 1
    )


def test_disassociating_one_of_two_keeps_endpoint_available(
    ec2: Any,
    network: Network,
    create_endpoint: Callable[..., str],
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> None:
    endpoint_id = create_endpoint()
    first = associate(ec2, endpoint_id, network.subnet_ids[0])
    associate(ec2, endpoint_id, network.subnet_ids[1])
    frozen_clock.advance(backend.timings.association_seconds)
    assert len(ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]) == 2
    ec2.disassociate_client_vpn_target_network(ClientVpnEndpointId=endpoint_id, AssociationId=first)
    frozen_clock.advance(backend.timings.disassociation_seconds)
    assert endpoint_state(ec2, endpoint_id) == "available"
    routes = ec2.describe_client_vpn_routes(ClientVpnEndpointId=endpoint_id)["Routes"]
    assert [r["TargetSubnet"] for r in routes] == [network.subnet_ids[1]]


def test_disassociate_unknown_association(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        ec2.disassociate_client_vpn_target_network(
            ClientVpnEndpointId=endpoint_id, AssociationId="cvpn-assoc-0123456789abcdef0"
        )
    assert error_code(excinfo) == "InvalidClientVpnAssociationIdNotFound"


def test_delete_requires_no_associations(
    ec2: Any,
    network: Network,
    create_endpoint: Callable[..., str],
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> None:
    endpoint_id = create_endpoint()
    association_id = associate(ec2, endpoint_id, network.subnet_ids[0])
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id)
    assert error_code(excinfo) == "ClientVpnEndpointAssociationExists"
    assert association_id in excinfo.value.response["Error"]["Message"]

    ec2.disassociate_client_vpn_target_network(ClientVpnEndpointId=endpoint_id, AssociationId=association_id)
    frozen_clock.advance(backend.timings.disassociation_seconds)
    assert ec2.delete_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id)["Status"] == {"Code": "deleting"}


def test_target_network_filters_and_pagination(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint()
    ids = [associate(ec2, endpoint_id, subnet) for subnet in network.subnet_ids]

    def described(**kwargs: Any) -> list[str]:
        response = ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id, **kwargs)
        return [t["AssociationId"] for t in response["ClientVpnTargetNetworks"]]

    assert described(Filters=[{"Name": "association-id", "Values": [ids[1]]}]) == [ids[1]]
    assert described(Filters=[{"Name": "target-network-id", "Values": [network.subnet_ids[2]]}]) == [ids[2]]
    assert sorted(described(Filters=[{"Name": "vpc-id", "Values": [network.vpc_id]}])) == sorted(ids)
    assert described(Filters=[{"Name": "vpc-id", "Values": [network.other_vpc_id]}]) == []
    assert described(AssociationIds=[ids[0]]) == [ids[0]]
    assert sorted(described(MaxResults=5)) == sorted(ids)


def test_apply_security_groups(
    ec2: Any,
    network: Network,
    create_endpoint: Callable[..., str],
    frozen_clock: Clock,
    backend: ClientVpnBackend,
) -> None:
    endpoint_id = create_endpoint()
    associate(ec2, endpoint_id, network.subnet_ids[0])
    response = ec2.apply_security_groups_to_client_vpn_target_network(
        ClientVpnEndpointId=endpoint_id, VpcId=network.vpc_id, SecurityGroupIds=[network.security_group_id]
    )
    assert response["SecurityGroupIds"] == [network.security_group_id]
    target = ec2.describe_client_vpn_target_networks(ClientVpnEndpointId=endpoint_id)[
        "ClientVpnTargetNetworks"
    ][0]
    assert target["SecurityGroups"] == [network.security_group_id]
    assert backend.get_endpoint(endpoint_id).mutations_in_flight(frozen_clock.timestamp()) == 2

    groups = [
        ec2.create_security_group(GroupName=f"extra{i}", Description="x", VpcId=network.vpc_id)["GroupId"]
        for i in range(6)
    ]
    with pytest.raises(ClientError) as excinfo:
        ec2.apply_security_groups_to_client_vpn_target_network(
            ClientVpnEndpointId=endpoint_id, VpcId=network.vpc_id, SecurityGroupIds=groups
        )
    assert error_code(excinfo) == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        ec2.apply_security_groups_to_client_vpn_target_network(
            ClientVpnEndpointId=endpoint_id,
            VpcId=network.other_vpc_id,
            SecurityGroupIds=[network.security_group_id],
        )
    assert error_code(excinfo) == "InvalidParameterValue"


def test_apply_security_groups_needs_an_association(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint()
    with pytest.raises(ClientError) as excinfo:
        ec2.apply_security_groups_to_client_vpn_target_network(
            ClientVpnEndpointId=endpoint_id,
            VpcId=network.vpc_id,
            SecurityGroupIds=[network.security_group_id],
        )
    assert error_code(excinfo) == "InvalidClientVpnActiveAssociationNotFound"


def test_modify_vpc_refused_while_associated(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint()
    associate(ec2, endpoint_id, network.subnet_ids[0])
    with pytest.raises(ClientError) as excinfo:
        ec2.modify_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id, VpcId=network.other_vpc_id)
    assert error_code(excinfo) == "InvalidParameterValue"


def test_changing_dns_servers_resets_connections(
    ec2: Any, network: Network, create_endpoint: Callable[..., str], backend: ClientVpnBackend
) -> None:
    endpoint_id = create_endpoint(DnsServers=["10.0.0.2"])
    connection = FakeConnection(endpoint_id, "cvpn-connection-0000000000000000a", "carol")
    backend.get_endpoint(endpoint_id).connections[connection.connection_id] = connection
    ec2.modify_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id, Description="same DNS")
    assert connection.status == "active"
    ec2.modify_client_vpn_endpoint(
        ClientVpnEndpointId=endpoint_id, DnsServers={"CustomDnsServers": ["10.0.0.3"], "Enabled": True}
    )
    assert connection.status == "terminated"


def test_mutations_on_a_deleting_endpoint_are_refused(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    endpoint_id = create_endpoint()
    ec2.delete_client_vpn_endpoint(ClientVpnEndpointId=endpoint_id)
    with pytest.raises(ClientError) as excinfo:
        associate(ec2, endpoint_id, network.subnet_ids[0])
    assert error_code(excinfo) == "IncorrectState"
