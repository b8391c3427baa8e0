"""AwsInventory.network_facts over moto's EC2: route tables, gateways and the default group."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn_shared.provisioning.dal.inventory import AwsInventory, RouteTableRoute

REGION = "us-east-1"


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def test_facts_name_each_subnets_table_and_the_ways_out(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    public, private, plain = (
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2, 3)
    )
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    ec2.create_internet_gateway()  # another gateway, attached nowhere
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    public_table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=public_table, SubnetId=public)
    private_table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=private_table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.associate_route_table(RouteTableId=private_table, SubnetId=private)

    facts = AwsInventory(lambda service: ec2).network_facts(vpc_id, [public, private, plain])

    main_table = facts.subnet_route_tables[plain]
    assert facts.subnet_route_tables[public] == public_table
    assert facts.subnet_route_tables[private] == private_table
    assert main_table not in (public_table, private_table)
    assert RouteTableRoute("0.0.0.0/0", igw, "active") in facts.route_tables[public_table]
    assert RouteTableRoute("0.0.0.0/0", nat, "active") in facts.route_tables[private_table]
    assert RouteTableRoute("10.0.0.0/16", "local", "active") in facts.route_tables[main_table]
    assert facts.internet_gateway_ids == frozenset({igw})
    assert facts.nat_gateways[nat].connectivity_type == "public"
    default_group = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    assert facts.default_security_group_id == default_group
