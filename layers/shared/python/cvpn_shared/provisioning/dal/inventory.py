"""Data access for pre-flight validation: what exists in the account, read-only.

Each lookup answers ``None`` (or leaves an id out) when the thing does not exist, so the pre-flight
logic can name every missing reference at once instead of stopping at the first error. Throttling
or a server error that outlasts the SDK's own retries is raised as the named, retryable error of
``cvpn_shared.provisioning.errors`` (``RequestLimitExceeded``, ``ServerError``), so Step Functions
retries the validation instead of rejecting the request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from cvpn_shared.provisioning.errors import raise_if_retryable

__all__ = [
    "AwsInventory",
    "NatGatewayInfo",
    "NetworkFacts",
    "RouteTableRoute",
    "SubnetInfo",
    "VpcInfo",
]

T = TypeVar("T")

_NOT_FOUND = {
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidGroupId.Malformed",
    "ResourceNotFoundException",
    "EntityDoesNotExistException",
    "NoSuchEntity",
    "InvalidParameterValue",
}


@dataclass(frozen=True)
class VpcInfo:
    vpc_id: str
    cidr_blocks: tuple[str, ...]
    tenancy: str


@dataclass(frozen=True)
class SubnetInfo:
    subnet_id: str
    vpc_id: str
    availability_zone: str
    cidr_block: str


@dataclass(frozen=True)
class RouteTableRoute:
    """One route of a VPC route table: where it goes and through what."""

    destination: str  # an IPv4 or IPv6 CIDR (prefix-list routes are left out)
    target: str  # the target's id (igw-..., nat-..., tgw-..., eni-..., pcx-...) or "local"
    state: str  # active | blackhole


@dataclass(frozen=True)
class NatGatewayInfo:
    nat_gateway_id: str
    state: str  # pending | available | deleting | deleted | failed
    connectivity_type: str  # public | private (a private NAT gateway does not reach the internet)


@dataclass(frozen=True)
class NetworkFacts:
    """What Describe calls tell about a VPC's paths out, for the checks across rules and routes.

    ``subnet_route_tables`` maps each subnet asked about to the route table that applies to it: its
    explicitly associated table, else the VPC's main table (absent when neither could be read).
    """

    vpc_id: str
    subnet_route_tables: dict[str, str]
    route_tables: dict[str, tuple[RouteTableRoute, ...]]
    internet_gateway_ids: frozenset[str]  # internet gateways attached to the VPC
    egress_only_internet_gateway_ids: frozenset[str]  # egress-only gateways attached to the VPC
    nat_gateways: dict[str, NatGatewayInfo]
    default_security_group_id: str | None


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _NOT_FOUND


def _unless_missing(lookup: Callable[[], T]) -> T | None:
    """What ``lookup`` answers; None when the thing it asks for does not exist. Throttling and server
    errors are raised as the named, retryable errors."""
    try:
        return lookup()
    except ClientError as error:
        if _missing(error):
            return None
        raise_if_retryable(error, error.operation_name)
        raise


class AwsInventory:
    """Read-only lookups over boto3 clients from ``client_factory(service_name)``."""

    def __init__(self, client_factory: Any) -> None:
        self._client = client_factory

    def vpc(self, vpc_id: str) -> VpcInfo | None:
        vpcs = _unless_missing(lambda: self._client("ec2").describe_vpcs(VpcIds=[vpc_id])["Vpcs"])
        if not vpcs:
            return None
        vpc = vpcs[0]
        cidrs = [vpc["CidrBlock"]] + [
            item["CidrBlock"]
            for item in vpc.get("CidrBlockAssociationSet", [])
            if item.get("CidrBlockState", {}).get("State", "associated") == "associated"
        ]
        return VpcInfo(
            vpc_id=vpc_id,
            cidr_blocks=tuple(dict.fromkeys(cidrs)),
            tenancy=vpc.get("InstanceTenancy", "default"),
        )

    def subnets(self, subnet_ids: list[str]) -> dict[str, SubnetInfo]:
        """The subnets that exist, by id (one call per id so one missing id hides no other)."""
        ec2 = self._client("ec2")
        found: dict[str, SubnetInfo] = {}
        for subnet_id in subnet_ids:
            answer = _unless_missing(partial(ec2.describe_subnets, SubnetIds=[subnet_id]))
            if answer is None:
                continue
            for subnet in answer["Subnets"]:
                found[subnet["SubnetId"]] = SubnetInfo(
                    subnet_id=subnet["SubnetId"],
                    vpc_id=subnet["VpcId"],
                    availability_zone=subnet["AvailabilityZone"],
                    cidr_block=subnet["CidrBlock"],
                )
        return found

    def security_groups(self, group_ids: list[str]) -> dict[str, str]:
        """Existing security groups: id -> VPC id."""
        ec2 = self._client("ec2")
        found: dict[str, str] = {}
        for group_id in group_ids:
            answer = _unless_missing(partial(ec2.describe_security_groups, GroupIds=[group_id]))
            if answer is None:
                continue
            for group in answer["SecurityGroups"]:
                found[group["GroupId"]] = group.get("VpcId", "")
        return found

    def certificate_status(self, certificate_arn: str) -> str | None:
        certificate = _unless_missing(
            lambda: self._client("acm").describe_certificate(CertificateArn=certificate_arn)["Certificate"]
        )
        if certificate is None:
            return None
        return str(certificate.get("Status", "ISSUED"))

    def directory_stage(self, directory_id: str) -> str | None:
        directories = _unless_missing(
            lambda: self._client("ds").describe_directories(DirectoryIds=[directory_id])[
                "DirectoryDescriptions"
            ]
        )
        return str(directories[0].get("Stage", "Active")) if directories else None

    def saml_provider_exists(self, provider_arn: str) -> bool:
        answer = _unless_missing(lambda: self._client("iam").get_saml_provider(SAMLProviderArn=provider_arn))
        return answer is not None

    def client_vpn_endpoints(self) -> list[dict[str, Any]]:
        ec2 = self._client("ec2")
        endpoints: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            try:
                page = ec2.describe_client_vpn_endpoints(**({"NextToken": token} if token else {}))
            except ClientError as error:
                raise_if_retryable(error, error.operation_name)
                raise
            endpoints.extend(page.get("ClientVpnEndpoints", []))
            token = page.get("NextToken")
            if not token:
                return endpoints

    def network_facts(self, vpc_id: str, subnet_ids: list[str]) -> NetworkFacts:
        """Route tables, gateways and the default security group of ``vpc_id`` (read-only)."""
        ec2 = self._client("ec2")
        vpc_filter = [{"Name": "vpc-id", "Values": [vpc_id]}]
        tables = self._pages(ec2, "describe_route_tables", "RouteTables", Filters=vpc_filter)
        route_tables: dict[str, tuple[RouteTableRoute, ...]] = {}
        explicit: dict[str, str] = {}
        main_table: str | None = None
        for table in tables:
            table_id = table["RouteTableId"]
            route_tables[table_id] = tuple(
                RouteTableRoute(
                    destination=route.get("DestinationCidrBlock") or route["DestinationIpv6CidrBlock"],
                    target=_route_target(route),
                    state=route.get("State", "active"),
                )
                for route in table.get("Routes", [])
                if route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock")
            )
            for association in table.get("Associations", []):
                if association.get("Main"):
                    main_table = table_id
                elif association.get("SubnetId"):
                    explicit[association["SubnetId"]] = table_id
        subnet_route_tables = {
            subnet_id: table_id
            for subnet_id in subnet_ids
            if (table_id := explicit.get(subnet_id, main_table)) is not None
        }
        attachment_filter = [{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
        internet = self._pages(
            ec2, "describe_internet_gateways", "InternetGateways", Filters=attachment_filter
        )
        egress_only = self._pages(ec2, "describe_egress_only_internet_gateways", "EgressOnlyInternetGateways")
        nats = self._pages(ec2, "describe_nat_gateways", "NatGateways", Filter=vpc_filter)
        groups = self._pages(
            ec2,
            "describe_security_groups",
            "SecurityGroups",
            Filters=[*vpc_filter, {"Name": "group-name", "Values": ["default"]}],
        )
        return NetworkFacts(
            vpc_id=vpc_id,
            subnet_route_tables=subnet_route_tables,
            route_tables=route_tables,
            internet_gateway_ids=frozenset(
                gateway["InternetGatewayId"]
                for gateway in internet
                if any(
                    attachment.get("VpcId") == vpc_id and attachment.get("State") in ("available", "attached")
                    for attachment in gateway.get("Attachments", [])
                )
            ),
            egress_only_internet_gateway_ids=frozenset(
                gateway["EgressOnlyInternetGatewayId"]
                for gateway in egress_only
                if any(
                    attachment.get("VpcId") == vpc_id and attachment.get("State") in ("available", "attached")
                    for attachment in gateway.get("Attachments", [])
                )
            ),
            nat_gateways={
                nat["NatGatewayId"]: NatGatewayInfo(
                    nat_gateway_id=nat["NatGatewayId"],
                    state=nat.get("State", "available"),
                    connectivity_type=nat.get("ConnectivityType", "public"),
                )
                for nat in nats
            },
            default_security_group_id=groups[0]["GroupId"] if groups else None,
        )

    @staticmethod
    def _pages(ec2: Any, method: str, key: str, **arguments: Any) -> list[dict[str, Any]]:
        """Every item of a paged Describe call; throttling and server errors raised as retryable."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            try:
                page = getattr(ec2, method)(**arguments, **({"NextToken": token} if token else {}))
            except ClientError as error:
                raise_if_retryable(error, error.operation_name)
                raise
            items.extend(page.get(key, []))
            token = page.get("NextToken")
            if not token:
                return items


_ROUTE_TARGETS = (
    "GatewayId",
    "NatGatewayId",
    "EgressOnlyInternetGatewayId",
    "TransitGatewayId",
    "NetworkInterfaceId",
    "VpcPeeringConnectionId",
    "InstanceId",
    "LocalGatewayId",
    "CarrierGatewayId",
    "CoreNetworkArn",
)


def _route_target(route: dict[str, Any]) -> str:
    for key in _ROUTE_TARGETS:
        if route.get(key):
            return str(route[key])
    return "unknown"
