"""A form submission becomes a full request; its status is followed to the configuration link."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from cvpn_shared.access.cidr_pool import CidrPool
from cvpn_shared.access.form import (
    FormInvalid,
    FormServices,
    RequesterUnknown,
    StartedExecution,
    build_request,
    parse_submission,
    request_status,
    requester_from_claims,
    submit_form,
)
from cvpn_shared.access.identity import Person
from cvpn_shared.access.profiles import NetworkProfile, parse_profile

from .conftest import GROUP_ENGINEERING, GROUP_FINANCE
from .test_cidr_pool import MemoryAllocations

POOL = CidrPool.parse("172.16.0.0/16", 22)
JUSTIFICATION = "On-call for the build farm this quarter"


class Catalog:
    def __init__(self, *profiles: NetworkProfile) -> None:
        self.profiles = {profile.name: profile for profile in profiles}

    def list_profiles(self) -> list[NetworkProfile]:
        return list(self.profiles.values())

    def get_profile(self, name: str) -> NetworkProfile | None:
        return self.profiles.get(name)


class Network:
    def vpc_cidrs(self, vpc_id: str) -> list[str]:
        return ["172.16.0.0/22"]

    def client_vpn_endpoints(self) -> list[dict[str, Any]]:
        return [{"ClientCidrBlock": "172.16.8.0/22", "Status": {"Code": "available"}}]


class Submissions:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def put(self, submission: dict[str, Any]) -> None:
        self.items[submission["request_id"]] = submission

    def get(self, request_id: str) -> dict[str, Any] | None:
        return self.items.get(request_id)


class Starter:
    def __init__(self, fail: bool = False) -> None:
        self.started: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, request: dict[str, Any]) -> StartedExecution:
        if self.fail:
            raise RuntimeError("StartExecution failed")
        self.started.append(request)
        return StartedExecution(
            request_id=request["request_id"],
            execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:intake:{request['request_id']}",
            status_url_path=f"/requests/{request['request_id']}",
            duplicate=False,
        )


@pytest.fixture
def profile(profile_document: dict[str, Any]) -> NetworkProfile:
    return parse_profile("engineering", profile_document)


@pytest.fixture
def services(profile: NetworkProfile) -> FormServices:
    return FormServices(
        profiles=Catalog(profile),
        allocations=MemoryAllocations(),
        submissions=Submissions(),
        network=Network(),
        start=Starter(),
    )


def _body(**changes: Any) -> str:
    body = {"profile": "engineering", "access_groups": [GROUP_ENGINEERING], "justification": JUSTIFICATION}
    body.update(changes)
    return json.dumps({key: value for key, value in body.items() if value is not None})


ISSUER = "https://issuer.example"
ADA = Person(ISSUER, "sub-ada", "Ada Lovelace", "ada@example.com", email_verified=True)
# Mallory's token claims Ada's e-mail address: the issuer did not verify it, or reassigned it.
MALLORY_AS_ADA = Person(ISSUER, "sub-mallory", "Mallory", "ada@example.com", email_verified=True)


def _submit(services: FormServices, body: str, requester: str = "ada@example.com") -> Any:
    return submit_form(
        body, requester=requester, person=ADA, services=services, pool=POOL, new_request_id=lambda: "REQ-1"
    )


# ----------------------------------------------------------------------------------------- requester


def test_the_requester_is_the_tokens_email_else_its_username() -> None:
    assert requester_from_claims({"email": "ada@example.com", "username": "ada"}) == "ada@example.com"
    assert requester_from_claims({"username": "ada", "sub": "1234"}) == "ada"
    assert requester_from_claims({"cognito:username": "grace"}) == "grace"
    with pytest.raises(RequesterUnknown, match="names no person"):
        requester_from_claims({"sub": "1234"})


# ---------------------------------------------------------------------------------------- submission


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (None, "body", "missing"),
        ("{not json", "body", "not valid JSON"),
        ("[1]", "body", "must be a JSON object"),
        (_body(access_groups=[]), "access_groups", "at least 1"),
        (_body(justification="short"), "justification", "at least 10"),
        (_body(profile="Not A Profile"), "profile", "must be the name of a network profile"),
        (_body(requester="mallory@example.com"), "requester", "the requester is who signed in"),
        (_body(subnet_ids=["subnet-0a1b2c3d"]), "subnet_ids", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_submission_names_the_field_and_why(body: str | None, field: str, reason: str) -> None:
    with pytest.raises(FormInvalid) as raised:
        parse_submission(body)
    messages = {error["field"]: error["message"] for error in raised.value.errors}
    assert field in messages, messages
    assert reason in messages[field]


def test_the_request_is_built_from_the_profile_and_the_persons_choices(profile: NetworkProfile) -> None:
    submission = parse_submission(_body(access_groups=[GROUP_FINANCE, GROUP_ENGINEERING]))
    request = build_request(
        submission,
        profile,
        request_id="REQ-1",
        requester="ada@example.com",
        client_cidr_block=ipaddress.IPv4Network("172.16.4.0/22"),
    )
    assert request.requester == "ada@example.com"
    assert request.subnet_ids == profile.subnet_ids and request.vpc_id == profile.vpc_id
    assert str(request.client_cidr_block) == "172.16.4.0/22"
    assert [(str(r.target_network_cidr), r.access_group_id) for r in request.authorization_rules] == [
        ("10.20.0.0/16", GROUP_FINANCE),
        ("0.0.0.0/0", GROUP_ENGINEERING),
    ]
    assert [str(route.destination_cidr) for route in request.routes] == ["0.0.0.0/0", "172.16.4.0/22"]
    assert request.description == JUSTIFICATION
    assert request.tags["cvpn-autopilot:profile"] == "engineering"
    assert request.tags["CostCenter"] == "eng-1234"
    assert request.client_connect_handler is True  # an endpoint built for a profile always gets it


def test_an_access_group_the_profile_does_not_offer_is_refused(profile: NetworkProfile) -> None:
    submission = parse_submission(_body(access_groups=[GROUP_ENGINEERING, "S-1-5-21-1-2-3-999"]))
    with pytest.raises(FormInvalid) as raised:
        build_request(
            submission,
            profile,
            request_id="REQ-1",
            requester="ada@example.com",
            client_cidr_block=ipaddress.IPv4Network("172.16.4.0/22"),
        )
    assert raised.value.errors == [
        {
            "field": "access_groups[1]",
            "message": "'S-1-5-21-1-2-3-999' is not an access group of profile 'engineering' "
            "(it offers: Engineering, Finance)",
        }
    ]


def test_submitting_holds_a_free_block_and_starts_the_request_waiting_for_approval(
    services: FormServices,
) -> None:
    """The VPC holds .0/22 and another endpoint .8/22; the profile routes .4/22: the request gets .12/22."""
    accepted = _submit(services, _body())
    assert accepted.as_response() == {
        "request_id": "REQ-1",
        "status": "awaiting-approval",
        "status_url": "/requests/REQ-1",
        "client_cidr_block": "172.16.12.0/22",
        "profile": "engineering",
    }
    starter = services.start
    assert isinstance(starter, Starter)
    assert [request["client_cidr_block"] for request in starter.started] == ["172.16.12.0/22"]
    assert starter.started[0]["requester"] == "ada@example.com"
    saved = services.submissions.get("REQ-1")
    assert saved is not None and saved["requester"] == "ada@example.com"
    assert saved["execution_arn"].endswith(":REQ-1")
    assert isinstance(services.allocations, MemoryAllocations)
    assert services.allocations.held == {ipaddress.IPv4Network("172.16.12.0/22"): "REQ-1"}


def test_an_unknown_profile_holds_nothing_and_starts_nothing(services: FormServices) -> None:
    with pytest.raises(FormInvalid, match="profile: no network profile is called 'finance'"):
        _submit(services, _body(profile="finance"))
    assert isinstance(services.allocations, MemoryAllocations) and services.allocations.held == {}


def test_a_block_is_given_back_when_the_request_cannot_start(profile: NetworkProfile) -> None:
    allocations = MemoryAllocations()
    services = FormServices(
        profiles=Catalog(profile),
        allocations=allocations,
        submissions=Submissions(),
        network=Network(),
        start=Starter(fail=True),
    )
    with pytest.raises(RuntimeError, match="StartExecution failed"):
        _submit(services, _body())
    assert allocations.held == {}


# -------------------------------------------------------------------------------------------- status


class Executions:
    """Two executions: the intake (which started a provisioning) and the provisioning."""

    def __init__(self, intake: dict[str, Any], provisioning: dict[str, Any] | None = None) -> None:
        self.described = {"intake": intake, "provisioning": provisioning or {"status": "RUNNING"}}
        self.histories: dict[str, list[dict[str, Any]]] = {"intake": [], "provisioning": []}

    def describe(self, execution_arn: str) -> dict[str, Any]:
        return self.described[execution_arn]

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.histories[execution_arn]


def _entered(*names: str) -> list[dict[str, Any]]:
    return [{"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name}} for name in names]


def _started_provisioning() -> dict[str, Any]:
    return {
        "type": "TaskSubmitted",
        "taskSubmittedEventDetails": {
            "resourceType": "states",
            "resource": "startExecution.sync:2",
            "output": json.dumps({"ExecutionArn": "provisioning"}),
        },
    }


def _status(executions: Executions, person: Person = ADA, **held: str) -> Any:
    submissions = Submissions()
    submissions.put(
        {
            "request_id": "REQ-1",
            "requester": "ada@example.com",
            **ADA.as_record("requester"),
            "profile": "engineering",
            "access_groups": [GROUP_ENGINEERING],
            "client_cidr_block": "172.16.12.0/22",
            "execution_arn": "intake",
            "submitted_at": "2026-11-28T10:00:00+00:00",
        }
    )
    allocations = MemoryAllocations({"172.16.12.0/22": "REQ-1", **held})
    answer = request_status(
        "REQ-1",
        person=person,
        submissions=submissions,
        executions=executions,
        allocations=allocations,
        presign=lambda key, filename: f"https://bucket.example/{key}?as={filename}",
    )
    return answer, allocations


def test_a_request_waiting_for_approval_says_so() -> None:
    executions = Executions({"status": "RUNNING"})
    executions.histories["intake"] = _entered("RecordSubmission", "WaitForApproval")
    answer, _ = _status(executions)
    assert answer["status"] == "awaiting-approval"
    assert answer["steps"] == ["RecordSubmission", "WaitForApproval"]
    assert answer["current_step"] == "WaitForApproval"


def test_the_steps_of_the_started_provisioning_follow_the_intakes() -> None:
    executions = Executions({"status": "RUNNING"})
    executions.histories["intake"] = [*_entered("WaitForApproval", "Provision"), _started_provisioning()]
    executions.histories["provisioning"] = _entered(
        "ValidateRequest", "CreateEndpoint", "WaitForAssociations", "CheckAssociations", "WaitForAssociations"
    )
    answer, _ = _status(executions)
    assert answer["status"] == "in-progress"
    assert answer["steps"] == [
        "WaitForApproval",
        "Provision",
        "ValidateRequest",
        "CreateEndpoint",
        "WaitForAssociations",
        "CheckAssociations",
    ]
    assert answer["current_step"] == "WaitForAssociations"  # a poll loop shows each step once


def test_a_provisioned_request_links_a_fresh_download_of_its_configuration() -> None:
    output = {
        "result": {"endpoint_id": "cvpn-endpoint-1", "client_configuration": {"key": "configs/REQ-1.ovpn"}}
    }
    executions = Executions({"status": "SUCCEEDED", "output": json.dumps({"Output": json.dumps(output)})})
    executions.histories["intake"] = [
        *_entered("WaitForApproval", "Provision"),
        _started_provisioning(),
        *_entered("OutcomeSucceeded", "Provisioned"),
    ]
    executions.described["provisioning"] = {"status": "SUCCEEDED"}
    executions.histories["provisioning"] = _entered("ValidateRequest", "ExportConfiguration", "Provisioned")
    answer, _ = _status(executions)
    # The provisioning's steps come where the intake started it; a name met twice is listed once.
    assert answer["steps"] == [
        "WaitForApproval",
        "Provision",
        "ValidateRequest",
        "ExportConfiguration",
        "Provisioned",
        "OutcomeSucceeded",
    ]
    assert answer["status"] == "available"
    assert answer["endpoint_id"] == "cvpn-endpoint-1"
    assert answer["config_url"] == "https://bucket.example/configs/REQ-1.ovpn?as=REQ-1.ovpn"


def test_a_failed_request_reports_why_and_gives_its_block_back() -> None:
    executions = Executions({"status": "FAILED", "error": "PreflightFailed", "cause": "subnet missing"})
    answer, allocations = _status(executions, **{"172.16.16.0/22": "REQ-2"})
    assert answer["status"] == "failed"
    assert answer["error"] == {"error": "PreflightFailed", "cause": "subnet missing"}
    assert allocations.held == {ipaddress.IPv4Network("172.16.16.0/22"): "REQ-2"}


@pytest.mark.parametrize(
    ("error", "status"), [("ApprovalRejected", "rejected"), ("ApprovalExpired", "expired")]
)
def test_a_request_no_approver_accepted_says_why(error: str, status: str) -> None:
    executions = Executions({"status": "FAILED", "error": error, "cause": "nothing was created"})
    answer, allocations = _status(executions)
    assert answer["status"] == status
    assert allocations.held == {}


def test_someone_elses_request_is_not_revealed() -> None:
    mallory = Person(ISSUER, "sub-mallory", "Mallory", "mallory@example.com", email_verified=True)
    answer, _ = _status(Executions({"status": "RUNNING"}), person=mallory)
    assert answer is None


def test_a_token_claiming_the_requesters_email_reads_nothing_of_theirs() -> None:
    """A form request belongs to the issuer + sub that asked: another sub with the same e-mail claim, or
    the same sub from another issuer, reads nothing."""
    assert _status(Executions({"status": "RUNNING"}), person=MALLORY_AS_ADA)[0] is None
    other_issuer = Person("https://other.example", "sub-ada", "Ada", "ada@example.com", email_verified=True)
    assert _status(Executions({"status": "RUNNING"}), person=other_issuer)[0] is None


def test_the_status_names_who_approved() -> None:
    executions = Executions({"status": "RUNNING"})
    approval = {
        "decision": "approved",
        "approval_id": "x" * 32,
        "decided_at": 1796983200,
        "approved_by": {"issuer": ISSUER, "sub": "sub-grace", "name": "Grace Hopper"},
    }
    executions.histories["intake"] = [
        *_entered("RequestApproval"),
        {"taskSucceededEventDetails": {"resourceType": "lambda", "output": json.dumps(approval)}},
        *_entered("Provision"),
    ]
    answer, _ = _status(executions)
    assert answer["approved_by"] == {"name": "Grace Hopper", "at": "2026-12-11T10:00:00+00:00"}


# ----------------------------------------------------------------------- requests a ticket started


GRACE = Person(ISSUER, "sub-grace", "Grace Hopper", "grace.hopper@example.com", email_verified=True)


def _ticket_status(executions: Executions, person: Person = GRACE) -> Any:
    """request_status on what the webhook intake records: no profile, access groups or pool block."""
    submissions = Submissions()
    submissions.put(
        {
            "request_id": "NET-2001",
            "requester": "grace.hopper@example.com",
            "source": "jira",
            "ticket_key": "NET-2001",
            "execution_arn": "intake",
            "status_url_path": "/requests/NET-2001",
            "submitted_at": "2026-11-28T10:00:00+00:00",
        }
    )
    # A pool block another request holds: a ticket's request (whose CIDR came from the ticket) never
    # gives one back.
    allocations = MemoryAllocations({"172.16.12.0/22": "NET-2001", "172.16.16.0/22": "REQ-2"})
    answer = request_status(
        "NET-2001",
        person=person,
        submissions=submissions,
        executions=executions,
        allocations=allocations,
        presign=lambda key, filename: f"https://bucket.example/{key}?as={filename}",
    )
    return answer, allocations


def test_a_request_a_ticket_started_is_followed_to_its_configuration() -> None:
    output = {
        "result": {"endpoint_id": "cvpn-endpoint-7", "client_configuration": {"key": "configs/NET-2001.ovpn"}}
    }
    executions = Executions({"status": "SUCCEEDED", "output": json.dumps({"Output": json.dumps(output)})})
    executions.histories["intake"] = [*_entered("Provision"), _started_provisioning(), *_entered("Notify")]
    executions.described["provisioning"] = {"status": "SUCCEEDED"}
    executions.histories["provisioning"] = _entered("ValidateRequest", "ExportConfiguration")
    answer, _ = _ticket_status(executions)
    assert answer["status"] == "available"
    assert answer["config_url"] == "https://bucket.example/configs/NET-2001.ovpn?as=NET-2001.ovpn"
    assert (answer["source"], answer["ticket_key"]) == ("jira", "NET-2001")
    assert (answer["profile"], answer["access_groups"], answer["client_cidr_block"]) == (None, [], None)
    assert answer["submitted_at"] == "2026-11-28T10:00:00+00:00"


def test_a_failed_ticket_request_gives_no_pool_block_back() -> None:
    executions = Executions({"status": "FAILED", "error": "PreflightFailed", "cause": "CIDR overlaps"})
    answer, allocations = _ticket_status(executions)
    assert answer["status"] == "failed"
    assert allocations.held == {
        ipaddress.IPv4Network("172.16.12.0/22"): "NET-2001",
        ipaddress.IPv4Network("172.16.16.0/22"): "REQ-2",
    }


def test_a_request_a_ticket_started_is_not_revealed_to_someone_else() -> None:
    answer, _ = _ticket_status(Executions({"status": "RUNNING"}), person=ADA)
    assert answer is None


def test_a_ticket_request_needs_an_email_the_issuer_verified() -> None:
    """A ticket names its requester by e-mail only: a token whose e-mail the issuer does not vouch for
    reads nothing."""
    unverified = Person(ISSUER, "sub-x", "X", "grace.hopper@example.com", email_verified=False)
    assert _ticket_status(Executions({"status": "RUNNING"}), person=unverified)[0] is None


def test_a_form_request_says_it_came_from_the_form() -> None:
    answer, _ = _status(Executions({"status": "RUNNING"}))
    assert (answer["source"], answer["ticket_key"], answer["profile"]) == (
        "request-form",
        None,
        "engineering",
    )
