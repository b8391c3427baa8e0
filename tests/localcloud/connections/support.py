"""A stand-in endpoint and log readers for the connection simulation tests.

``FakeEndpoint`` has the attributes of the backend's ClientVpnEndpoint that the simulation reads (the
contract with ``localcloud.clientvpn.models``), so these tests do not depend on the backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
LOG_GROUP = "/clientvpn/connections"
LOG_STREAM = "connections"
CERTIFICATE = {
    "Type": "certificate-authentication",
    "MutualAuthentication": {
        "ClientRootCertificateChain": "arn:aws:acm:us-east-1:123456789012:certificate/c"
    },
}
DIRECTORY = {"Type": "directory-service-authentication", "ActiveDirectory": {"DirectoryId": "d-1234567890"}}
HANDLER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:AWSClientVPN-connect"


@dataclass
class Association:
    state: str
    subnet_id: str


@dataclass(eq=False)
class FakeEndpoint:
    """The attributes of the backend's ClientVpnEndpoint that the simulation uses."""

    id: str = "cvpn-endpoint-0123456789abcdef0"
    account_id: str = ACCOUNT_ID
    region: str = REGION
    state: str = "available"
    client_cidr_block: str = "10.100.0.0/22"
    transport_protocol: str = "udp"
    vpn_port: int = 443
    session_timeout_hours: int = 24
    connection_log_options: dict[str, Any] = field(
        default_factory=lambda: {
            "Enabled": True,
            "CloudwatchLogGroup": LOG_GROUP,
            "CloudwatchLogStream": LOG_STREAM,
        }
    )
    client_connect_options: dict[str, Any] = field(default_factory=lambda: {"Enabled": False})
    authentication_options: list[dict[str, Any]] = field(default_factory=lambda: [dict(CERTIFICATE)])
    associations: dict[str, Association] = field(
        default_factory=lambda: {"cvpn-assoc-0123456789abcdef0": Association("associated", "subnet-1")}
    )
    connections: dict[str, Any] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account_id}:client-vpn-endpoint/{self.id}"


def read_records(stream: str = LOG_STREAM, group: str = LOG_GROUP) -> list[dict[str, Any]]:
    """Every record of the stream, parsed, in order."""
    logs = boto3.client("logs", region_name=REGION)
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    return [json.loads(event["message"]) for event in events]


def log_streams(group: str = LOG_GROUP) -> list[str]:
    """Names of the streams in the log group."""
    logs = boto3.client("logs", region_name=REGION)
    return [stream["logStreamName"] for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]]
