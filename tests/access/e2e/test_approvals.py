"""A source that needs approval: the intake waits (task token) until an approver confirms a signed link.

Following a link (GET) shows the request and decides nothing; the page's POST decides, for a member of
the approver group signed in with the issuer, who is not the requester.
"""

from __future__ import annotations

import json
import uuid

from tests.access.e2e.conftest import Intake, links_of


def _start_github_request(intake: Intake) -> tuple[int, str, str]:
    number = uuid.uuid4().int % 10**6
    body, headers = intake.github_delivery(number)
    status, answer = intake.post_webhook("github", body, headers)
    assert status == 202, answer
    assert answer["request_id"] == f"GH-{number}"
    return number, answer["request_id"], answer["execution_arn"]


def _waiting_for_approval(intake: Intake, execution_arn: str) -> None:
    sfn = intake.cloud.client("stepfunctions")
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"
    assert intake.progress(execution_arn).steps[-1] == "RequestApproval"


def test_request_needing_approval_waits_until_the_approve_link_is_followed(intake: Intake) -> None:
    """Given a GitHub source configured as needing approval, the intake waits and creates nothing until
    an approver follows the approve link from the notification; then it provisions and comments on the
    issue. The link works once."""
    number, request_id, execution_arn = _start_github_request(intake)
    message = intake.approval_message(request_id)
    assert request_id in message["Subject"]
    links = links_of(message)
    # An emulated hour passes (well within the links' lifetime): still waiting, nothing created.
    intake.cloud.clock.advance(3600)
    _waiting_for_approval(intake, execution_arn)
    assert intake.endpoints_for(request_id) == []

    status, page = intake.follow(links["approve"])  # opening the link decides nothing
    assert status == 200 and f"Approve request {request_id}?" in page
    _waiting_for_approval(intake, execution_arn)
    status, answer = intake.confirm(links["approve"], intake.approver_token())
    assert status == 200, answer
    assert f"Request {request_id} is approved by Grace" in answer["message"]
    assert intake.wait_status(execution_arn, {"SUCCEEDED", "FAILED"}) == "SUCCEEDED"
    assert len(intake.endpoints_for(request_id)) == 1

    status, answer = intake.confirm(links["approve"], intake.approver_token())
    assert status == 409 and "already approved by Grace" in answer["message"]
    status, answer = intake.confirm(links["reject"], intake.approver_token("alan"))
    assert status == 409
    status, page = intake.follow(links["approve"])
    assert status == 409 and "<form" not in page

    [comment] = intake.tickets.callbacks_for(f"/repos/example/infra-requests/issues/{number}/comments")
    assert comment["headers"]["authorization"] == "Bearer ghp_example"
    assert request_id in json.loads(comment["body"])["body"]


def test_rejected_request_ends_without_creating_anything(intake: Intake) -> None:
    """Following the reject link ends the intake as ApprovalRejected: no provisioning execution, no
    endpoint; the issue is told. An altered link (decision swapped) is refused with 403."""
    number, request_id, execution_arn = _start_github_request(intake)
    links = intake.approval_links(request_id)
    _waiting_for_approval(intake, execution_arn)

    forged = links["reject"].replace("decision=reject", "decision=approve")
    status, page = intake.follow(forged)
    assert status == 403, page
    status, answer = intake.confirm(forged, intake.approver_token())
    assert status == 403, answer
    _waiting_for_approval(intake, execution_arn)

    status, answer = intake.confirm(links["reject"], intake.approver_token())
    assert status == 200 and f"Request {request_id} is rejected" in answer["message"]
    assert intake.wait_status(execution_arn, {"SUCCEEDED", "FAILED"}) == "FAILED"
    described = intake.cloud.client("stepfunctions").describe_execution(executionArn=execution_arn)
    assert described["error"] == "ApprovalRejected"
    progress = intake.progress(execution_arn)
    assert "Provision" not in progress.steps
    provisioning = intake.cloud.client("stepfunctions").list_executions(
        stateMachineArn=intake.stack.outputs["ProvisionEndpointStateMachineArn"]
    )["executions"]
    assert not [e for e in provisioning if e["name"].endswith(request_id)]
    assert intake.endpoints_for(request_id) == []
    [comment] = intake.tickets.callbacks_for(f"/repos/example/infra-requests/issues/{number}/comments")
    assert "rejected" in json.loads(comment["body"])["body"]
