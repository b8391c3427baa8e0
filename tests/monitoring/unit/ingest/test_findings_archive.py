"""The findings table on DynamoDB (moto): a retried delivery keeps its channel marks, a new revision
of the finding starts without them, and `cvpn findings` reads the details either way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn_shared.monitoring.dal.findings_archive import FindingsArchive

TABLE = "findings"
RECORDED = 1_800_000_000
EXPIRES = RECORDED + 90 * 86_400
DETAIL = {"finding_id": "f" * 64, "severity": "HIGH", "rule_id": "R3", "counts": {"failures": 10}}


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """A DynamoDB client on moto with the findings table as the template declares it."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "finding_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "finding_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def item(dynamodb: Any) -> dict[str, Any]:
    return dynamodb.get_item(TableName=TABLE, Key={"finding_id": {"S": "f" * 64}})["Item"]


def test_the_same_revision_keeps_its_marks_and_a_new_one_starts_without(dynamodb: Any) -> None:
    """Given a finding recorded as revision r1 and marked delivered to two channels, when r1 is
    recorded again (a retry), then both marks come back and the first recording time stays; when r2
    is recorded (a re-fire), then no marks come back, the detail is replaced and r1's marks are gone,
    and a late mark for r1 writes nothing."""
    archive = FindingsArchive(dynamodb, TABLE)
    assert archive.record(DETAIL, revision="r1", recorded_at=RECORDED, expires_at=EXPIRES) == frozenset()
    assert archive.mark_delivered("f" * 64, "r1", "alerts topic", delivered_at=RECORDED + 1)
    assert archive.mark_delivered("f" * 64, "r1", "security hub", delivered_at=RECORDED + 2)

    retried = archive.record(DETAIL, revision="r1", recorded_at=RECORDED + 60, expires_at=EXPIRES + 60)

    assert retried == {"alerts topic", "security hub"}
    assert item(dynamodb)["recorded_at"] == {"N": str(RECORDED)}
    assert item(dynamodb)["expires_at"] == {"N": str(EXPIRES + 60)}

    refired = {**DETAIL, "counts": {"failures": 14}}
    assert (
        archive.record(refired, revision="r2", recorded_at=RECORDED + 900, expires_at=EXPIRES) == frozenset()
    )
    assert not archive.mark_delivered("f" * 64, "r1", "webhook", delivered_at=RECORDED + 901)
    assert item(dynamodb)["delivered"] == {"M": {}} and item(dynamodb)["revision"] == {"S": "r2"}
    assert archive.recorded_since(RECORDED) == [{**refired, "recorded_at": RECORDED + 900}]


def test_an_item_recorded_without_a_revision_is_replaced(dynamodb: Any) -> None:
    """Given an item from before revisions were kept, when the finding is recorded, then it is
    replaced with no marks (nothing says which event the old item was)."""
    dynamodb.put_item(
        TableName=TABLE,
        Item={"finding_id": {"S": "f" * 64}, "recorded_at": {"N": "1"}, "detail": {"S": "{}"}},
    )
    archive = FindingsArchive(dynamodb, TABLE)

    assert archive.record(DETAIL, revision="r1", recorded_at=RECORDED, expires_at=EXPIRES) == frozenset()
    assert archive.mark_delivered("f" * 64, "r1", "webhook", delivered_at=RECORDED)
    assert item(dynamodb)["delivered"] == {"M": {"webhook": {"N": str(RECORDED)}}}


def test_a_mark_for_a_finding_not_recorded_writes_nothing(dynamodb: Any) -> None:
    assert not FindingsArchive(dynamodb, TABLE).mark_delivered("g" * 64, "r1", "webhook", delivered_at=1)
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"finding_id": {"S": "g" * 64}})
