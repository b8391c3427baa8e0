"""Conditional writes on the local cloud's DynamoDB are atomic, as DynamoDB's are."""

from __future__ import annotations

import sys
import threading

import boto3
import pytest
from moto import mock_aws

from localcloud import dynamodb_atomic


@pytest.fixture
def table() -> str:
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="race",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        yield "race"


def _race(table: str, writers: int, keys: int) -> dict[str, list[str]]:
    """``writers`` threads each try to create every key with attribute_not_exists; the winners by key."""
    winners: dict[str, list[str]] = {f"k{n}": [] for n in range(keys)}
    barrier = threading.Barrier(writers)

    def write(writer: str) -> None:
        client = boto3.client("dynamodb", region_name="us-east-1")
        barrier.wait()
        for key in winners:
            try:
                client.put_item(
                    TableName=table,
                    Item={"pk": {"S": key}, "owner": {"S": writer}},
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except client.exceptions.ConditionalCheckFailedException:
                continue
            winners[key].append(writer)

    threads = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return winners


def test_one_writer_wins_each_conditional_create(table: str) -> None:
    """Given the writes serialised and threads switching as often as the interpreter allows, when four
    writers race to create the same keys, then each key has exactly one winner, whose item is stored."""
    assert dynamodb_atomic.installed()
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        winners = _race(table, writers=4, keys=100)
    finally:
        sys.setswitchinterval(previous)
    assert all(len(names) == 1 for names in winners.values()), {
        k: v for k, v in winners.items() if len(v) != 1
    }
    client = boto3.client("dynamodb", region_name="us-east-1")
    for key, (winner,) in winners.items():
        item = client.get_item(TableName=table, Key={"pk": {"S": key}})["Item"]
        assert item["owner"]["S"] == winner
