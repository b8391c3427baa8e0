"""Tickets that ask for access (a webhook source of kind grants): the configuration, the mapping and
its 422s, the access request a ticket starts (pending grant with its origin, same limit), the
comments a ticket gets (active, a day before the end, ended) and the day-before reminder schedule."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cvpn_shared.access.access_requests import AccessRequestServices, GrantDecisionTask, decide_grant_request
from cvpn_shared.access.approval import ApproverRule, decide
from cvpn_shared.access.callback import TicketCallbackTask, compose_message
from cvpn_shared.access.dal.grant_follow_up import TicketFollowUp
from cvpn_shared.access.dal.ticket_poster import HttpAnswer
from cvpn_shared.access.grant_comments import (
    GrantCommentTask,
    compose_grant_comment,
    post_grant_comment,
    reminder_at,
)
from cvpn_shared.access.grants.dal import DynamoDbGrants
from cvpn_shared.access.grants.logic import AccessGrants, GrantHook
from cvpn_shared.access.grants.models import Actor, Approver, Grant, GrantAsk, parse_grant
from cvpn_shared.access.mapping import MappingFailed, map_access_request
from cvpn_shared.access.profiles import parse_profile
from cvpn_shared.access.signatures import SignatureScheme, SigningSecrets, sign
from cvpn_shared.access.sources import SourceConfigInvalid, parse_source_config
from cvpn_shared.access.start import StartResult
from cvpn_shared.access.ticket_grants import TicketGrantStarter
from cvpn_shared.access.webhooks import WebhookIntake
from tests.access.unit.grants.conftest import ALICE, CAROL, ENGINEERING, ISSUER, TABLE, profile_document
from tests.access.unit.grants.test_access_grants import Clock, Profiles, Schedules, Sessions
from tests.access.unit.grants.test_access_requests import Endpoints, Pending
from tests.access.unit.webhooks.conftest import (
    MemoryDeliveries,
    MemorySecrets,
    MemorySources,
    MemoryStarter,
    MemoryTickets,
)
from tests.fixtures import REPO_ROOT

JIRA = "https://acme.atlassian.net"
SOURCE = "jira-access"
SECRET = "jira-access-current"
FIELDS = "issue.fields.customfield_"
MAPPED = {"request_id": "issue.key", "sub": "a", "vpn_user": "b"}
CAROL_ACTOR = Actor(
    kind="oidc", id=Approver(issuer=ISSUER, sub=CAROL.sub, name=CAROL.name).key, name=CAROL.name
)


def grants_source(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "kind": "grants",
        "signature": "jira",
        "secret_id": "intake/jira-access",
        "approval": "required",
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
            "url_template": f"{JIRA}/rest/api/3/issue/{{request_id}}/comment",
            "credentials_secret_id": "intake-callback/jira",
        },
    }
    config.update(changes)
    return config


def ticket(key: str = "ACC-7", **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "reporter": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Alice Example"},
        "customfield_10060": "alice",
        "customfield_10061": {"value": "engineering"},
        "customfield_10062": [{"value": ENGINEERING}],
        "customfield_10063": 48,
        "summary": "database migration this week",
    }
    values.update(fields)
    return {"webhookEvent": "jira:issue_created", "issue": {"key": key, "fields": values}}


# ------------------------------------------------------------------------------ configuration
@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"approval": "pre-approved"}, "approval", "wait for the profile's approvers"),
        ({"defaults": {}}, "request", "defaults.issuer"),
        ({"defaults": {"issuer": JIRA, "vpn_user": "alice"}}, "request", "defaults.vpn_user"),
        ({"fields": {"request_id": "issue.key", "vpn_user": "x"}}, "request", "fields.sub"),
        ({"fields": {**MAPPED, "vpc_id": "c"}}, "fields", "vpc_id"),
        ({"fields": {**MAPPED, "person.sub": "c"}}, "fields", "person.sub"),
        ({"defaults": {"issuer": JIRA, "subnet_ids": []}}, "defaults", "subnet_ids"),
    ],
)  # fmt: skip
def test_a_grants_source_configuration_names_what_is_wrong(
    changes: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(SourceConfigInvalid) as caught:
        parse_source_config(SOURCE, grants_source(**changes))
    assert any(error["field"] == field and says in error["message"] for error in caught.value.errors), (
        caught.value.errors
    )


def test_an_endpoint_source_still_maps_endpoint_requests() -> None:
    config = grants_source(kind="endpoint")
    with pytest.raises(SourceConfigInvalid) as caught:
        parse_source_config(SOURCE, config)
    assert "not a field of the request" in str(caught.value)


# ------------------------------------------------------------------------------ the mapping
def test_a_ticket_maps_to_an_access_request_naming_the_reporter_by_account() -> None:
    config = parse_source_config(SOURCE, grants_source())
    access = map_access_request(config, ticket(customfield_10063="36"))
    assert (access.issuer, access.sub, access.vpn_user) == (JIRA, "5b10ac8d82e05b22cc7d4ef5", "alice")
    assert (access.profile, access.access_groups, access.hours) == ("engineering", [ENGINEERING], 36.0)
    assert access.requester == "Alice Example"
    assert access.reason_for_grant() == "ACC-7: database migration this week"


def test_groups_written_as_text_are_split() -> None:
    config = parse_source_config(
        SOURCE, grants_source(fields={**grants_source()["fields"], "access_groups": "issue.fields.groups"})
    )
    access = map_access_request(config, ticket(groups="a-group, b-group,"))
    assert access.access_groups == ["a-group", "b-group"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"reporter": {"emailAddress": "alice@example.com"}}, {"sub"}),
        ({"customfield_10060": "alice smith"}, {"vpn_user"}),
        ({"customfield_10060": None}, {"vpn_user"}),
        ({"customfield_10061": {"value": "Engineering!"}}, {"profile"}),
        ({"customfield_10063": 0}, {"hours"}),
        ({"customfield_10063": True}, {"hours"}),
        ({"customfield_10063": "a day"}, {"hours"}),
        ({"summary": ""}, {"reason"}),
        ({"customfield_10062": [{"value": "x" * 300}]}, {"access_groups[0]"}),
    ],
)
def test_a_bad_or_missing_field_is_named_with_the_expression_it_came_from(
    fields: dict[str, Any], expected: set[str]
) -> None:
    config = parse_source_config(SOURCE, grants_source())
    with pytest.raises(MappingFailed) as caught:
        map_access_request(config, ticket(**fields))
    assert {error["field"] for error in caught.value.errors} == expected
    assert all(error.get("mapped_from") for error in caught.value.errors)


# ------------------------------------------------------------------------------ the webhook
@dataclass
class Recorded:
    """Submissions as the form's store keeps them: once, or replaced by the same source."""

    saved: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put(self, submission: dict[str, Any], *, replace: bool = False) -> None:
        existing = self.saved.get(submission["request_id"])
        if existing is not None and not (replace and existing.get("source") == submission.get("source")):
            raise RuntimeError("ConditionalCheckFailed")
        self.saved[submission["request_id"]] = submission

    def get(self, request_id: str) -> dict[str, Any] | None:
        return self.saved.get(request_id)


@dataclass
class Desk:
    """The webhook intake wired to the grants table (moto) and in-memory collaborators."""

    intake: WebhookIntake
    grants: AccessGrants
    executions: MemoryStarter
    submissions: Recorded
    pending: Pending
    tickets: MemoryTickets
    clock: Clock

    def deliver(self, payload: dict[str, Any], delivery: str = "d-1") -> tuple[int, dict[str, Any]]:
        body = json.dumps(payload).encode()
        headers = sign(SignatureScheme.JIRA, body, SECRET, timestamp=1_800_000_000)
        headers["X-Atlassian-Webhook-Identifier"] = delivery
        answer = self.intake.receive(SOURCE, headers, body, is_base64_encoded=False)
        return answer.status, answer.body


class _Intake:
    """``IntakeStarter`` over the in-memory executions."""

    def __init__(self, executions: MemoryStarter) -> None:
        self.executions = executions

    def execution_arn(self, source: str, request_id: str, run: int = 1) -> str:
        return self.executions.execution_arn(source, request_id, run)

    def start(
        self,
        source: str,
        request: dict[str, Any],
        approval_required: bool,
        callback: dict[str, Any] | None,
        run: int = 1,
    ) -> StartResult:
        assert approval_required, "an access request always waits for approval"
        return self.executions.start(source, request, approval_required, callback, run)


@pytest.fixture
def desk(grants_table: Any) -> Desk:
    clock = Clock()
    grants = AccessGrants(
        store=DynamoDbGrants(grants_table, TABLE),
        schedules=Schedules(),
        sessions=Sessions(),
        profiles=Profiles(parse_profile("engineering", profile_document(max_grant_hours=72))),
        endpoints=Endpoints(),
        clock=clock,
    )
    submissions, pending, executions, tickets = Recorded(), Pending(limit=2), MemoryStarter(), MemoryTickets()
    services = AccessRequestServices(
        grants=grants,
        submissions=submissions,
        start=lambda *_: "unused: the ticket starter replaces it",
        pending=pending,
        approver_group=lambda profile: "vpn-approvers",
        clock=clock,
    )
    starter = _Intake(executions)
    intake = WebhookIntake(
        sources=MemorySources({SOURCE: grants_source()}),
        secrets=MemorySecrets({"intake/jira-access": {"current": SECRET}}),
        deliveries=MemoryDeliveries(),
        starter=starter,  # type: ignore[arg-type]
        submissions=submissions,
        tickets=tickets,
        clock=lambda: 1_800_000_000.0,
        grants=TicketGrantStarter(starter, lambda: services),  # type: ignore[arg-type]
    )
    return Desk(intake, grants, executions, submissions, pending, tickets, clock)


def test_a_ticket_starts_an_access_request_with_a_pending_grant_that_remembers_the_ticket(desk: Desk) -> None:
    status, body = desk.deliver(ticket())
    assert status == 202, body
    assert body["request_id"] == "ACC-7"
    [execution] = desk.executions.started.values()
    request = execution["request"]
    assert request["person"] == {"issuer": JIRA, "sub": "5b10ac8d82e05b22cc7d4ef5"}
    assert (request["vpn_user"], request["profile"], request["hours"]) == ("alice", "engineering", 48.0)
    assert execution["approval_required"] is True
    [grant] = desk.grants.store.of_person(f"{JIRA}#5b10ac8d82e05b22cc7d4ef5")
    assert grant.state == "pending" and grant.request_id == "ACC-7"
    assert grant.origin is not None
    assert (grant.origin.source, grant.origin.ticket) == (SOURCE, "ACC-7")
    assert grant.origin.callback is not None
    assert grant.origin.callback.url == f"{JIRA}/rest/api/3/issue/ACC-7/comment"
    recorded = desk.submissions.saved["ACC-7"]
    assert (recorded["requester_issuer"], recorded["requester_sub"]) == (JIRA, "5b10ac8d82e05b22cc7d4ef5")
    assert recorded["grant_id"] == grant.grant_id and recorded["source"] == SOURCE


def test_the_same_delivery_or_ticket_again_starts_nothing_more(desk: Desk) -> None:
    assert desk.deliver(ticket())[0] == 202
    assert desk.deliver(ticket())[0] == 200
    assert desk.deliver(ticket(), delivery="d-2")[0] == 200
    assert len(desk.executions.started) == 1
    assert len(desk.grants.store.every()) == 1


@pytest.mark.parametrize(
    ("fields", "field", "mapped_from"),
    [
        ({"customfield_10062": [{"value": "S-1-5-21-9"}]}, "access_groups[0]", f"{FIELDS}10062[].value"),
        ({"customfield_10063": 100}, "hours", f"{FIELDS}10063"),
        ({"customfield_10061": {"value": "finance"}}, "profile", f"{FIELDS}10061.value"),
    ],
)  # fmt: skip
def test_what_the_profile_refuses_is_422_naming_the_field_and_the_fixed_ticket_starts(
    desk: Desk, fields: dict[str, Any], field: str, mapped_from: str
) -> None:
    status, body = desk.deliver(ticket(**fields))
    assert status == 422, body
    assert [(error["field"], error["mapped_from"]) for error in body["errors"]] == [(field, mapped_from)]
    assert desk.executions.started == {} and desk.grants.store.every() == []
    status, body = desk.deliver(ticket(), delivery="d-2")  # the ticket, fixed, is sent again
    assert status == 202, body


def test_a_ticket_missing_its_reporter_is_422_and_nothing_is_held(desk: Desk) -> None:
    status, body = desk.deliver(ticket(reporter={"emailAddress": "alice@example.com"}))
    assert status == 422
    assert [error["field"] for error in body["errors"]] == ["sub"]
    assert desk.tickets.items == {} and desk.pending.held == {}


def test_the_reporters_pending_limit_counts_tickets_too(desk: Desk) -> None:
    assert desk.deliver(ticket("ACC-1"), "d-1")[0] == 202
    assert desk.deliver(ticket("ACC-2"), "d-2")[0] == 202
    status, body = desk.deliver(ticket("ACC-3"), "d-3")
    assert status == 429 and "limit" in body["message"]
    assert desk.deliver(ticket("ACC-3"), "d-4")[0] == 429  # released: sent again, refused again


# ------------------------------------------------------------------------------ no self-approval
def test_an_approver_named_by_the_ticket_may_not_approve_it() -> None:
    """The reporter's account is the ticket system's (another issuer than the sign-in), so no sub can
    match: a name of theirs that is the approver's refuses."""

    @dataclass
    class Context:
        recorded: dict[str, Any]

        def request(self, request_id: str) -> dict[str, Any] | None:
            return self.recorded

        def approver_rule(self, profile: str | None) -> ApproverRule:
            return ApproverRule("groups", "vpn-approvers", "profile")

    @dataclass
    class Records:
        def get(self, approval_id: str) -> dict[str, Any] | None:
            return {"approval_id": approval_id, "status": "PENDING", "request_id": "ACC-7", "task_token": "t"}

        def decide(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            raise AssertionError("a self-approval decides nothing")

    from cvpn_shared.access.approval import link_signature

    secret = SigningSecrets("k", None)
    query = {"decision": "approve", "expires": "1900000000"}
    query["signature"] = link_signature("k", "A" * 20, "approve", 1900000000)
    recorded = {
        "request_id": "ACC-7",
        "requester": "Alice Example",
        "requester_issuer": JIRA,
        "requester_sub": "5b10ac8d82e05b22cc7d4ef5",
        "vpn_user": "alice",
        "profile": "engineering",
    }
    claims = {"iss": ISSUER, "sub": "00u-alice", "email": "alice@example.com", "groups": ["vpn-approvers"]}
    page = decide(
        "A" * 20,
        query,
        records=Records(),
        tasks=None,  # type: ignore[arg-type]
        context=Context(recorded),
        link_secret=secret,
        claims=claims,
        now=1_800_000_000,
    )
    assert page.status == 403 and "names you as the requester" in page.message


# ------------------------------------------------------------------------------ comments
def _from_ticket(desk: Desk, hours: float = 48) -> Grant:
    assert desk.deliver(ticket(customfield_10063=hours))[0] == 202
    [grant] = desk.grants.store.every()
    return grant


def _approve(desk: Desk, grant: Grant) -> Grant:
    task = GrantDecisionTask.model_validate(
        {
            "action": "activate",
            "request": {"request_id": "ACC-7", "grant_id": grant.grant_id},
            "approval": {"approved_by": {"issuer": ISSUER, "sub": CAROL.sub, "name": CAROL.name}},
        }
    )
    decide_grant_request(task, grants=desk.grants)
    return desk.grants.get(grant.grant_id)


def test_the_intake_comments_that_the_access_is_active_until_its_end(desk: Desk) -> None:
    grant = _approve(desk, _from_ticket(desk))
    outcome = {
        "grant_id": grant.grant_id,
        "kind": "grant",
        "vpn_user": "alice",
        "endpoint_id": grant.endpoint_id,
        "starts_at": grant.starts_at.isoformat() if grant.starts_at else None,
        "ends_at": grant.ends_at.isoformat() if grant.ends_at else None,
        "approved_by": grant.approved_by,
    }
    task = TicketCallbackTask.model_validate(
        {
            "callback": {"kind": "jira-comment", "url": f"{JIRA}/x"},
            "source": SOURCE,
            "request_id": "ACC-7",
            "outcome": {"status": "SUCCEEDED", "grant": outcome},
        }
    )
    text = compose_message(task)
    assert grant.ends_at is not None
    assert f"Access for ACC-7 is active: alice may connect to endpoint {grant.endpoint_id}" in text
    assert f"until {grant.ends_at:%Y-%m-%d %H:%M} UTC, approved by {CAROL.name}" in text
    assert "A reminder follows a day before the end." in text
    assert outcome["grant_id"] in text
    short = {**outcome, "ends_at": (grant.starts_at + timedelta(hours=8)).isoformat()}  # type: ignore[operator]
    task = task.model_copy(update={"outcome": task.outcome.model_copy(update={"grant": short})})
    assert "reminder" not in compose_message(task)


def test_the_reminder_is_due_a_day_before_the_end_and_only_for_a_longer_grant(desk: Desk) -> None:
    grant = _approve(desk, _from_ticket(desk))
    assert grant.ends_at is not None
    assert reminder_at(grant, desk.clock()) == grant.ends_at - timedelta(days=1)
    assert reminder_at(grant, grant.ends_at - timedelta(hours=23)) is None
    plain = parse_grant({**grant.model_dump(mode="json"), "origin": None})
    assert reminder_at(plain, desk.clock()) is None  # no ticket, no comment


def test_comment_texts_say_only_what_is_true_when_they_are_posted(desk: Desk) -> None:
    grant = _approve(desk, _from_ticket(desk))
    assert grant.ends_at is not None
    due = grant.ends_at - timedelta(days=1)
    reminder = compose_grant_comment(grant, "reminder", due)
    assert reminder is not None
    assert reminder.startswith(f"Access for ACC-7 ends in about a day, at {grant.ends_at:%Y-%m-%d %H:%M} UTC")
    assert "alice" in reminder and "extension" in reminder
    assert compose_grant_comment(grant, "reminder", due - timedelta(hours=12)) is None  # extended since
    assert compose_grant_comment(grant, "ended", due) is None  # still active
    desk.clock.now = grant.ends_at + timedelta(seconds=5)
    expired = desk.grants.expire(grant.grant_id)
    assert expired is not None
    text = compose_grant_comment(expired.grant, "ended", desk.clock())
    assert text is not None and text.startswith(
        f"Access for ACC-7 ended at {grant.ends_at:%Y-%m-%d %H:%M} UTC"
    )
    assert compose_grant_comment(expired.grant, "reminder", desk.clock()) is None


def test_a_revoked_grant_says_by_whom_and_a_refused_request_leaves_it_to_the_intake(desk: Desk) -> None:
    grant = _approve(desk, _from_ticket(desk))
    admin = Actor(kind="aws", id="arn:aws:iam::123456789012:user/admin", name="user/admin")
    revoked = desk.grants.revoke(grant.grant_id, by=admin, reason="left the team").grant
    text = compose_grant_comment(revoked, "ended", desk.clock())
    assert text is not None and "was revoked" in text and "by user/admin" in text
    refused = desk.grants.refuse_request(_other_pending(desk).grant_id, by=admin, reason="no")
    assert refused is not None and compose_grant_comment(refused, "ended", desk.clock()) is None


def _other_pending(desk: Desk) -> Grant:
    assert desk.deliver(ticket("ACC-8"), "d-8")[0] == 202
    return next(grant for grant in desk.grants.store.every() if grant.state == "pending")


@dataclass
class Http:
    answers: list[HttpAnswer]
    posted: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def post(self, url: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
        self.posted.append((url, headers, body))
        return self.answers.pop(0)


def test_a_comment_goes_to_the_tickets_callback_and_an_unreachable_ticket_is_retried(desk: Desk) -> None:
    from cvpn_shared.access.callback import TicketCallbackRejected, TicketUnreachable

    grant = _approve(desk, _from_ticket(desk))
    assert grant.ends_at is not None
    due = grant.ends_at - timedelta(days=1)
    secrets = MemorySecrets({"intake-callback/jira": {"email": "bot@example.com", "api_token": "t"}})
    http = Http([HttpAnswer(503, "busy"), HttpAnswer(201, "{}"), HttpAnswer(404, "gone")])
    with pytest.raises(TicketUnreachable):
        post_grant_comment(grant, "reminder", now=due, secrets=secrets, http=http, clock=lambda: 0)
    sent = post_grant_comment(grant, "reminder", now=due, secrets=secrets, http=http, clock=lambda: 0)
    assert sent["delivered"] is True and "ends in about a day" in sent["message"]
    url, headers, body = http.posted[-1]
    assert url == f"{JIRA}/rest/api/3/issue/ACC-7/comment" and headers["Authorization"].startswith("Basic ")
    assert "ends in about a day" in json.dumps(json.loads(body))
    with pytest.raises(TicketCallbackRejected):
        post_grant_comment(grant, "reminder", now=due, secrets=secrets, http=http, clock=lambda: 0)
    skipped = post_grant_comment(grant, "ended", now=due, secrets=secrets, http=http, clock=lambda: 0)
    assert skipped["delivered"] is False and len(http.posted) == 3


def test_a_comment_task_from_a_schedule_reads_its_time_and_ignores_an_unfilled_one() -> None:
    task = GrantCommentTask.model_validate(
        {"grant_id": "g-" + "0" * 32, "moment": "reminder", "scheduled_time": "2026-03-03T09:00:00Z"}
    )
    assert task.scheduled_time == datetime.fromisoformat("2026-03-03T09:00:00+00:00")
    unfilled = {
        "grant_id": "g-" + "0" * 32,
        "moment": "ended",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    assert GrantCommentTask.model_validate(unfilled).scheduled_time is None
    with pytest.raises(ValueError, match="moment"):
        GrantCommentTask.model_validate({"grant_id": "g-" + "0" * 32, "moment": "active"})


# ------------------------------------------------------------------------------ the follow-up
@dataclass
class SchedulerClient:
    """Scheduler's API as the follow-up uses it: create (Conflict when it exists), update, delete."""

    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail: bool = False

    def _check(self) -> None:
        if self.fail:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "X")

    def create_schedule(self, **params: Any) -> None:
        self._check()
        if params["Name"] in self.schedules:
            raise ClientError({"Error": {"Code": "ConflictException", "Message": "exists"}}, "CreateSchedule")
        self.schedules[params["Name"]] = params

    def update_schedule(self, **params: Any) -> None:
        self._check()
        self.schedules[params["Name"]] = params

    def delete_schedule(self, **params: Any) -> None:
        self._check()
        if self.schedules.pop(params["Name"], None) is None:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "Delete")


@dataclass
class LambdaClient:
    invoked: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    def invoke(self, **params: Any) -> None:
        if self.fail:
            raise ClientError({"Error": {"Code": "ServiceException", "Message": "down"}}, "Invoke")
        self.invoked.append({**params, "Payload": json.loads(params["Payload"])})


@dataclass
class RecordingHook:
    """A hook after the ticket's, as the certificates' is: what it was told, in order."""

    seen: list[tuple[str, str]] = field(default_factory=list)

    def activated(self, grant: Grant, now: datetime) -> None:
        self.seen.append(("activated", grant.state))

    def extended(self, grant: Grant, now: datetime) -> None:
        self.seen.append(("extended", grant.state))

    def ended(self, grant: Grant, now: datetime) -> None:
        self.seen.append(("ended", grant.state))


def _follow_up(desk: Desk, *after: GrantHook) -> tuple[SchedulerClient, LambdaClient]:
    scheduler, functions = SchedulerClient(), LambdaClient()
    follow_up = TicketFollowUp(  # what build_access_grants hands in, first
        scheduler, functions, group_name="grants", comment_function_arn="arn:comment", role_arn="arn:role"
    )
    desk.grants._hooks = (follow_up, *after)
    return scheduler, functions


def test_activation_schedules_the_reminder_an_extension_moves_it_and_the_end_removes_it(desk: Desk) -> None:
    scheduler, functions = _follow_up(desk)
    grant = _approve(desk, _from_ticket(desk))
    assert grant.ends_at is not None
    name = f"{grant.grant_id}-reminder"
    due = grant.ends_at - timedelta(days=1)
    assert scheduler.schedules[name]["ScheduleExpression"] == f"at({due:%Y-%m-%dT%H:%M:%S})"
    target = scheduler.schedules[name]["Target"]
    assert target["Arn"] == "arn:comment" and target["RoleArn"] == "arn:role"
    assert json.loads(target["Input"])["moment"] == "reminder"
    assert functions.invoked == []  # the intake posts the active comment
    desk.clock.now += timedelta(hours=10)
    longer = desk.grants.extend(grant.grant_id, hours=60, by=CAROL_ACTOR, reason="more")
    assert longer.ends_at is not None
    moved = longer.ends_at - timedelta(days=1)
    assert scheduler.schedules[name]["ScheduleExpression"] == f"at({moved:%Y-%m-%dT%H:%M:%S})"
    desk.clock.now = longer.ends_at - timedelta(hours=2)
    desk.grants.extend(grant.grant_id, hours=61, by=CAROL_ACTOR, reason="a little more")
    assert name in scheduler.schedules  # 61 h from now: still more than a day
    desk.clock.now += timedelta(hours=1)
    desk.grants.revoke(grant.grant_id, by=CAROL_ACTOR, reason="done early")
    assert name not in scheduler.schedules
    assert [call["Payload"] for call in functions.invoked] == [
        {"grant_id": grant.grant_id, "moment": "ended"}
    ]
    assert functions.invoked[0]["InvocationType"] == "Event"


def test_a_grant_of_a_day_or_less_gets_no_reminder(desk: Desk) -> None:
    scheduler, _ = _follow_up(desk)
    _approve(desk, _from_ticket(desk, hours=24))
    assert scheduler.schedules == {}


def test_grants_from_no_ticket_get_no_follow_up(desk: Desk) -> None:
    scheduler, functions = _follow_up(desk)
    grant = desk.grants.grant_break_glass(
        GrantAsk(person=ALICE, profile="engineering", hours=48, reason="x"), by=CAROL_ACTOR
    )
    desk.grants.revoke(grant.grant_id, by=CAROL_ACTOR, reason="done")
    assert scheduler.schedules == {} and functions.invoked == []


def test_a_failing_scheduler_or_lambda_never_changes_the_grant(desk: Desk) -> None:
    later = RecordingHook()
    scheduler, functions = _follow_up(desk, later)
    scheduler.fail = functions.fail = True
    grant = _approve(desk, _from_ticket(desk))
    assert grant.state == "active" and grant.ends_at is not None
    desk.clock.now += timedelta(hours=1)
    longer = desk.grants.extend(grant.grant_id, hours=60, by=CAROL_ACTOR, reason="more")
    assert longer.ends_at is not None and longer.ends_at > grant.ends_at
    assert desk.grants.get(grant.grant_id) == longer
    ended = desk.grants.revoke(grant.grant_id, by=CAROL_ACTOR, reason="x").grant
    assert ended.state == "revoked" and desk.grants.get(grant.grant_id) == ended
    assert scheduler.schedules == {} and functions.invoked == []
    # The hooks after the ticket's still ran, each moment once.
    assert later.seen == [("activated", "active"), ("extended", "active"), ("ended", "revoked")]


def test_a_refused_request_ends_nothing_and_a_break_glass_grant_is_activated(desk: Desk) -> None:
    later = RecordingHook()
    scheduler, functions = _follow_up(desk, later)
    pending = _from_ticket(desk)
    refused = desk.grants.revoke(pending.grant_id, by=CAROL_ACTOR, reason="no")
    assert refused.grant.state == "revoked" and later.seen == []
    assert scheduler.schedules == {} and functions.invoked == []
    glass = desk.grants.grant_break_glass(
        GrantAsk(person=ALICE, profile="engineering", hours=48, reason="incident"), by=CAROL_ACTOR
    )
    desk.grants.revoke(glass.grant_id, by=CAROL_ACTOR, reason="done")
    assert later.seen == [("activated", "active"), ("ended", "revoked")]


def test_the_example_grants_source_is_valid_and_maps_a_ticket() -> None:
    example = json.loads((REPO_ROOT / "events" / "webhooks" / "sources" / "jira-access.json").read_text())
    config = parse_source_config(SOURCE, example)
    assert config.grants and config.approval_required
    access = map_access_request(config, ticket())
    assert access.issuer == "https://example.atlassian.net" and access.vpn_user == "alice"
