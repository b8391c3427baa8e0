"""`cvpn request reopen` against a stack on moto: it grants a ticket one more start on the ticket's
permanent record, and refuses, naming the argument, a ticket no webhook started."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from cvpn import cli

REGION = "us-east-1"
TEMPLATE = {
    "Resources": {
        "Tickets": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "ticket_key", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "ticket_key", "KeyType": "HASH"}],
            },
        }
    },
    "Outputs": {"IntakeTicketsTableName": {"Value": {"Ref": "Tickets"}}},
}


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName="cvpn-autopilot", TemplateBody=json.dumps(TEMPLATE))
        outputs = cloudformation.describe_stacks(StackName="cvpn-autopilot")["Stacks"][0]["Outputs"]
        yield outputs[0]["OutputValue"]


def test_reopen_grants_one_more_start_on_the_ticket(table: str, capsys: pytest.CaptureFixture[str]) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.put_item(
        TableName=table,
        Item={
            "ticket_key": {"S": "jira#NET-2001"},
            "run": {"N": "1"},
            "execution_arn": {"S": "arn:aws:states:us-east-1:123456789012:execution:x:jira-NET-2001"},
            "markers": {"L": []},
        },
    )
    assert cli.main(["request", "reopen", "NET-2001", "--source", "jira", "--region", REGION]) == 0
    item = dynamodb.get_item(TableName=table, Key={"ticket_key": {"S": "jira#NET-2001"}})["Item"]
    assert item["reopen_granted"]["S"].startswith("admin:")
    assert "its next signed delivery starts run 2" in capsys.readouterr().out


def test_reopen_of_a_ticket_never_started_is_refused(table: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["request", "reopen", "NET-9", "--source", "jira", "--region", REGION]) == 2
    assert "TICKET: no webhook from source 'jira' started ticket 'NET-9'" in capsys.readouterr().err
    assert "Item" not in boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=table, Key={"ticket_key": {"S": "jira#NET-9"}}
    )


def test_reopen_names_a_missing_stack(table: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["request", "reopen", "NET-1", "--source", "jira", "--region", REGION, "--stack-name", "nope"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith("cvpn: error: --stack-name nope:")
