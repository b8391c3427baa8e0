"""Replayed tickets against the webhook function as deployed (its real wiring, AWS mocked by moto):
a captured delivery replayed once its delivery claim expired and its execution name is free again
(90 days) starts nothing; a re-opened Jira ticket starts again, once."""

from __future__ import annotations

import json
from typing import Any

import boto3

from cvpn_shared.access.signatures import SignatureScheme, sign

from .conftest import example_payload
from .test_abuse import JIRA_SECRET, REGION, STACK, STATE_MACHINE_ARN, Deployed, _signed_jira, deployed  # noqa: F401  (fixture)


def _jira_reopened(changelog_id: str) -> dict[str, Any]:
    """The example Jira ticket approved again after it was re-opened (a new change, a new id)."""
    payload = example_payload("jira")
    payload["changelog"] = {
        "id": changelog_id,
        "items": [{"field": "status", "fromString": "Reopened", "toString": "Approved"}],
    }
    return payload


def _executions() -> list[str]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = STATE_MACHINE_ARN
    return sorted(e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"])


def _forget_executions() -> None:
    """What 90 days do: closed executions are gone and their names free (here: the machine anew)."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = STATE_MACHINE_ARN
    definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
    sfn.delete_state_machine(stateMachineArn=arn)
    sfn.create_state_machine(
        name=f"{STACK}-intake-request", definition=definition, roleArn="arn:aws:iam::123456789012:role/intake"
    )


def test_a_captured_delivery_replayed_after_90_days_starts_nothing(deployed: Deployed) -> None:  # noqa: F811
    body, headers = _signed_jira()
    headers["X-Atlassian-Webhook-Identifier"] = "d-1"
    assert deployed.post("jira", body, headers)["statusCode"] == 202
    assert _executions() == ["jira-NET-2001"]
    boto3.client("dynamodb", region_name=REGION).delete_item(  # the delivery's TTL has passed
        TableName="deliveries", Key={"delivery_key": {"S": "jira#d-1"}}
    )
    _forget_executions()
    for delivery in ("d-1", "d-2"):
        answer = deployed.post("jira", body, {**headers, "X-Atlassian-Webhook-Identifier": delivery})
        assert answer["statusCode"] == 200 and json.loads(answer["body"])["duplicate"] is True
    assert _executions() == []


def test_a_reopened_jira_ticket_starts_again_as_deployed(deployed: Deployed) -> None:  # noqa: F811
    body, headers = _signed_jira()
    assert deployed.post("jira", body, headers)["statusCode"] == 202
    reopened = json.dumps(_jira_reopened("10500")).encode()
    reopened_headers = sign(SignatureScheme.JIRA, reopened, JIRA_SECRET, timestamp=0)
    answer = deployed.post("jira", reopened, reopened_headers)
    assert answer["statusCode"] == 202, answer["body"]
    assert deployed.post("jira", reopened, reopened_headers)["statusCode"] == 200
    assert _executions() == ["jira-NET-2001", "jira-NET-2001_run2"]
