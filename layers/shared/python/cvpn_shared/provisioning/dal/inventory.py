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

__all__ = ["AwsInventory", "SubnetInfo", "VpcInfo"]

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
