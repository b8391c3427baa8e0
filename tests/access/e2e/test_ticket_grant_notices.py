"""What a ticket that asked for access is told when it gets none, end to end on the local cloud: a
grant request rejected, left to expire, or approved but no longer activatable gets a comment about
the grant (who, why, what next); a signed ticket that makes no valid request gets a comment naming
the field, once per delivery, and an unsigned one gets nothing; a valid one the intake does not start
(its reporter has too many requests waiting, its key collides with another's) is told why, once."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cvpn_shared.access.grants.dal import DynamoDbGrants
from cvpn_shared.access.grants.logic import revoke
from cvpn_shared.access.grants.models import Actor, Grant
from cvpn_shared.access.naming import execution_name
from cvpn_shared.access.signatures import SignatureScheme, sign
from cvpn_shared.access.start import execution_arn_for
from tests.access.e2e.conftest import Intake
from tests.fixtures import REPO_ROOT
from tests.fixtures.shared_endpoints import shared_endpoint

SOURCE = "jira-notices"
SECRET = "jira-notices-secret"
JIRA = "https://notices.atlassian.net"
REPORTER = "6c21bd9e93f16c33dd8e5f06"
ENGINEERING = "S-1-5-21-1004336348-1177238915-682003330-512"
PROFILE = "tickets-notices"


def _configure_source(intake: Intake) -> None:
    """A grants source as an operator configures it: its signing secret and its mapping parameter."""
    outputs = intake.stack.outputs
    intake.cloud.client("secretsmanager").create_secret(
        Name=f"{outputs['IntakeSecretsPrefix']}{SOURCE}", SecretString=json.dumps({"current": SECRET})
    )
    config = json.loads((REPO_ROOT / "events" / "webhooks" / "sources" / "jira-access.json").read_text())
    config["secret_id"] = f"{outputs['IntakeSecretsPrefix']}{SOURCE}"
    config["defaults"] = {"issuer": JIRA}
    config["callback"]["url_template"] = intake.tickets.base_url + "/rest/api/3/issue/{request_id}/comment"
    config["callback"]["credentials_secret_id"] = f"{outputs['IntakeCallbackSecretsPrefix']}jira"
    intake.cloud.client("ssm").put_parameter(
        Name=f"{outputs['IntakeSourcesParameterPath']}/{SOURCE}", Type="String", Value=json.dumps(config)
    )


@pytest.fixture(scope="module")
def desk(intake: Intake) -> Iterator[Intake]:
    shared_endpoint(intake, profile=PROFILE, request_id="NET-TN1", cidr="10.248.0.0/22")  # at most 48 h
    _configure_source(intake)
    intake.cloud.clock.advance(300)  # the subnet association completes
    yield intake


def _delivery(key: str, **fields: Any) -> tuple[bytes, dict[str, str]]:
    """The example grants delivery (events/webhooks) for ticket ``key`` on this module's profile."""
    payload = json.loads((REPO_ROOT / "events" / "webhooks" / "jira-access-issue-created.json").read_text())
    payload["issue"]["key"] = key
    payload["issue"]["fields"].update(
        {
            "reporter": {"accountId": REPORTER, "displayName": "Erin Example"},
            "customfield_10060": "erin",
            "customfield_10061": {"value": PROFILE},
            "customfield_10062": [{"value": ENGINEERING}],
            **fields,
        }
    )
    body = json.dumps(payload).encode()
    headers = sign(SignatureScheme.JIRA, body, SECRET, timestamp=int(time.time()))
    headers["X-Atlassian-Webhook-Identifier"] = str(uuid.uuid4())
    return body, headers


def _comments(intake: Intake, ticket: str, wait_for: str = "", timeout: float = 60) -> list[str]:
    """The Jira comments ticket ``ticket`` received; waits until one contains ``wait_for``."""
    deadline = time.monotonic() + timeout
    while True:
        texts = [
            json.loads(item["body"])["body"]["content"][0]["content"][0]["text"]
            for item in intake.tickets.callbacks_for(f"/issue/{ticket}/comment", timeout=0.1)
        ]
        if (wait_for and any(wait_for in text for text in texts)) or time.monotonic() > deadline:
            return texts
        time.sleep(0.1)


def _grant_of(intake: Intake, ticket: str) -> Grant:
    grants = DynamoDbGrants(intake.cloud.client("dynamodb"), intake.stack.outputs["AccessGrantsTableName"])
    [grant] = [g for g in grants.of_person(f"{JIRA}#{REPORTER}") if g.request_id == ticket]
    return grant


def _form_url(intake: Intake) -> str:
    """Where the stack sends people to ask (the API's own URL: the test sets no RequestFormUrl)."""
    answer = intake.cloud.client("lambda").get_function_configuration(
        FunctionName=intake.stack.function_name("TicketCallbackFunction")
    )
    return str(answer["Environment"]["Variables"]["REQUEST_FORM_URL"])


def _asked(intake: Intake, ticket: str, **fields: Any) -> dict[str, str]:
    """Deliver the ticket, and the approval links the approvers got for it."""
    status, answer = intake.post_webhook(SOURCE, *_delivery(ticket, **fields))
    assert status == 202, answer
    text = intake.approval_message(ticket)["Message"]
    return {
        "approve": re.search(r"Approve:\s+(\S+)", text).group(1),  # type: ignore[union-attr]
        "reject": re.search(r"Reject:\s+(\S+)", text).group(1),  # type: ignore[union-attr]
    }


def test_a_rejected_ticket_grant_is_told_who_refused_it_and_how_to_ask_again(desk: Intake) -> None:
    links = _asked(desk, "ACN-201")
    status, page = desk.confirm(links["reject"], desk.approver_token("grace"))
    assert status == 200, page
    [comment] = _comments(desk, "ACN-201", "was refused")
    grant = _grant_of(desk, "ACN-201")
    assert grant.state == "revoked"
    assert comment.startswith(f"The access request ACN-201 (grant {grant.grant_id}) was refused: Grace")
    assert "no access was granted" in comment and "nothing was created" not in comment
    assert f"file a new ticket, or use the request form at {_form_url(desk)}" in comment


def test_a_ticket_grant_nobody_decided_is_told_it_expired(desk: Intake) -> None:
    _asked(desk, "ACN-202")
    desk.cloud.clock.advance(86400 + 60)  # the template's ApprovalLinkTtlSeconds, and a minute
    [comment] = _comments(desk, "ACN-202", "expired")
    assert comment.startswith("The access request ACN-202 (grant ")
    assert "expired: no approver decided before the approval ran out; no access was granted" in comment
    assert _grant_of(desk, "ACN-202").state == "revoked"


def test_a_ticket_grant_that_cannot_be_activated_is_told_why(desk: Intake) -> None:
    links = _asked(desk, "ACN-203")
    grants = DynamoDbGrants(desk.cloud.client("dynamodb"), desk.stack.outputs["AccessGrantsTableName"])
    pending = _grant_of(desk, "ACN-203")
    withdrawn = revoke(
        pending,
        by=Actor(kind="system", id="test", name="an administrator"),
        reason="withdrawn",
        now=desk.cloud.clock.now(),
    )
    grants.write(pending, withdrawn)  # revoked while it waited: approving cannot activate it
    status, page = desk.confirm(links["approve"], desk.approver_token("grace"))
    assert status == 200, page
    [comment] = _comments(desk, "ACN-203", "could not be activated")
    assert f"GrantConflict: grant {pending.grant_id} is revoked" in comment
    assert "No access was granted" in comment and "tell the VPN administrators" in comment
    # The intake's end says the same: its Fail state is the comment's first sentence.
    arn = execution_arn_for(desk.intake_arn, execution_name("ACN-203", SOURCE))
    assert desk.wait_status(arn, {"SUCCEEDED", "FAILED"}) == "FAILED"
    ended = desk.cloud.client("stepfunctions").describe_execution(executionArn=arn)
    assert ended["error"] == "GrantConflict" and comment.startswith(ended["cause"] + " ")


def test_a_signed_invalid_ticket_is_told_once_and_an_unsigned_one_never(desk: Intake) -> None:
    body, headers = _delivery("ACN-204", customfield_10063=500)
    status, answer = desk.post_webhook(SOURCE, body, headers)
    assert status == 422 and [error["field"] for error in answer["errors"]] == ["hours"]
    [comment] = _comments(desk, "ACN-204", "did not make a valid access request")
    assert "hours (ticket field issue.fields.customfield_10063): " in comment and "48" in comment
    assert desk.post_webhook(SOURCE, body, headers)[0] == 422  # the same delivery, replayed
    renamed = {**headers, "X-Atlassian-Webhook-Identifier": str(uuid.uuid4())}  # the id is not signed
    assert desk.post_webhook(SOURCE, body, renamed)[0] == 422

    unsigned, _ = _delivery("ACN-205", customfield_10063=500)
    assert desk.post_webhook(SOURCE, unsigned, {})[0] == 401
    forged = {"X-Hub-Signature": "sha256=" + "0" * 64, "X-Atlassian-Webhook-Identifier": "forged"}
    assert desk.post_webhook(SOURCE, unsigned, forged)[0] == 401

    # Another signed delivery is told: once its comment is in, the replay's would have been too.
    status, _ = desk.post_webhook(SOURCE, *_delivery("ACN-206", customfield_10063=500))
    assert status == 422
    assert _comments(desk, "ACN-206", "did not make a valid access request")
    time.sleep(2)
    assert len(_comments(desk, "ACN-204", timeout=0)) == 1
    assert _comments(desk, "ACN-205", timeout=0) == []


def _reporter() -> dict[str, str]:
    """A reporter of their own: the pending limit counts each reporter's requests."""
    return {"accountId": uuid.uuid4().hex[:24], "displayName": "Pat Pending"}


def _resent_and_told_once(
    desk: Intake, ticket: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    """Jira Cloud sends a 409 or 429 again (the same body; its delivery id, unsigned, may differ): the
    same answer, and the ticket keeps its one comment."""
    assert desk.post_webhook(SOURCE, body, headers)[0] == status
    renamed = {**headers, "X-Atlassian-Webhook-Identifier": str(uuid.uuid4())}
    assert desk.post_webhook(SOURCE, body, renamed)[0] == status
    time.sleep(2)  # a comment the replays asked for would be in by now
    assert len(_comments(desk, ticket, timeout=0)) == 1


def test_a_ticket_past_its_reporters_pending_limit_is_told_which_wait_once(desk: Intake) -> None:
    reporter = _reporter()
    waiting = ["ACN-301", "ACN-302", "ACN-303"]  # the stack's MaxPendingRequests
    for key in waiting:
        status, answer = desk.post_webhook(SOURCE, *_delivery(key, reporter=reporter))
        assert status == 202, answer
    body, headers = _delivery("ACN-304", reporter=reporter)
    status, answer = desk.post_webhook(SOURCE, body, headers)
    assert status == 429 and "the limit is 3" in answer["message"], answer
    [comment] = _comments(desk, "ACN-304", "did not start an access request")
    assert comment.startswith(
        "Ticket ACN-304 did not start an access request yet: its reporter already has 3 access "
        "request(s) waiting for a decision (ACN-301, ACN-302, ACN-303), and the limit is 3 per person."
    )
    assert f"file a new ticket, or use the request form at {_form_url(desk)}." in comment
    unsigned, _ = _delivery("ACN-305", reporter=reporter)
    assert desk.post_webhook(SOURCE, unsigned, {"X-Atlassian-Webhook-Identifier": "forged"})[0] == 401
    _resent_and_told_once(desk, "ACN-304", body, headers, 429)
    assert _comments(desk, "ACN-305", timeout=0) == []


def test_a_ticket_whose_key_collides_with_another_is_told_once(desk: Intake) -> None:
    reporter = _reporter()
    status, answer = desk.post_webhook(SOURCE, *_delivery("ACN-311", reporter=reporter))
    assert status == 202, answer
    body, headers = _delivery("ACN.311", reporter=reporter)  # the same execution name as ACN-311
    status, answer = desk.post_webhook(SOURCE, body, headers)
    assert status == 409 and "ACN-311" in answer["message"], answer
    [comment] = _comments(desk, "ACN.311", "did not start an access request")
    assert comment.startswith(
        "Ticket ACN.311 did not start an access request, so nothing was requested: its key gives the "
        "same workflow name as ticket ACN-311's"
    )
    _resent_and_told_once(desk, "ACN.311", body, headers, 409)
