"""How an intake ends, whatever the outcome: what the request held is given back at once, and a failure
says why in every place a person looks (the execution, the ticket, the status API).

Requests from the form hold a client CIDR block of the pool from the moment they are submitted. Nobody
has to look at the request for the block to come back: the intake releases it when it ends without an
endpoint (rejected, expired, failed).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from localcloud.faults import get_fault_injector
from tests.access.e2e.conftest import Intake
from tests.fixtures.shared_endpoints import put_profile

PROFILE = "outcomes"
GROUP = "S-1-5-21-1004336348-1177238915-682003330-512"
SIGNED_LINK = re.compile(r"X-Amz-Signature|X-Amz-Credential|AWSAccessKeyId=|[?&]Signature=", re.IGNORECASE)


@pytest.fixture(scope="module")
def profile(intake: Intake) -> str:
    """A network profile of the sample network, as an administrator writes it."""
    network = intake.network
    document = {
        "display_name": "Outcomes",
        "vpc_id": network.vpc_id,
        "subnet_ids": network.subnet_ids[:2],
        "server_certificate_arn": network.server_certificate_arn,
        "authentication": [{"type": "active-directory", "directory_id": network.directory_id}],
        "connection_log": {"enabled": True, "log_group_name": network.log_group_name},
        "routes": [{"destination_cidr": "0.0.0.0/0", "description": "Default route"}],
        "security_group_ids": [network.security_group_id],
        "access_groups": [{"id": GROUP, "name": "Engineering"}],
    }
    put_profile(intake, PROFILE, document)
    return PROFILE


@pytest.fixture(autouse=True)
def no_faults() -> Iterator[None]:
    get_fault_injector().clear()
    yield
    get_fault_injector().clear()


def _submit(intake: Intake, profile: str) -> tuple[str, str, str]:
    """A form request by a signed-in person; its request id, held client CIDR block and intake ARN."""
    person = f"user-{uuid.uuid4().hex[:6]}@example.com"
    status, answer = intake.ask(intake.token_for(person), profile, [GROUP], "testing how intakes end")
    assert status == 202, answer
    request_id, block = answer["request_id"], answer["client_cidr_block"]
    [execution] = [e for e in intake.executions() if e["name"].endswith(request_id)]
    return request_id, block, str(execution["executionArn"])


def _holder(intake: Intake, block: str) -> str | None:
    """The request holding ``block`` in the pool (None when it is free), read straight from the table."""
    item = intake.cloud.client("dynamodb").get_item(
        TableName=intake.stack.outputs["RequestFormTableName"],
        Key={"pk": {"S": f"cidr#{block}"}},
        ConsistentRead=True,
    )
    return item["Item"]["request_id"]["S"] if "Item" in item else None


def test_a_rejected_request_gives_its_client_cidr_back_without_anyone_looking(
    intake: Intake, profile: str
) -> None:
    """Given a form request holding a client CIDR block, when an approver rejects it, the intake ends
    ApprovalRejected and the block is free again, with no GET of the request's status."""
    request_id, block, execution_arn = _submit(intake, profile)
    assert _holder(intake, block) == request_id
    links = intake.approval_links(request_id)

    status, answer = intake.confirm(links["reject"], intake.approver_token())

    assert status == 200, answer
    assert intake.wait_status(execution_arn, {"SUCCEEDED", "FAILED"}) == "FAILED"
    described = intake.cloud.client("stepfunctions").describe_execution(executionArn=execution_arn)
    assert described["error"] == "ApprovalRejected"
    assert _holder(intake, block) is None
    assert "EndIntake" in intake.progress(execution_arn).steps


def test_an_expired_request_gives_its_client_cidr_back_without_anyone_looking(
    intake: Intake, profile: str
) -> None:
    """Given a form request holding a client CIDR block, when nobody decides before the approval
    timeout (the emulated clock moves past it), the intake ends ApprovalExpired and the block is free
    again, with no GET of the request's status."""
    request_id, block, execution_arn = _submit(intake, profile)
    intake.approval_message(request_id)  # waiting for a decision now
    assert _holder(intake, block) == request_id

    intake.cloud.clock.advance(86400 + 60)  # the template's ApprovalLinkTtlSeconds, and a minute

    assert intake.wait_status(execution_arn, {"SUCCEEDED", "FAILED"}, timeout=30) == "FAILED"
    described = intake.cloud.client("stepfunctions").describe_execution(executionArn=execution_arn)
    assert described["error"] == "ApprovalExpired"
    assert _holder(intake, block) is None
    assert intake.endpoints_for(request_id) == []


def test_a_failed_provisioning_says_why_in_the_execution_the_ticket_and_the_status_api(
    intake: Intake,
) -> None:
    """Given a pre-approved Jira ticket whose provisioning fails (a subnet association fails, the
    endpoint is rolled back), the intake ends with the provisioning's own error, AssociationFailed,
    and its cause, not a States.* error; the ticket comment and the status API say the same."""
    get_fault_injector().configure("AssociateClientVpnTargetNetwork", association_failures=1)
    key = f"NET-{uuid.uuid4().hex[:6].upper()}"
    body, headers = intake.jira_delivery(key)
    status, answer = intake.post_webhook("jira", body, headers)
    assert status == 202, answer

    assert intake.wait_status(answer["execution_arn"], {"SUCCEEDED", "FAILED"}) == "FAILED"
    described = intake.cloud.client("stepfunctions").describe_execution(executionArn=answer["execution_arn"])
    assert described["error"] == "AssociationFailed", described
    assert described["cause"] and not described["cause"].startswith("{")
    assert "States." not in described["error"] + described["cause"]

    [comment] = intake.tickets.callbacks_for(f"/rest/api/3/issue/{key}/comment")
    text = json.loads(comment["body"])["body"]["content"][0]["content"][0]["text"]
    assert f"Provisioning for {key} failed: AssociationFailed: {described['cause'][:200]}" in text

    reporter = intake.token_for("grace.hopper@example.com")  # issue.fields.reporter.emailAddress
    status, progress = intake.api("GET", f"/requests/{key}", reporter)
    assert status == 200, progress
    assert progress["status"] == "failed"
    assert progress["error"] == {"error": "AssociationFailed", "cause": described["cause"][:1000]}


def test_the_status_api_links_the_configuration_that_no_history_holds(intake: Intake) -> None:
    """Given a Jira ticket provisioned to the end, the intake's and the provisioning's histories and
    outputs and the ticket comment hold no presigned link; the ticket's reporter, signed in, gets a
    fresh link from the status API that downloads the configuration."""
    key = f"NET-{uuid.uuid4().hex[:6].upper()}"
    body, headers = intake.jira_delivery(key)
    status, answer = intake.post_webhook("jira", body, headers)
    assert status == 202, answer
    assert intake.wait_status(answer["execution_arn"], {"SUCCEEDED", "FAILED"}) == "SUCCEEDED"

    sfn = intake.cloud.client("stepfunctions")
    intake_output = json.loads(sfn.describe_execution(executionArn=answer["execution_arn"])["output"])
    provisioning_arn = intake_output["provisioning"]["execution_arn"]
    for arn in (answer["execution_arn"], provisioning_arn):
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        assert not SIGNED_LINK.search(json.dumps(history, default=str)), arn
        assert not SIGNED_LINK.search(json.dumps(sfn.describe_execution(executionArn=arn), default=str))
    [comment] = intake.tickets.callbacks_for(f"/rest/api/3/issue/{key}/comment")
    assert not SIGNED_LINK.search(comment["body"].decode())

    reporter = intake.token_for("grace.hopper@example.com")  # issue.fields.reporter.emailAddress
    deadline = time.monotonic() + 30
    while True:
        status, progress = intake.api("GET", f"/requests/{key}", reporter)
        if progress.get("status") == "available" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert progress["status"] == "available", progress
    with urllib.request.urlopen(progress["config_url"], timeout=30) as download:
        assert "remote " in download.read().decode()
