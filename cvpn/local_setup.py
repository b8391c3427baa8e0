"""What `cvpn local up` prepares besides the stack, and `cvpn local network` reads back: the example
network the documents in events/ name, and the example webhook sources, signed with a local secret.

Both go through boto3 only (no local cloud import), so `cvpn local network` works against any
endpoint serving the network.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "EXAMPLE_NETWORK_NAME",
    "ExampleSource",
    "configure_example_sources",
    "describe_network",
    "new_webhook_secret",
]

EXAMPLE_NETWORK_NAME = "cvpn-demo"  # the Name tag build_sample_network gives the VPC
LOG_GROUP_NAME = "/cvpn-autopilot/connections"  # the connection log group the examples name


@dataclass(frozen=True)
class ExampleSource:
    """A webhook source `cvpn local up` configured, and the example delivery that goes with it."""

    name: str
    approval: str
    example: Path | None


def new_webhook_secret() -> str:
    """A fresh signing secret for the example sources of one local cloud."""
    return f"local-{secrets.token_urlsafe(18)}"


_EXAMPLE_DELIVERIES = {
    "jira": "jira-issue-updated.json",
    "github": "github-issues-labeled.json",
    "servicenow": "generic-servicenow.json",
}


def configure_example_sources(
    client_factory: Any, outputs: dict[str, str], webhooks_dir: Path, secret: str
) -> list[ExampleSource]:
    """Configure every source of ``webhooks_dir/sources`` as an operator would (a secret under the
    stack's ``IntakeSecretsPrefix``, the mapping under ``IntakeSourcesParameterPath``), all signed
    with ``secret``. Callbacks are left out: there is no ticket system to answer on loopback."""
    prefix = outputs["IntakeSecretsPrefix"]
    parameter_path = outputs["IntakeSourcesParameterPath"]
    secretsmanager, ssm = client_factory("secretsmanager"), client_factory("ssm")
    configured = []
    for path in sorted((webhooks_dir / "sources").glob("*.json")):
        source = path.stem
        config = json.loads(path.read_text())
        config["secret_id"] = f"{prefix}{source}"
        config.pop("callback", None)
        value = json.dumps({"current": secret, "previous": ""})
        try:
            secretsmanager.create_secret(Name=config["secret_id"], SecretString=value)
        except secretsmanager.exceptions.ResourceExistsException:
            secretsmanager.put_secret_value(SecretId=config["secret_id"], SecretString=value)
        ssm.put_parameter(
            Name=f"{parameter_path}/{source}", Type="String", Value=json.dumps(config), Overwrite=True
        )
        example = _EXAMPLE_DELIVERIES.get(source)
        configured.append(
            ExampleSource(
                source, str(config.get("approval", "")), webhooks_dir / example if example else None
            )
        )
    return configured


def describe_network(client_factory: Any, name: str = EXAMPLE_NETWORK_NAME) -> dict[str, Any] | None:
    """The ids of the network named ``name`` (the VPC's Name tag), None when there is none."""
    ec2 = client_factory("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]
    if not vpcs:
        return None
    vpc = vpcs[0]
    vpc_id = vpc["VpcId"]
    subnets = sorted(
        ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"],
        key=lambda subnet: subnet["CidrBlock"],
    )
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [f"{name}-clientvpn"]},
        ]
    )["SecurityGroups"]
    directories = [
        directory
        for directory in client_factory("ds").describe_directories()["DirectoryDescriptions"]
        if (directory.get("VpcSettings") or {}).get("VpcId") == vpc_id
    ]
    acm = client_factory("acm")
    certificates: dict[str, str] = {}
    for summary in acm.list_certificates()["CertificateSummaryList"]:
        arn = summary["CertificateArn"]
        tags = {
            tag["Key"]: tag.get("Value") for tag in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]
        }
        if tags.get("Name") in (f"{name}-server", f"{name}-client-root"):
            certificates[str(tags["Name"])] = arn
    saml = [
        provider["Arn"]
        for provider in client_factory("iam").list_saml_providers()["SAMLProviderList"]
        if provider["Arn"].endswith(f":saml-provider/{name}-idp")
    ]
    logs = client_factory("logs")
    log_groups = [
        group["logGroupName"]
        for group in logs.describe_log_groups(logGroupNamePrefix=LOG_GROUP_NAME)["logGroups"]
        if group["logGroupName"] == LOG_GROUP_NAME
    ]
    return {
        "vpc_id": vpc_id,
        "vpc_cidr": vpc["CidrBlock"],
        "subnets": [
            {"subnet_id": s["SubnetId"], "availability_zone": s["AvailabilityZone"], "cidr": s["CidrBlock"]}
            for s in subnets
        ],
        "security_group_id": groups[0]["GroupId"] if groups else None,
        "directory_id": directories[0]["DirectoryId"] if directories else None,
        "server_certificate_arn": certificates.get(f"{name}-server"),
        "client_root_certificate_arn": certificates.get(f"{name}-client-root"),
        "saml_provider_arn": saml[0] if saml else None,
        "log_group_name": log_groups[0] if log_groups else None,
    }
