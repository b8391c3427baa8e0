"""Fixtures of the request form's unit tests: a network profile, moto-backed tables and parameters."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

GROUP_ENGINEERING = "S-1-5-21-1004336348-1177238915-682003330-512"
GROUP_FINANCE = "S-1-5-21-1004336348-1177238915-682003330-1105"

PROFILE_DOCUMENT: dict[str, Any] = {
    "display_name": "Engineering VPC (eu)",
    "description": "Build servers and internal tools",
    "vpc_id": "vpc-0a1b2c3d4e5f60718",
    "subnet_ids": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
    "server_certificate_arn": (
        "arn:aws:acm:us-east-1:123456789012:certificate/0d36a9e8-e764-4cd4-886d-5aef5f4cd28f"
    ),
    "authentication": [{"type": "active-directory", "directory_id": "d-0613d679c7"}],
    "dns_servers": ["10.0.0.2"],
    "connection_log": {"enabled": True, "log_group_name": "/cvpn-autopilot/connections"},
    "routes": [
        {"destination_cidr": "0.0.0.0/0", "description": "Default route"},
        {"destination_cidr": "172.16.4.0/22", "description": "Lab network"},
    ],
    "security_group_ids": ["sg-0a1b2c3d4e5f60718"],
    "access_groups": [
        {"id": GROUP_ENGINEERING, "name": "Engineering", "description": "Everything"},
        {"id": GROUP_FINANCE, "name": "Finance", "target_network_cidr": "10.20.0.0/16"},
    ],
    "session_timeout_hours": 12,
    "tags": {"CostCenter": "eng-1234"},
}


@pytest.fixture
def profile_document() -> dict[str, Any]:
    """A valid profile document as an administrator stores it (a fresh copy per test)."""
    return copy.deepcopy(PROFILE_DOCUMENT)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def form_table(aws: None) -> str:
    """The request form's table (partition key pk), as the template creates it."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="request-form",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    return "request-form"
