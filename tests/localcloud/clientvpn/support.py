"""Helpers shared by the Client VPN emulator tests (not fixtures)."""

from __future__ import annotations

import datetime
import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import pytest

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


@dataclass(frozen=True)
class CertificateMaterial:
    """A PEM certificate and its private key (imported into ACM by the fixtures)."""

    certificate_pem: bytes
    private_key_pem: bytes


@dataclass
class Network:
    """The resources a Client VPN endpoint refers to."""

    vpc_id: str
    vpc_cidr: str
    subnet_ids: list[str]
    security_group_id: str
    default_security_group_id: str
    certificate_arn: str
    log_group: str
    directory_id: str
    saml_provider_arn: str
    other_vpc_id: str = ""
    other_subnet_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def endpoint_request(network: Network, **overrides: Any) -> dict[str, Any]:
    """A valid CreateClientVpnEndpoint request (mutual TLS), with ``overrides`` applied."""
    request: dict[str, Any] = {
        "ClientCidrBlock": "172.16.0.0/22",
        "ServerCertificateArn": network.certificate_arn,
        "AuthenticationOptions": [
            {
                "Type": "certificate-authentication",
                "MutualAuthentication": {"ClientRootCertificateChainArn": network.certificate_arn},
            }
        ],
        "ConnectionLogOptions": {"Enabled": True, "CloudwatchLogGroup": network.log_group},
    }
    request.update(overrides)
    return request


def endpoint_state(ec2: Any, endpoint_id: str) -> str:
    endpoints = ec2.describe_client_vpn_endpoints(ClientVpnEndpointIds=[endpoint_id])["ClientVpnEndpoints"]
    return str(endpoints[0]["Status"]["Code"])


def association_state(ec2: Any, endpoint_id: str, association_id: str) -> str:
    networks = ec2.describe_client_vpn_target_networks(
        ClientVpnEndpointId=endpoint_id, AssociationIds=[association_id]
    )["ClientVpnTargetNetworks"]
    return str(networks[0]["Status"]["Code"])


def error_code(excinfo: pytest.ExceptionInfo[Any]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {'allow': True}\n")
    return buffer.getvalue()


class FakeConnection:
    """The smallest object the connection simulator's contract promises."""

    def __init__(self, endpoint_id: str, connection_id: str, username: str, status: str = "active") -> None:
        self.endpoint_id = endpoint_id
        self.connection_id = connection_id
        self.username = username
        self.status = status
        self.terminated_at: datetime.datetime | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "ClientVpnEndpointId": self.endpoint_id,
            "ConnectionId": self.connection_id,
            "Username": self.username,
            "Status": {"Code": self.status},
        }

    def terminate(self, now: datetime.datetime) -> dict[str, Any]:
        previous = self.status
        self.status = "terminated"
        self.terminated_at = now
        return {
            "ConnectionId": self.connection_id,
            "PreviousStatus": {"Code": previous},
            "CurrentStatus": {"Code": self.status},
        }
