"""Approval that a mail scanner cannot click, and requests that belong to an issuer + sub.

A form request on a profile whose approvers are ``eng-leads`` (in the token's ``groups`` claim): its
approval link, fetched as a scanner would, decides nothing; the requester cannot approve it though she
is an approver; someone outside the group cannot; an approver in the group can, and is recorded. A
token claiming the requester's e-mail reads nothing of hers. A person's fourth pending request is
refused.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.access.e2e.conftest import Intake
from tests.fixtures.shared_endpoints import put_profile

PROFILE = "confirmed"
GROUP = "S-1-5-21-1004336348-1177238915-682003330-512"
LEADS = "eng-leads"


@pytest.fixture(scope="module")
def profile(intake: Intake) -> str:
    network = intake.network
    document = {
        "display_name": "Confirmed approvals",
        "vpc_id": network.vpc_id,
        "subnet_ids": network.subnet_ids[:2],
        "server_certificate_arn": network.server_certificate_arn,
        "authentication": [{"type": "active-directory", "directory_id": network.directory_id}],
        "connection_log": {"enabled": True, "log_group_name": network.log_group_name},
        "security_group_ids": [network.security_group_id],
        "access_groups": [{"id": GROUP, "name": "Engineering"}],
        "approver_group_claim": "groups",
        "approver_group": LEADS,
    }
    put_profile(intake, PROFILE, document)
    return PROFILE


def _ask(intake: Intake, profile: str, token: str) -> tuple[int, dict[str, Any]]:
    return intake.ask(token, profile, [GROUP], "on-call for the build farm")


def _approval_record(intake: Intake, request_id: str) -> dict[str, Any]:
    items = intake.cloud.client("dynamodb").scan(TableName=intake.stack.outputs["ApprovalsTableName"])[
        "Items"
    ]
    [item] = [item for item in items if item["request_id"]["S"] == request_id]
    return {key: next(iter(value.values())) for key, value in item.items()}


def _intake_arn(intake: Intake, request_id: str) -> str:
    [execution] = [e for e in intake.executions() if e["name"].endswith(request_id)]
    return str(execution["executionArn"])


def test_only_a_confirmed_decision_by_an_approver_who_did_not_ask_decides(
    intake: Intake, profile: str
) -> None:
    ada_sub = f"ada-{uuid.uuid4().hex[:6]}"
    # Ada is an approver of this profile herself: that must not let her approve her own request.
    ada = intake.id_token_for(ada_sub, "Ada Lovelace", [LEADS])
    status, answer = _ask(intake, profile, ada)
    assert status == 202, answer
    request_id = answer["request_id"]
    link = intake.approval_links(request_id)["approve"]
    execution_arn = _intake_arn(intake, request_id)

    # A mail scanner, a link preview and a prefetch all GET the link: the page shows who asked and why.
    for _ in range(3):
        status, page = intake.follow(link)
        assert status == 200 and f"Approve request {request_id}?" in page
    assert "Ada Lovelace" in page and ada_sub in page and "on-call for the build farm" in page
    assert _approval_record(intake, request_id)["status"] == "PENDING"
    assert intake.progress(execution_arn).steps[-1] == "RequestApproval"

    status, refused = intake.confirm(link, None)
    assert status == 401, refused  # the API's JWT authorizer: nobody signed in
    status, refused = intake.confirm(link, ada)
    assert status == 403 and "You asked for this request" in refused["message"]
    grace = intake.approver_token("grace")  # an approver of the stack, not of this profile
    status, refused = intake.confirm(link, grace)
    assert status == 403 and f"not in the approver group '{LEADS}'" in refused["message"]
    assert _approval_record(intake, request_id)["status"] == "PENDING"

    alan = intake.id_token_for(f"alan-{uuid.uuid4().hex[:6]}", "Alan Turing", ["staff", LEADS])
    status, decided = intake.confirm(link, alan)
    assert status == 200 and "approved by Alan Turing" in decided["message"], decided
    record = _approval_record(intake, request_id)
    assert (record["status"], record["approver_name"]) == ("APPROVED", "Alan Turing")
    assert intake.cloud.oidc is not None
    assert record["approver_sub"].startswith("alan-")
    assert record["approver_issuer"] == intake.cloud.oidc.issuer_url

    # What Ada sees: who approved.
    deadline = time.monotonic() + 30
    while True:
        status, progress = intake.api("GET", f"/requests/{request_id}", ada)
        assert status == 200, progress
        if progress.get("approved_by") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert progress["approved_by"]["name"] == "Alan Turing"

    # Mallory's token claims Ada's e-mail, verified even: the request is Ada's sub's.
    mallory = intake.id_token_for(
        "mallory", "Mallory", [], email=f"{ada_sub}@example.com", email_verified=True
    )
    status, hidden = intake.api("GET", f"/requests/{request_id}", mallory)
    assert (status, hidden) == (404, {"message": f"no request {request_id} of yours"})


def test_a_persons_request_past_the_pending_limit_is_refused(intake: Intake, profile: str) -> None:
    """MaxPendingRequests is 3 by default: the fourth request waiting for a decision is refused, while
    another person still may ask."""
    token = intake.id_token_for(f"busy-{uuid.uuid4().hex[:6]}", "Busy Bee")
    for _ in range(3):
        status, answer = _ask(intake, profile, token)
        assert status == 202, answer
    status, refused = _ask(intake, profile, token)
    assert status == 429, refused
    assert "the limit is 3 per person" in refused["message"]
    status, answer = _ask(intake, profile, intake.id_token_for(f"other-{uuid.uuid4().hex[:6]}", "Other"))
    assert status == 202, answer
