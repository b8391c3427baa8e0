"""A grants profile (the example profile, serving from a shared endpoint), people, and the grants
table as the template creates it (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn_shared.access.grants.models import Actor, Approver, Person
from cvpn_shared.access.profiles import NetworkProfile, parse_profile
from localcloud.sam import load_template
from tests.fixtures import REPO_ROOT

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ISSUER = "https://login.example.com/oauth2/default"
ENGINEERING = "S-1-5-21-1004336348-1177238915-682003330-512"
FINANCE = "S-1-5-21-1004336348-1177238915-682003330-1105"
ALICE = Person(issuer=ISSUER, sub="00u-alice", vpn_user="Alice")
BOB = Person(issuer=ISSUER, sub="00u-bob", vpn_user="bob")
CAROL = Approver(issuer=ISSUER, sub="00u-carol", name="Carol Approver")
ADMIN = Actor(kind="aws", id="arn:aws:iam::123456789012:user/admin", name="user/admin")
TABLE = "access-grants"


def profile_document(**changes: Any) -> dict[str, Any]:
    document = json.loads((REPO_ROOT / "events" / "profiles" / "engineering.json").read_text())
    document.update(endpoint_request_id="NET-100", max_grant_hours=24, default_grant_hours=8)
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


@pytest.fixture
def profile() -> NetworkProfile:
    return parse_profile("engineering", profile_document())


@pytest.fixture
def grants_table() -> Iterator[Any]:
    """The grants table exactly as template.yaml declares its key and indexes; the DynamoDB client."""
    properties = load_template(REPO_ROOT / "template.yaml")["Resources"]["AccessGrantsTable"]["Properties"]
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            **{
                key: properties[key]
                for key in ("BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
            },
        )
        yield dynamodb
