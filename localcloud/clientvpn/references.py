"""Validation of the resources a Client VPN request names, against moto's own backends.

Each function looks the resource up where moto keeps it (EC2 VPCs, subnets and security groups,
ACM certificates, Directory Service directories, IAM SAML providers, CloudWatch Logs groups, Lambda
functions) and raises the EC2 error the real Client VPN API answers when it is missing.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from localcloud.clientvpn.exceptions import ClientVpnError, InvalidParameterValue

CLIENT_CONNECT_FUNCTION_PREFIX = "AWSClientVPN-"


def _ec2(account_id: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account_id][region]


def find_vpc(account_id: str, region: str, vpc_id: str) -> Any:
    """The moto VPC (raises InvalidVpcID.NotFound as EC2 does)."""
    return _ec2(account_id, region).get_vpc(vpc_id)


def ensure_default_tenancy(vpc: Any) -> None:
    """Client VPN does not support dedicated-tenancy VPCs."""
    if getattr(vpc, "instance_tenancy", "default") == "dedicated":
        raise InvalidParameterValue(f"Client VPN does not support VPCs with dedicated tenancy ({vpc.id}).")


def find_subnet(account_id: str, region: str, subnet_id: str) -> Any:
    """The moto subnet; NotFound, or DifferentAccount when another account owns it."""
    from moto.ec2.exceptions import InvalidSubnetIdError
    from moto.ec2.models import ec2_backends

    try:
        return _ec2(account_id, region).get_subnet(subnet_id)
    except InvalidSubnetIdError:
        pass
    for other_account, regional in dict.items(ec2_backends):
        if other_account == account_id:
            continue
        backend = dict.get(regional, region)
        if backend is None:
            continue
        try:
            backend.get_subnet(subnet_id)
        except InvalidSubnetIdError:
            continue
        raise ClientVpnError(
            "InvalidClientVpnSubnetId.DifferentAccount",
            f"Subnet {subnet_id} belongs to a different account than the Client VPN endpoint.",
        )
    raise ClientVpnError("InvalidClientVpnSubnetId.NotFound", f"Subnet {subnet_id} does not exist.")


def default_security_group_id(account_id: str, region: str, vpc_id: str) -> str | None:
    """The id of the VPC's default security group (what AWS applies when none is given)."""
    group = _ec2(account_id, region).get_default_security_group(vpc_id)
    return group.id if group is not None else None


def validate_security_groups(account_id: str, region: str, vpc_id: str | None, group_ids: list[str]) -> None:
    """At most 5 groups, VpcId required, each group existing in that VPC."""
    if not group_ids:
        return
    if not vpc_id:
        raise InvalidParameterValue("Security Groups cannot be modified without specifying Vpc Id")
    if len(group_ids) > 5:
        raise InvalidParameterValue("A Client VPN endpoint can have at most 5 security groups.")
    find_vpc(account_id, region, vpc_id)
    backend = _ec2(account_id, region)
    for group_id in group_ids:
        group = backend.get_security_group_from_id(group_id)
        if group is None:
            raise ClientVpnError("InvalidGroup.NotFound", f"The security group '{group_id}' does not exist")
        if group.vpc_id != vpc_id:
            raise InvalidParameterValue(f"Security group {group_id} does not belong to VPC {vpc_id}.")


def find_certificate(account_id: str, region: str, arn: str, purpose: str) -> Any:
    """The ACM certificate bundle for ``arn`` (same account and region)."""
    from moto.acm.models import acm_backends

    certificates = acm_backends[account_id][region]._certificates
    if arn not in certificates:
        raise InvalidParameterValue(f"{purpose} certificate {arn} does not exist.")
    return certificates[arn]


def certificate_authority_pem(bundle: Any) -> str:
    """The CA block of an exported profile: the imported chain, or the certificate itself.

    moto appends its own AWS root CA to every chain; it is not part of what the user imported.
    """
    from moto.acm.models import AWS_ROOT_CA

    chain: bytes = bundle.chain.replace(AWS_ROOT_CA, b"").strip()
    body: bytes = chain or bundle.cert
    return body.decode().strip()


def validate_directory(account_id: str, region: str, directory_id: str | None) -> None:
    from moto.ds.models import ds_backends

    if not directory_id or directory_id not in ds_backends[account_id][region].directories:
        raise InvalidParameterValue(f"Directory {directory_id} does not exist in this account and region.")


def validate_saml_provider(account_id: str, arn: str | None, field_name: str) -> None:
    from moto.iam.models import iam_backends

    providers = iam_backends[account_id]["global"].saml_providers.values()
    if not arn or all(provider.arn != arn for provider in providers):
        raise InvalidParameterValue(f"{field_name} {arn} does not exist.")


def ensure_log_destination(
    account_id: str, region: str, group_name: str | None, stream_name: str | None, default_stream: str
) -> str:
    """Check the log group exists and return the stream used, creating it when it is missing.

    The Client VPN administrator guide: when no log stream is named, Client VPN creates one in the
    group. A named stream that does not exist yet is created too (the local cloud is lenient here).
    """
    from moto.logs.models import logs_backends

    logs = logs_backends[account_id][region]
    if not group_name:
        raise InvalidParameterValue("CloudwatchLogGroup is required when connection logging is enabled.")
    group = logs.groups.get(group_name)
    if group is None:
        raise InvalidParameterValue(f"Log group {group_name} does not exist.")
    name = stream_name or default_stream
    if name not in group.streams:
        group.create_log_stream(name)
    return name


def validate_client_connect_function(account_id: str, region: str, arn: str | None) -> None:
    """The handler must be an existing Lambda function whose name starts with AWSClientVPN-."""
    from moto.awslambda.models import lambda_backends
    from moto.awslambda_simple.models import lambda_simple_backends

    match = re.match(r"^arn:aws[\w-]*:lambda:[\w-]+:\d{12}:function:([\w-]+)(:[\w$-]+)?$", arn or "")
    if not match:
        raise InvalidParameterValue(f"Invalid Lambda function ARN: {arn}")
    if not match.group(1).startswith(CLIENT_CONNECT_FUNCTION_PREFIX):
        raise InvalidParameterValue(
            f"The client connect handler's name must start with '{CLIENT_CONNECT_FUNCTION_PREFIX}'."
        )
    for backends in (lambda_backends, lambda_simple_backends):
        try:
            backends[account_id][region].get_function(match.group(0))
            return
        except Exception:  # moto raises several not-found exception types here
            continue
    raise InvalidParameterValue(f"Lambda function {arn} does not exist.")


def ip_network(
    cidr: str, parameter: str, versions: frozenset[int] = frozenset({4})
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR of a family the endpoint's traffic carries (``versions``), as AWS parses it."""
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError as error:
        raise InvalidParameterValue(f"Value ({cidr}) for parameter {parameter} is invalid.") from error
    if network.version not in versions:
        carried = " and ".join(f"IPv{version}" for version in sorted(versions))
        raise InvalidParameterValue(
            f"Value ({cidr}) for parameter {parameter} is invalid. "
            f"The Client VPN endpoint's traffic IP address type carries {carried} only."
        )
    return network


def ipv4_network(cidr: str, parameter: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(cidr, strict=False)
    except ValueError as error:
        raise InvalidParameterValue(f"Value ({cidr}) for parameter {parameter} is invalid.") from error
