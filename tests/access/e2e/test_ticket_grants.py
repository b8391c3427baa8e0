"""A ticket that asks for access, end to end on the local cloud: a signed Jira delivery for a grants
profile becomes an access request on the shared endpoint (nothing provisioned), an approver confirms
on the approval page, the grant is active and the ticket says until when; moving the emulated clock
gives the ticket the day-before comment, then the ended one.

The emulated clock runs at real speed in this module (as in test_grants) and is moved by the test."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from cvpn_shared.access.grants.dal import DynamoDbGrants
from cvpn_shared.access.grants.models import Grant
from cvpn_shared.access.signatures import SignatureScheme, sign
from tests.access.e2e.conftest import Intake, links_of
from tests.fixtures.polling import wait_until
from tests.fixtures.shared_endpoints import shared_endpoint

SOURCE = "jira-access"
SECRET = "jira-access-secret"
JIRA = "https://acme.atlassian.net"
REPORTER = "5b10ac8d82e05b22cc7d4ef5"
ENGINEERING = "S-1-5-21-1004336348-1177238915-682003330-512"
PROFILE = "tickets-eng"


def _configure_source(intake: Intake) -> None:
    """What an operator does for a grants source: its signing secret and its mapping parameter."""
    outputs = intake.stack.outputs
    intake.cloud.client("secretsmanager").create_secret(
        Name=f"{outputs['IntakeSecretsPrefix']}{SOURCE}", SecretString=json.dumps({"current": SECRET})
    )
    config = {
        "kind": "grants",
        "signature": "jira",
        "secret_id": f"{outputs['IntakeSecretsPrefix']}{SOURCE}",
        "approval": "required",
        "accept_when": "webhookEvent == 'jira:issue_created'",
        "fields": {
            "request_id": "issue.key",
            "sub": "issue.fields.reporter.accountId",
            "requester": "issue.fields.reporter.displayName",
            "vpn_user": "issue.fields.customfield_10060",
            "profile": "issue.fields.customfield_10061.value",
            "access_groups": "issue.fields.customfield_10062[].value",
            "hours": "issue.fields.customfield_10063",
            "reason": "issue.fields.summary",
        },
        "defaults": {"issuer": JIRA},
        "callback": {
            "kind": "jira-comment",
            "url_template": intake.tickets.base_url + "/rest/api/3/issue/{request_id}/comment",
            "credentials_secret_id": f"{outputs['IntakeCallbackSecretsPrefix']}jira",
        },
    }
    intake.cloud.client("ssm").put_parameter(
        Name=f"{outputs['IntakeSourcesParameterPath']}/{SOURCE}", Type="String", Value=json.dumps(config)
    )


@pytest.fixture(scope="module")
def desk(intake: Intake) -> Iterator[Intake]:
    with intake.at_real_speed():
        shared_endpoint(intake, profile=PROFILE, request_id="NET-TK1", cidr="10.253.0.0/22")
        _configure_source(intake)
        intake.cloud.clock.advance(300)  # the subnet association completes
        yield intake


def _delivery(key: str, **fields: Any) -> tuple[bytes, dict[str, str]]:
    values: dict[str, Any] = {
        "summary": "migrate the billing database",
        "reporter": {"accountId": REPORTER, "displayName": "Alice Example"},
        "customfield_10060": "alice",
        "customfield_10061": {"value": PROFILE},
        "customfield_10062": [{"value": ENGINEERING}],
        "customfield_10063": 30,
    }
    values.update(fields)
    payload = {"webhookEvent": "jira:issue_created", "issue": {"key": key, "fields": values}}
    body = json.dumps(payload).encode()
    headers = sign(SignatureScheme.JIRA, body, SECRET, timestamp=int(time.time()))
    headers["X-Atlassian-Webhook-Identifier"] = str(uuid.uuid4())
    return body, headers


def _grants(intake: Intake) -> DynamoDbGrants:
    return DynamoDbGrants(intake.cloud.client("dynamodb"), intake.stack.outputs["AccessGrantsTableName"])


def _grant_of(intake: Intake, ticket: str, reporter: str = REPORTER) -> Grant:
    [grant] = [g for g in _grants(intake).of_person(f"{JIRA}#{reporter}") if g.request_id == ticket]
    return grant


def _comments(intake: Intake, ticket: str, containing: str, timeout: float = 60) -> list[str]:
    """The texts of the Jira comments the ticket received that contain ``containing``."""
    deadline = time.monotonic() + timeout
    while True:
        texts = [
            json.loads(item["body"])["body"]["content"][0]["content"][0]["text"]
            for item in intake.tickets.callbacks_for(f"/issue/{ticket}/comment", timeout=0.1)
        ]
        found = [text for text in texts if containing in text]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_ticket_grant_is_approved_commented_reminded_and_ended(desk: Intake) -> None:
    """Given a Jira ticket asking for 30 hours on a grants profile, when an approver confirms the
    approval link, then the reporter's grant is active on the shared endpoint and the ticket says
    until when; a day before the end the ticket is reminded; after the end it is told it ended."""
    intake = desk
    body, headers = _delivery("ACC-101")
    status, answer = intake.post_webhook(SOURCE, body, headers)
    assert status == 202, answer
    grant = _grant_of(intake, "ACC-101")
    assert grant.state == "pending" and grant.person.vpn_user == "alice" and grant.hours == 30
    assert grant.origin is not None and grant.origin.ticket == "ACC-101"
    assert intake.endpoints_for("ACC-101") == []  # nothing provisioned for a ticket on a grants profile

    message = intake.approval_message("ACC-101")
    assert "alice" in message["Message"] and PROFILE in message["Message"]
    status, page = intake.confirm(links_of(message)["approve"], intake.approver_token("grace"))
    assert status == 200, page

    wait_until("the grant to be active", lambda: _grant_of(intake, "ACC-101").state == "active")
    active = _grant_of(intake, "ACC-101")
    assert active.ends_at is not None and active.approver is not None and active.approver.sub == "grace"
    [comment] = _comments(intake, "ACC-101", "is active")
    assert f"until {active.ends_at:%Y-%m-%d %H:%M} UTC" in comment and "alice" in comment
    schedules = intake.cloud.client("scheduler")
    group = intake.stack.outputs["GrantScheduleGroupName"]
    reminder = schedules.get_schedule(Name=f"{active.grant_id}-reminder", GroupName=group)
    due = active.ends_at - timedelta(days=1)
    assert reminder["ScheduleExpression"] == f"at({due:%Y-%m-%dT%H:%M:%S})"

    clock = intake.cloud.clock
    clock.advance((due - clock.now()).total_seconds() + 5)
    [reminded] = _comments(intake, "ACC-101", "ends in about a day")
    assert f"at {active.ends_at:%Y-%m-%d %H:%M} UTC" in reminded
    assert _comments(intake, "ACC-101", "ended at", timeout=0.5) == []

    clock.advance((active.ends_at - clock.now()).total_seconds() + 5)
    wait_until("the grant to expire", lambda: _grant_of(intake, "ACC-101").state == "expired")
    [ended] = _comments(intake, "ACC-101", "ended at")
    assert "no longer connects" in ended
    assert f"{active.grant_id}-reminder" not in intake.schedule_names()


def test_one_person_by_form_and_one_by_ticket_share_the_one_endpoint(desk: Intake) -> None:
    """Given the profile's one shared endpoint, when Carol asks on the form and Dave through a ticket
    and an approver confirms both, then both hold active grants on that endpoint, both connect, and
    no endpoint was added."""
    intake = desk
    before = intake.live_endpoints()
    carol_sub = f"carol-{uuid.uuid4().hex[:6]}"
    status, carol = intake.ask(
        intake.id_token_for(carol_sub, "Carol", []), PROFILE, [ENGINEERING], "release night", hours=6
    )
    assert status == 202, carol
    body, headers = _delivery(
        "ACC-103", customfield_10060="dave", reporter={"accountId": "dave-1", "displayName": "Dave"}
    )
    status, answer = intake.post_webhook(SOURCE, body, headers)
    assert status == 202, answer

    approver = intake.approver_token("grace")
    for request_id in (carol["request_id"], "ACC-103"):
        status, page = intake.confirm(intake.approval_links(request_id)["approve"], approver)
        assert status == 200, page

    grants = _grants(intake)

    def both_active() -> bool:
        return all(
            grants.get(grant_id).state == "active"  # type: ignore[union-attr]
            for grant_id in (carol["grant_id"], _grant_of(intake, "ACC-103", "dave-1").grant_id)
        )

    wait_until("both grants to be active", both_active)
    carols, daves = grants.get(carol["grant_id"]), _grant_of(intake, "ACC-103", "dave-1")
    assert carols is not None and carols.endpoint_id == daves.endpoint_id
    assert (carols.person.vpn_user, daves.person.vpn_user) == (carol_sub, "dave")
    assert intake.live_endpoints() == before
    for user in (carol_sub, "dave"):
        result = intake.attempt(carols.endpoint_id, user)
        assert result.connected, result.error_msg_on_denied_connection


def test_a_ticket_the_profile_refuses_is_422_naming_the_field(desk: Intake) -> None:
    body, headers = _delivery("ACC-102", customfield_10063=500)
    status, answer = desk.post_webhook(SOURCE, body, headers)
    assert status == 422, answer
    assert [error["field"] for error in answer["errors"]] == ["hours"]
    assert answer["errors"][0]["mapped_from"] == "issue.fields.customfield_10063"
    body, headers = _delivery("ACC-102", reporter={"displayName": "No Account"})
    status, answer = desk.post_webhook(SOURCE, body, headers)
    assert status == 422 and [error["field"] for error in answer["errors"]] == ["sub"]
    assert [g for g in _grants(desk).of_person(f"{JIRA}#{REPORTER}") if g.request_id == "ACC-102"] == []
