"""The intake's data access against moto: conditional writes (single-use approvals, delivery claims
with TTL), cached source parameters and secrets (missing means None: fail closed), get-or-create."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn_shared.access.dal.approvals import ApprovalAlreadyDecided, ApprovalNotFound, ApprovalRecords
from cvpn_shared.access.dal.deliveries import WebhookDeliveries
from cvpn_shared.access.dal.form_store import PersonRequests
from cvpn_shared.access.dal.intake_config import SecretsManagerSecrets, SourceCatalog
from cvpn_shared.access.identity import Person


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def _table(key: str) -> tuple[Any, str]:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName=key,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb, key


def test_a_delivery_is_claimed_once_until_it_expires(aws: None) -> None:
    deliveries = WebhookDeliveries(*_table("delivery_key"))
    record = {"delivery_key": "jira#d-1", "request_id": "NET-1", "execution_arn": "arn:x", "expires_at": 2000}
    assert deliveries.claim(record, now=1000) is None
    existing = deliveries.claim({**record, "request_id": "NET-2"}, now=1500)
    assert existing is not None and existing["request_id"] == "NET-1" and existing["expires_at"] == 2000
    assert deliveries.claim({**record, "request_id": "NET-3", "expires_at": 9000}, now=2001) is None
    deliveries.release("jira#d-1")
    assert deliveries.claim(record, now=1000) is None


def test_an_approval_is_decided_once(aws: None) -> None:
    records = ApprovalRecords(*_table("approval_id"))
    records.create({"approval_id": "a1", "status": "PENDING", "task_token": "tok", "expires_at": 10})
    grace = Person("https://issuer.example", "sub-grace", "Grace Hopper", "grace@example.com")
    decided = records.decide("a1", status="APPROVED", decided_at=5, decided_via="link", approver=grace)
    assert (decided["status"], decided["task_token"], decided["decided_at"]) == ("APPROVED", "tok", 5)
    assert records.get("a1") == decided
    assert (decided["approver_issuer"], decided["approver_sub"], decided["approver_name"]) == (
        "https://issuer.example",
        "sub-grace",
        "Grace Hopper",
    )
    with pytest.raises(ApprovalAlreadyDecided) as raised:
        records.decide("a1", status="REJECTED", decided_at=6, decided_via="link", approver=grace)
    assert raised.value.record["status"] == "APPROVED"
    with pytest.raises(ApprovalNotFound):
        records.decide("nope", status="APPROVED", decided_at=6, decided_via="link", approver=grace)


def test_a_persons_requests_change_only_at_the_version_read(aws: None) -> None:
    people = PersonRequests(*_table("pk"))
    assert people.read("iss sub") == ([], 0)
    assert people.write("iss sub", [{"request_id": "REQ-1", "at": 1.0}], version=0)
    assert not people.write("iss sub", [], version=0)  # someone wrote first
    listed, version = people.read("iss sub")
    assert (listed, version) == ([{"request_id": "REQ-1", "at": 1.0}], 1)
    assert people.write("iss sub", [], version=1)
    assert not people.write("iss sub", [{"request_id": "REQ-2", "at": 2.0}], version=1)
    assert people.read("iss sub") == ([], 2)


def test_the_source_catalog_is_cached_and_missing_is_none(aws: None) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(
        Name="/stack/intake/sources/jira", Type="String", Value=json.dumps({"approval": "required"})
    )
    now = [0.0]
    sources = SourceCatalog(ssm, "/stack/intake/sources/", cache_seconds=60, clock=lambda: now[0])
    assert sources.get("jira") == {"approval": "required"}
    assert sources.get("github") is None
    ssm.put_parameter(Name="/stack/intake/sources/jira", Type="String", Value="not json", Overwrite=True)
    assert sources.get("jira") == {"approval": "required"}  # cached
    now[0] = 61
    assert sources.get("jira") == "not json"


def test_secrets_missing_or_not_json_objects_are_none(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name="intake/jira", SecretString=json.dumps({"current": "a"}))
    client.create_secret(Name="intake/text", SecretString="just text")
    secrets = SecretsManagerSecrets(client, cache_seconds=60)
    assert secrets.get_json("intake/jira") == {"current": "a"}
    assert secrets.get_json("intake/text") is None
    assert secrets.get_json("intake/none") is None
    client.put_secret_value(
        SecretId="intake/jira", SecretString=json.dumps({"current": "b", "previous": "a"})
    )
    assert secrets.get_json("intake/jira") == {"current": "a"}
    assert secrets.get_json("intake/jira", refresh=True) == {"current": "b", "previous": "a"}


def test_get_or_create_creates_once(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    secrets = SecretsManagerSecrets(client, cache_seconds=0)
    first = secrets.get_or_create_json("stack/approvals/link-signing-key", lambda: {"current": "one"})
    second = SecretsManagerSecrets(client).get_or_create_json(
        "stack/approvals/link-signing-key", lambda: {"current": "two"}
    )
    assert first == second == {"current": "one"}
