"""Access requests on a grants profile (``cvpn_shared.access.access_requests``) over the grants table
(moto, the template's key and indexes): a request records a pending grant and starts the intake with
approval; the decision activates, extends or refuses it with who decided; the status is in words."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from cvpn_shared.access.access_requests import (
    AccessRequestServices,
    GrantDecisionTask,
    RequestOrigin,
    decide_grant_request,
    grant_request_status,
    start_access_request,
    start_extension_request,
)
from cvpn_shared.access.form import TooManyPending
from cvpn_shared.access.grants.dal import DynamoDbGrants
from cvpn_shared.access.grants.logic import AccessGrants, GrantConflict, GrantNotFound
from cvpn_shared.access.grants.models import GrantAsk, GrantInvalid
from cvpn_shared.access.profiles import parse_profile
from tests.access.unit.grants.conftest import ALICE, BOB, CAROL, ENGINEERING, ISSUER, TABLE, profile_document
from tests.access.unit.grants.test_access_grants import ENDPOINTS, Clock, Profiles, Schedules, Sessions

FINANCE = "S-1-5-21-1004336348-1177238915-682003330-1105"


class Endpoints:
    def endpoint_of(self, request_id: str) -> str | None:
        return ENDPOINTS.get(request_id)


@dataclass
class Submissions:
    saved: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put(self, submission: dict[str, Any]) -> None:
        self.saved[submission["request_id"]] = submission

    def get(self, request_id: str) -> dict[str, Any] | None:
        return self.saved.get(request_id)


@dataclass
class Intake:
    started: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = field(default_factory=list)
    fail: bool = False

    def __call__(self, source: str, request: dict[str, Any], callback: dict[str, Any] | None) -> str:
        if self.fail:
            raise RuntimeError("StartExecution failed")
        self.started.append((source, request, callback))
        return f"arn:aws:states:us-east-1:123456789012:execution:intake:{source}-{request['request_id']}"


@dataclass
class Pending:
    limit: int = 3
    held: dict[str, list[str]] = field(default_factory=dict)

    def reserve(self, person: Any, request_id: str, now: Any) -> None:
        mine = self.held.setdefault(f"{person.issuer} {person.subject}", [])
        if len(mine) >= self.limit:
            raise TooManyPending(f"the limit is {self.limit} per person", pending=mine, limit=self.limit)
        mine.append(request_id)


@dataclass
class World:
    grants: AccessGrants
    submissions: Submissions
    intake: Intake
    pending: Pending
    schedules: Schedules
    clock: Clock
    services: AccessRequestServices


@pytest.fixture
def world(grants_table: Any) -> World:
    clock = Clock()
    schedules = Schedules()
    profiles = Profiles(
        parse_profile("engineering", profile_document()),
        parse_profile("legacy", profile_document(endpoint_request_id=None)),
    )
    grants = AccessGrants(
        store=DynamoDbGrants(grants_table, TABLE),
        schedules=schedules,
        sessions=Sessions(),
        profiles=profiles,
        endpoints=Endpoints(),
        clock=clock,
    )
    submissions, intake, pending = Submissions(), Intake(), Pending()
    services = AccessRequestServices(
        grants=grants,
        submissions=submissions,
        start=intake,
        pending=pending,
        approver_group=lambda profile: "vpn-approvers",
        clock=clock,
    )
    return World(grants, submissions, intake, pending, schedules, clock, services)


def _origin(request_id: str = "REQ-1", name: str = "Alice Example") -> RequestOrigin:
    return RequestOrigin(
        source="request-form", request_id=request_id, requester_name=name, requester_email="alice@example.com"
    )


def _ask(world: World, request_id: str = "REQ-1", **changes: Any) -> Any:
    arguments: dict[str, Any] = {
        "person": ALICE,
        "profile": "engineering",
        "access_groups": [ENGINEERING],
        "hours": 4,
        "reason": "on call this week",
    }
    arguments.update(changes)
    return start_access_request(GrantAsk(**arguments), _origin(request_id), services=world.services)


def _approval(sub: str = CAROL.sub, name: str = CAROL.name) -> dict[str, Any]:
    return {"approved_by": {"issuer": ISSUER, "sub": sub, "name": name}, "decided_at": 1, "approval_id": "a"}


def _decide(
    world: World, request_id: str, grant_id: str, kind: str = "grant", **fields: Any
) -> dict[str, Any]:
    task = GrantDecisionTask.model_validate(
        {"request": {"request_id": request_id, "grant_id": grant_id, "kind": kind}, **fields}
    )
    return decide_grant_request(task, grants=world.grants)


def test_a_request_records_a_pending_grant_and_starts_the_intake_with_approval(world: World) -> None:
    accepted = _ask(world)

    grant = world.grants.get(accepted.grant_id)
    assert (grant.state, grant.request_id, grant.hours) == ("pending", "REQ-1", 4.0)
    assert grant.endpoint_id == ENDPOINTS["NET-100"] and grant.access_groups == [ENGINEERING]
    assert grant.history[0].request_id == "REQ-1" and grant.history[0].by.name == "Alice Example"
    [(source, request, callback)] = world.intake.started
    assert (source, callback) == ("request-form", None)
    assert request["grant_id"] == grant.grant_id and request["kind"] == "grant"
    assert request["person"] == {"issuer": ISSUER, "sub": ALICE.sub} and request["vpn_user"] == "Alice"
    saved = world.submissions.saved["REQ-1"]
    assert (saved["requester_issuer"], saved["requester_sub"]) == (ISSUER, ALICE.sub)
    assert saved["grant_id"] == grant.grant_id and saved["approver_group"] == "vpn-approvers"
    assert "client_cidr_block" not in saved
    assert world.pending.held == {f"{ISSUER} {ALICE.sub}": ["REQ-1"]}
    assert accepted.as_response() == {
        "request_id": "REQ-1",
        "grant_id": grant.grant_id,
        "status": "awaiting-approval",
        "status_url": "/requests/REQ-1",
        "profile": "engineering",
        "kind": "grant",
    }


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"access_groups": ["S-1-5-21-1-2-3-999"]}, "access_groups[0]", "is not offered by profile"),
        ({"hours": 25}, "hours", "longer than profile engineering's longest grant (24 h)"),
        ({"hours": 0}, "hours", "above 0"),
        ({"profile": "legacy"}, "profile", "legacy profile"),
        ({"profile": "nope"}, "profile", "no network profile named 'nope'"),
        ({"reason": "bad\x00reason"}, "reason", ""),
    ],
)
def test_bad_input_names_the_field_and_holds_nothing(
    world: World, changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(GrantInvalid) as raised:
        _ask(world, **changes)
    assert [item["field"] for item in raised.value.errors] == [field]
    assert words in raised.value.errors[0]["message"]
    assert world.intake.started == [] and world.pending.held == {} and world.submissions.saved == {}
    assert world.grants.store.of_person(ALICE.key) == []


def test_the_pending_limit_refuses_before_any_grant_is_recorded(world: World) -> None:
    world.pending.limit = 1
    _ask(world, "REQ-1")
    with pytest.raises(TooManyPending):
        _ask(world, "REQ-2")
    assert [grant.request_id for grant in world.grants.store.of_person(ALICE.key)] == ["REQ-1"]


def test_a_request_whose_workflow_cannot_start_leaves_its_grant_revoked(world: World) -> None:
    world.intake.fail = True
    with pytest.raises(RuntimeError):
        _ask(world)
    [grant] = world.grants.store.of_person(ALICE.key)
    assert grant.state == "revoked" and "could not be started" in grant.history[-1].reason


def test_an_approval_activates_the_grant_with_the_approvers_identity(world: World) -> None:
    accepted = _ask(world)
    world.clock.now += timedelta(minutes=30)

    outcome = _decide(world, "REQ-1", accepted.grant_id, action="activate", approval=_approval())

    grant = world.grants.get(accepted.grant_id)
    assert grant.state == "active" and grant.approver == CAROL
    assert grant.starts_at == world.clock.now and grant.ends_at == world.clock.now + timedelta(hours=4)
    assert grant.history[-1].by.id == f"{ISSUER}#{CAROL.sub}" and grant.history[-1].request_id == "REQ-1"
    assert world.schedules.at[grant.grant_id] == grant.ends_at
    assert world.grants.store.enforcement(grant.endpoint_id) is not None
    assert outcome["result"] == "active" and outcome["approved_by"] == CAROL.name
    with pytest.raises(GrantConflict):  # approved once only
        _decide(world, "REQ-1", accepted.grant_id, action="activate", approval=_approval())


def test_nobody_activates_their_own_grant_or_a_grant_another_request_asked_for(world: World) -> None:
    accepted = _ask(world)
    with pytest.raises(GrantInvalid, match="nobody approves their own grant"):
        _decide(world, "REQ-1", accepted.grant_id, action="activate", approval=_approval(ALICE.sub, "Alice"))
    with pytest.raises(GrantConflict, match="was not asked by request REQ-9"):
        _decide(world, "REQ-9", accepted.grant_id, action="activate", approval=_approval())
    with pytest.raises(GrantInvalid, match="only after an approval"):
        _decide(world, "REQ-1", accepted.grant_id, action="activate")
    assert world.grants.get(accepted.grant_id).state == "pending"


@pytest.mark.parametrize(
    ("outcome", "reason", "said"),
    [
        (
            {
                "status": "REJECTED",
                "error": {
                    "Error": "ApprovalRejected",
                    "Cause": "request REQ-1 was rejected by Carol Approver (approval abc)",
                },
            },
            "Carol Approver rejected it on the approval page",
            ("ApprovalRejected", "was refused: Carol Approver rejected it on the approval page; no access"),
        ),
        (
            {"status": "EXPIRED", "error": {"Error": "States.Timeout"}},
            "no approver decided before the approval ran out",
            ("ApprovalExpired", "expired: no approver decided before the approval ran out; no access"),
        ),
        (
            {
                "status": "FAILED",
                "error": {
                    "Error": "GrantConflict",
                    "Cause": '{"errorType": "GrantConflict", "errorMessage": "grant changed meanwhile"}',
                },
            },
            "it could not be activated: GrantConflict: grant changed meanwhile",
            ("GrantConflict", "could not be activated: GrantConflict: grant changed meanwhile. No access"),
        ),
    ],
    ids=["rejected", "expired", "not-activated"],
)
def test_a_request_nobody_approved_revokes_its_pending_grant_with_the_reason(
    world: World, outcome: dict[str, Any], reason: str, said: tuple[str, str]
) -> None:
    accepted = _ask(world)
    answer = _decide(world, "REQ-1", accepted.grant_id, action="refuse", outcome=outcome)
    grant = world.grants.get(accepted.grant_id)
    assert grant.state == "revoked" and grant.history[-1].reason == reason
    status = grant_request_status(world.submissions.saved["REQ-1"], grant)
    assert status["status"] == "refused"
    assert status["phases"][-1]["phase"] == "refused" and status["phases"][-1]["text"] == f"Refused: {reason}"
    name, words = said
    assert status["error"]["error"] == name
    assert status["error"]["cause"].startswith(f"The access request REQ-1 (grant {grant.grant_id}) {words}")
    assert "nothing was created" not in status["error"]["cause"]
    assert answer["refused"] is True and answer["state"] == "revoked"
    again = _decide(world, "REQ-1", accepted.grant_id, action="refuse", outcome=outcome)
    assert again["refused"] is False and world.grants.get(accepted.grant_id).version == grant.version


def _active(world: World) -> Any:
    accepted = _ask(world)
    _decide(world, "REQ-1", accepted.grant_id, action="activate", approval=_approval())
    return world.grants.get(accepted.grant_id)


def test_an_approved_extension_ends_its_hours_after_the_approval(world: World) -> None:
    grant = _active(world)
    world.clock.now += timedelta(hours=3)
    accepted = start_extension_request(
        ALICE, grant.grant_id, 6, "the migration runs late", _origin("REQ-2"), services=world.services
    )
    waiting = world.grants.get(grant.grant_id)
    assert waiting.pending_extension is not None and waiting.pending_extension.request_id == "REQ-2"
    assert waiting.ends_at == grant.ends_at and waiting.history[-1].action == "extension-requested"
    assert world.intake.started[-1][1]["kind"] == "extension" and accepted.kind == "extension"
    with pytest.raises(GrantConflict, match="already waits for an extension"):
        start_extension_request(ALICE, grant.grant_id, 6, "again", _origin("REQ-3"), services=world.services)

    world.clock.now += timedelta(minutes=20)
    _decide(world, "REQ-2", grant.grant_id, "extension", action="activate", approval=_approval())

    extended = world.grants.get(grant.grant_id)
    assert extended.ends_at == world.clock.now + timedelta(hours=6) and extended.pending_extension is None
    assert world.schedules.at[grant.grant_id] == extended.ends_at
    assert extended.history[-1].action == "extended" and extended.history[-1].by.name == CAROL.name
    status = grant_request_status(world.submissions.saved["REQ-2"], extended)
    assert status["status"] == "extended"
    assert [phase["phase"] for phase in status["phases"]] == ["submitted", "extension-waiting", "extended"]


def test_a_refused_extension_leaves_the_grant_its_end(world: World) -> None:
    grant = _active(world)
    start_extension_request(ALICE, grant.grant_id, 8, "more time", _origin("REQ-2"), services=world.services)
    refusal = {"status": "EXPIRED", "error": {"Error": "ApprovalExpired"}}
    _decide(world, "REQ-2", grant.grant_id, "extension", action="refuse", outcome=refusal)
    kept = world.grants.get(grant.grant_id)
    assert kept.ends_at == grant.ends_at and kept.pending_extension is None and kept.state == "active"
    assert kept.history[-1].action == "extension-refused"
    status = grant_request_status(world.submissions.saved["REQ-2"], kept)
    assert status["status"] == "refused" and status["phases"][-1]["phase"] == "refused"
    assert "the grant still ends" in status["phases"][-1]["text"]
    assert status["error"] == {
        "error": "ApprovalExpired",
        "cause": f"The extension asked in REQ-2 (grant {grant.grant_id}) expired: no approver decided "
        "before the approval ran out; the grant keeps the end it had.",
    }


def test_an_extension_is_only_for_the_owner_of_an_active_grant_and_must_extend(world: World) -> None:
    grant = _active(world)
    with pytest.raises(GrantNotFound, match="of yours"):
        start_extension_request(BOB, grant.grant_id, 6, "mine now", _origin("REQ-2"), services=world.services)
    with pytest.raises(GrantInvalid) as raised:
        start_extension_request(ALICE, grant.grant_id, 2, "short", _origin("REQ-2"), services=world.services)
    assert (
        raised.value.errors[0]["field"] == "hours"
        and "nothing to extend" in raised.value.errors[0]["message"]
    )
    with pytest.raises(GrantInvalid) as raised:
        start_extension_request(ALICE, grant.grant_id, 30, "long", _origin("REQ-2"), services=world.services)
    assert raised.value.errors[0]["field"] == "hours"
    world.grants.revoke(grant.grant_id, by=grant.history[-1].by, reason="done")
    with pytest.raises(GrantConflict, match="not active"):
        start_extension_request(ALICE, grant.grant_id, 6, "more", _origin("REQ-2"), services=world.services)
    assert world.pending.held[f"{ISSUER} {ALICE.sub}"] == ["REQ-1"]


def test_a_grant_that_ends_while_its_extension_waits_ends_all_the_same(world: World) -> None:
    grant = _active(world)
    start_extension_request(ALICE, grant.grant_id, 8, "more time", _origin("REQ-2"), services=world.services)
    world.clock.now = grant.ends_at + timedelta(seconds=1)
    outcome = world.grants.expire(grant.grant_id)
    assert (
        outcome is not None and outcome.grant.state == "expired" and outcome.grant.pending_extension is None
    )
    with pytest.raises(GrantConflict):
        _decide(world, "REQ-2", grant.grant_id, "extension", action="activate", approval=_approval())


def test_the_status_of_a_grant_request_is_in_plain_words(world: World) -> None:
    accepted = _ask(world)
    saved = world.submissions.saved["REQ-1"]
    waiting = grant_request_status(saved, world.grants.get(accepted.grant_id))
    assert waiting["status"] == "awaiting-approval"
    assert [(phase["phase"], phase["text"]) for phase in waiting["phases"]] == [
        ("submitted", "Submitted by Alice Example"),
        ("waiting", "Waiting for approval by a member of vpn-approvers"),
    ]
    world.clock.now += timedelta(minutes=5)
    _decide(world, "REQ-1", accepted.grant_id, action="activate", approval=_approval())
    active = grant_request_status(saved, world.grants.get(accepted.grant_id))
    assert active["status"] == "active" and active["approved_by"] == CAROL.name
    assert "error" not in waiting and "error" not in active
    texts = [phase["text"] for phase in active["phases"]]
    assert texts[2:] == [
        "Approved by Carol Approver at 2026-03-02 09:05 UTC",
        "Active until 2026-03-02 13:05 UTC",
    ]
    assert all(phase["at"] for phase in active["phases"])
    assert not any("RequestApproval" in text or "ActivateGrant" in text for text in texts)


# ------------------------------------------------------------------------------------- the form
class _NoAllocations:
    """A legacy request's pool: a grants profile's request must never hold a block."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a grant request touched the client CIDR pool ({name})")


def _form(world: World, body: dict[str, Any], claims: dict[str, Any]) -> Any:
    from cvpn_shared.access.cidr_pool import CidrPool
    from cvpn_shared.access.form import FormServices, submit_form
    from cvpn_shared.access.identity import person_from_claims

    services = FormServices(
        profiles=world.grants._profiles,  # type: ignore[attr-defined]
        allocations=_NoAllocations(),  # type: ignore[arg-type]
        submissions=world.submissions,
        network=_NoAllocations(),  # type: ignore[arg-type]
        start=lambda request: (_ for _ in ()).throw(AssertionError("a grant request provisions nothing")),
    )
    return submit_form(
        json.dumps(body),
        requester=claims.get("email", ""),
        person=person_from_claims(claims),
        services=services,
        pool=CidrPool.parse("172.16.0.0/16", 22),
        new_request_id=lambda: "REQ-F1",
        claims=claims,
        access=lambda: world.services,
    )


CLAIMS = {"iss": ISSUER, "sub": ALICE.sub, "name": "Alice Example", "email": "alice@example.com"}


def test_the_form_on_a_grants_profile_asks_for_a_grant_for_the_tokens_vpn_user_name(world: World) -> None:
    body = {"profile": "engineering", "access_groups": [ENGINEERING], "justification": "on call this week"}
    accepted = _form(world, {**body, "hours": 2}, {**CLAIMS, "preferred_username": "alice.x"})
    grant = world.grants.get(accepted.grant_id)
    assert grant.person == ALICE.model_copy(update={"vpn_user": "alice.x"}) and grant.hours == 2
    assert accepted.as_response()["status_url"] == "/requests/REQ-F1"
    assert world.submissions.saved["REQ-F1"]["justification"] == "on call this week"


@pytest.mark.parametrize(
    ("changes", "claims", "field"),
    [
        ({"hours": 30}, {"username": "alice"}, "hours"),
        ({"access_groups": [FINANCE, "S-1-5-21-1-2-3-9"]}, {"username": "alice"}, "access_groups[1]"),
        ({}, {}, "requester"),  # no claim names the VPN user
    ],
)
def test_the_form_names_what_is_wrong_with_a_grant_request(
    world: World, changes: dict[str, Any], claims: dict[str, Any], field: str
) -> None:
    from cvpn_shared.access.form import FormInvalid

    body = {"profile": "engineering", "access_groups": [ENGINEERING], "justification": "on call this week"}
    with pytest.raises(FormInvalid) as raised:
        _form(world, {**body, **changes}, {**CLAIMS, **claims})
    assert [item["field"] for item in raised.value.errors] == [field]
    assert world.intake.started == [] and world.grants.store.of_person(ALICE.key) == []


def test_a_legacy_profile_takes_no_hours(world: World) -> None:
    from cvpn_shared.access.form import FormInvalid

    body = {
        "profile": "legacy",
        "access_groups": [ENGINEERING],
        "justification": "on call this week",
        "hours": 2,
    }
    with pytest.raises(FormInvalid) as raised:
        _form(world, body, {**CLAIMS, "username": "alice"})
    assert raised.value.errors[0]["field"] == "hours"


def test_the_vpn_user_name_comes_from_the_profiles_claim_else_the_usual_ones() -> None:
    from cvpn_shared.access.identity import PersonUnknown, vpn_user_from_claims

    claims = {"preferred_username": "alice@corp.example", "username": "alice", "samaccountname": "ALICE"}
    assert vpn_user_from_claims(claims) == "alice@corp.example"
    assert vpn_user_from_claims({"cognito:username": "al"}) == "al"
    assert vpn_user_from_claims(claims, "samaccountname") == "ALICE"
    with pytest.raises(PersonUnknown, match="samaccountname: the sign-in token carries no VPN user name"):
        vpn_user_from_claims({"username": "alice"}, "samaccountname")


def test_the_service_clock_follows_the_latest_answer_when_it_is_ahead() -> None:
    from datetime import UTC, datetime

    from cvpn_shared.access.grants.dal import ServiceClock

    machine = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
    clock = ServiceClock(lambda: machine)
    assert clock() == machine
    clock._answered(parsed={"ResponseMetadata": {"HTTPHeaders": {"date": "Mon, 02 Mar 2026 13:00:00 GMT"}}})
    clock._answered(parsed={"ResponseMetadata": {"HTTPHeaders": {"date": "not a date"}}})
    assert clock() == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    clock._answered(parsed={"ResponseMetadata": {"HTTPHeaders": {"date": "Mon, 02 Mar 2026 08:00:00 GMT"}}})
    assert clock() == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # an older answer moves nothing back


# ---------------------------------------------------------------------------- the extend route
def test_the_extend_route_answers_the_owner_only_and_names_bad_fields(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.access.unit.form.test_handlers import _event
    from tests.fixtures.handlers import LambdaContext, load_handler_module

    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    module = load_handler_module("access/request_api")
    monkeypatch.setattr(module, "access_grants", lambda: world.grants)
    monkeypatch.setattr(module, "access_request_services", lambda: world.services)
    grant = _active(world)
    path = f"/grants/{grant.grant_id}/extend"
    alice = {"iss": ISSUER, "sub": ALICE.sub, "name": "Alice Example"}
    bob = {"iss": ISSUER, "sub": BOB.sub, "email": "alice@example.com", "email_verified": "true"}

    def call(claims: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        answer = module.lambda_handler(
            _event("POST", path, body=body, claims=claims), LambdaContext("request-api")
        )
        return answer["statusCode"], json.loads(answer["body"])

    assert call(bob, {"hours": 10, "reason": "mine"}) == (
        404,
        {"message": f"no grant {grant.grant_id} of yours"},
    )
    code, bad = call(alice, {"hours": True, "why": "x"})
    assert code == 422 and [item["field"] for item in bad["errors"]] == ["hours", "reason", "why"]
    code, accepted = call(alice, {"hours": 10, "reason": "migration"})
    assert code == 202 and accepted["grant_id"] == grant.grant_id and accepted["kind"] == "extension"
    assert accepted["status_url"] == f"/requests/{accepted['request_id']}"
    code, conflict = call(alice, {"hours": 12, "reason": "more"})
    assert code == 409 and "already waits for an extension" in conflict["message"]
