"""Approval links: signed (HMAC over id, decision, expiry), expiring, single use. Following one shows a
confirm page and decides nothing; the confirmed POST decides, for a signed-in member of the approver
group who is not the requester, and answers the waiting task (SendTaskSuccess, or SendTaskFailure
ApprovalRejected)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import ValidationError

from cvpn_shared.access.approval import (
    ApprovalTask,
    ApproverRule,
    DecisionPage,
    approval_page,
    decide,
    request_approval,
)
from cvpn_shared.access.dal.approvals import ApprovalAlreadyDecided, ApprovalNotFound
from cvpn_shared.access.dal.intake_workflow import TaskNoLongerWaiting
from cvpn_shared.access.identity import Person
from cvpn_shared.access.signatures import SigningSecrets

from .conftest import NOW, example_payload

LINK_SECRET = SigningSecrets("link-secret-current", "link-secret-previous")
APPROVAL_ID = "Zq3v8Jd0cXo1m2n3p4q5r6s7t8u9v0w1"
ISSUER = "https://issuer.example"
APPROVERS = "vpn-approvers"
# Claims as API Gateway's JWT authorizer hands them over: strings, an array written "[a b]".
GRACE = {"iss": ISSUER, "sub": "sub-grace", "name": "Grace Hopper", "groups": f"[staff {APPROVERS}]"}
ADA = {"iss": ISSUER, "sub": "sub-ada", "name": "Ada Lovelace", "groups": f"[{APPROVERS}]"}


@dataclass
class MemoryApprovals:
    """Approval records with the DynamoDB table's conditional semantics."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    def create(self, record: dict[str, Any]) -> None:
        assert record["approval_id"] not in self.items
        self.items[record["approval_id"]] = dict(record)

    def get(self, approval_id: str) -> dict[str, Any] | None:
        record = self.items.get(approval_id)
        return copy.deepcopy(record) if record is not None else None

    def decide(
        self, approval_id: str, *, status: str, decided_at: int, decided_via: str, approver: Person
    ) -> dict[str, Any]:
        record = self.items.get(approval_id)
        if record is None:
            raise ApprovalNotFound(approval_id)
        if record["status"] != "PENDING":
            raise ApprovalAlreadyDecided(copy.deepcopy(record))
        record.update(
            status=status, decided_at=decided_at, decided_via=decided_via, **approver.as_record("approver")
        )
        return copy.deepcopy(record)


@dataclass
class MemoryContext:
    """The recorded requests (Ada's form request GH-42) and the approver group of each profile."""

    requests: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "GH-42": {
                "request_id": "GH-42",
                "requester": "ada@example.com",
                "requester_issuer": ISSUER,
                "requester_sub": "sub-ada",
                "requester_name": "Ada Lovelace",
                "requester_email": "ada@example.com",
                "profile": "engineering",
                "access_groups": ["build-farm"],
                "justification": "On-call for the build farm",
            }
        }
    )
    rules: dict[str | None, ApproverRule] = field(
        default_factory=lambda: {
            "engineering": ApproverRule("groups", APPROVERS, "profile 'engineering'"),
            None: ApproverRule("groups", None, "the stack's ApproverGroup parameter"),
        }
    )

    def request(self, request_id: str) -> dict[str, Any] | None:
        return self.requests.get(request_id)

    def approver_rule(self, profile: str | None) -> ApproverRule:
        return self.rules.get(profile, self.rules[None])


@dataclass
class MemoryTasks:
    """Waiting task tokens; answering one twice, or an unknown one, is TaskNoLongerWaiting."""

    waiting: set[str] = field(default_factory=lambda: {"tok", "token-1"})
    answers: list[tuple[str, str, Any]] = field(default_factory=list)

    def succeed(self, task_token: str, output: dict[str, Any]) -> None:
        self._answer(task_token, "success", output)

    def fail(self, task_token: str, error: str, cause: str) -> None:
        self._answer(task_token, "failure", (error, cause))

    def _answer(self, token: str, kind: str, value: Any) -> None:
        if token not in self.waiting:
            raise TaskNoLongerWaiting("InvalidToken")
        self.waiting.discard(token)
        self.answers.append((token, kind, value))


@dataclass
class MemoryApprovers:
    messages: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def publish(self, subject: str, text: str, attributes: dict[str, str]) -> str:
        self.messages.append((subject, text, attributes))
        return f"message-{len(self.messages)}"


@dataclass
class Approval:
    records: MemoryApprovals
    tasks: MemoryTasks
    approvers: MemoryApprovers
    links: dict[str, dict[str, str]]
    context: MemoryContext = field(default_factory=MemoryContext)

    def follow(
        self,
        link: str,
        *,
        now: float = NOW,
        secret: SigningSecrets | None = LINK_SECRET,
        claims: dict[str, Any] | None = None,
        **changes: str,
    ) -> DecisionPage:
        """The confirmed POST of the page the link opened, by ``claims`` (Grace, an approver, by default)."""
        query = {**self.links[link], **changes}
        return decide(
            APPROVAL_ID,
            query,
            records=self.records,
            tasks=self.tasks,
            context=self.context,
            link_secret=secret,
            claims=GRACE if claims is None else claims,
            now=int(now),
        )

    def open(self, link: str, *, now: float = NOW, **changes: str) -> DecisionPage:
        """The GET of the link: what a browser, a mail scanner or a link preview fetches."""
        query = {**self.links[link], **changes}
        return approval_page(
            APPROVAL_ID,
            query,
            records=self.records,
            context=self.context,
            link_secret=LINK_SECRET,
            now=int(now),
        )


def _task() -> ApprovalTask:
    request = {
        "request_id": "GH-42",
        "requester": "octocat",
        "name": "github-issue-42",
        "subnet_ids": ["subnet-1"],
    }
    return ApprovalTask(
        task_token="token-1",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:intake:github-GH-42",
        source="github",
        request=request,
    )


@pytest.fixture
def approval() -> Approval:
    records, tasks, approvers = MemoryApprovals(), MemoryTasks(), MemoryApprovers()
    answer = request_approval(
        _task(),
        records=records,
        approvers=approvers,
        link_secret=LINK_SECRET,
        base_url="https://abc123.execute-api.us-east-1.amazonaws.com/",
        ttl_seconds=86400,
        now=int(NOW),
        new_id=lambda: APPROVAL_ID,
    )
    assert answer == {"approval_id": APPROVAL_ID, "expires_at": int(NOW) + 86400}
    [(_, text, _)] = approvers.messages
    links = {}
    for line in text.splitlines():
        if line.startswith(("Approve:", "Reject:")):
            url = urlsplit(line.split()[-1])
            assert url.path == f"/approvals/{APPROVAL_ID}"
            query = dict(parse_qsl(url.query))
            links[query["decision"]] = query
    return Approval(records, tasks, approvers, links)


def test_request_stores_the_token_and_notifies_approvers_with_both_links(approval: Approval) -> None:
    record = approval.records.items[APPROVAL_ID]
    assert (record["status"], record["task_token"], record["request_id"]) == ("PENDING", "token-1", "GH-42")
    assert record["ttl"] > record["expires_at"] == int(NOW) + 86400
    subject, text, attributes = approval.approvers.messages[0]
    assert subject == "Approval needed: Client VPN for GH-42"
    assert "Requested by:   octocat" in text
    assert attributes == {"request_id": "GH-42", "source": "github", "kind": "approval-request"}
    assert set(approval.links) == {"approve", "reject"}


def test_request_fails_without_a_link_secret() -> None:
    with pytest.raises(ValueError, match="approval link secret"):
        request_approval(
            _task(),
            records=MemoryApprovals(),
            approvers=MemoryApprovers(),
            link_secret=None,
            base_url="https://x",
            ttl_seconds=60,
            now=0,
        )


def test_approve_answers_the_waiting_task_once(approval: Approval) -> None:
    page = approval.follow("approve")
    assert (page.status, page.title) == (200, "Approved")
    grace = {"issuer": ISSUER, "sub": "sub-grace", "name": "Grace Hopper"}
    assert approval.tasks.answers == [
        (
            "token-1",
            "success",
            {
                "decision": "approved",
                "approval_id": APPROVAL_ID,
                "decided_at": int(NOW),
                "approved_by": grace,
            },
        )
    ]
    record = approval.records.items[APPROVAL_ID]
    assert (record["approver_issuer"], record["approver_sub"], record["approver_name"]) == (
        ISSUER,
        "sub-grace",
        "Grace Hopper",
    )
    again = approval.follow("approve")
    assert again.status == 409 and "already approved by Grace Hopper" in again.message
    assert approval.follow("reject").status == 409
    assert len(approval.tasks.answers) == 1


def test_reject_fails_the_waiting_task_with_approval_rejected(approval: Approval) -> None:
    page = approval.follow("reject")
    assert (page.status, page.title) == (200, "Rejected")
    [(token, kind, (error, cause))] = approval.tasks.answers
    assert (token, kind, error) == ("token-1", "failure", "ApprovalRejected")
    assert "GH-42" in cause and "rejected by Grace Hopper" in cause


def test_a_link_with_its_decision_swapped_is_refused(approval: Approval) -> None:
    page = approval.follow("reject", decision="approve")
    assert (page.status, page.title) == (403, "Link not valid")
    assert approval.records.items[APPROVAL_ID]["status"] == "PENDING"


def test_a_prolonged_link_is_refused(approval: Approval) -> None:
    later = str(int(approval.links["approve"]["expires"]) + 86400)
    assert approval.follow("approve", expires=later).status == 403


def test_an_expired_link_is_refused(approval: Approval) -> None:
    page = approval.follow("approve", now=NOW + 86401)
    assert (page.status, page.title) == (410, "Link expired")
    assert approval.tasks.answers == []


def test_links_signed_with_the_previous_secret_still_work() -> None:
    """After a rotation (current -> previous), links already sent keep working until they expire."""
    records, tasks = MemoryApprovals(), MemoryTasks()
    request_approval(
        _task(),
        records=records,
        approvers=(approvers := MemoryApprovers()),
        link_secret=SigningSecrets("link-secret-previous"),
        base_url="https://x",
        ttl_seconds=600,
        now=int(NOW),
        new_id=lambda: APPROVAL_ID,
    )
    line = next(line for line in approvers.messages[0][1].splitlines() if line.startswith("Approve:"))
    query = dict(parse_qsl(urlsplit(line.split()[-1]).query))
    page = decide(
        APPROVAL_ID,
        query,
        records=records,
        tasks=tasks,
        context=MemoryContext(),
        link_secret=LINK_SECRET,
        claims=GRACE,
        now=int(NOW),
    )
    assert page.status == 200


def test_a_task_that_no_longer_waits_is_410(approval: Approval) -> None:
    approval.tasks.waiting.clear()
    page = approval.follow("approve")
    assert (page.status, page.title) == (410, "No longer waiting")


def test_without_the_link_secret_nothing_is_decided(approval: Approval) -> None:
    assert approval.follow("approve", secret=None).status == 503
    assert approval.records.items[APPROVAL_ID]["status"] == "PENDING"


@pytest.mark.parametrize(
    "approval_id,query,status,message",
    [
        ("short", {}, 404, "approval_id: no approval request has this id."),
        (APPROVAL_ID, {"decision": "maybe"}, 400, "decision: must be approve or reject."),
        (APPROVAL_ID, {"decision": "approve", "expires": "tomorrow"}, 400, "expires: must be Unix seconds."),
        (
            APPROVAL_ID,
            {"decision": "approve", "expires": "1", "signature": "abc"},
            400,
            "signature: must be 64 hex digits.",
        ),
        ("Q" * 32, {"decision": "approve", "expires": "1", "signature": "0" * 64}, 403, None),
    ],
)
def test_bad_links_are_refused_naming_the_parameter(
    approval: Approval, approval_id: str, query: dict[str, str], status: int, message: str | None
) -> None:
    for page in (
        decide(
            approval_id,
            query,
            records=approval.records,
            tasks=approval.tasks,
            context=approval.context,
            link_secret=LINK_SECRET,
            claims=GRACE,
            now=0,
        ),
        approval_page(
            approval_id,
            query,
            records=approval.records,
            context=approval.context,
            link_secret=LINK_SECRET,
            now=0,
        ),
    ):
        assert page.status == status
        if message:
            assert page.message == message


def test_the_page_escapes_what_it_shows() -> None:
    html = DecisionPage(200, "Approved", "Request <script>alert(1)</script> is approved").html()
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_summary_tolerates_a_sparse_request() -> None:
    """The approvers' message is written even when the request has few fields (form or ticket)."""
    approvers = MemoryApprovers()
    request = {"request_id": "GH-7", **example_payload("github")}
    task = ApprovalTask(task_token="t", execution_arn="arn", source="jira", request=request)
    request_approval(
        task,
        records=MemoryApprovals(),
        approvers=approvers,
        link_secret=LINK_SECRET,
        base_url="https://x",
        ttl_seconds=300,
        now=0,
        new_id=lambda: APPROVAL_ID,
    )
    assert "Approve: https://x/approvals/" in approvers.messages[0][1]


def test_an_approval_task_without_a_request_id_is_refused_before_anything_is_stored() -> None:
    with pytest.raises(ValidationError, match=r"request\.request_id"):
        ApprovalTask(task_token="t", execution_arn="arn", source="jira", request={"requester": "x"})


def test_the_subject_is_one_sns_accepts_whatever_the_request_id() -> None:
    """SNS refuses subjects with control or non-ASCII characters, or of 100 characters or more."""
    approvers = MemoryApprovers()
    task = ApprovalTask(
        task_token="t",
        execution_arn="arn",
        source="jira",
        request={"request_id": "NET-1\n\u00e9" + "x" * 200},
    )
    request_approval(
        task,
        records=MemoryApprovals(),
        approvers=approvers,
        link_secret=LINK_SECRET,
        base_url="https://x",
        ttl_seconds=300,
        now=0,
        new_id=lambda: APPROVAL_ID,
    )
    subject = approvers.messages[0][0]
    assert subject.startswith("Approval needed: Client VPN for NET-1??x") and len(subject) < 100
    assert subject.isascii() and subject.isprintable()


# ------------------------------------------------------------------- the page a link opens (GET)


def test_following_a_link_shows_the_request_and_decides_nothing(approval: Approval) -> None:
    """A mail scanner, a link preview or a prefetch GETs the link, as often as it likes: the request
    stays pending, the task waits, and the link still works for the approver's confirmation."""
    for _ in range(3):
        page = approval.open("approve")
        assert (page.status, page.title) == (200, "Approve request GH-42?")
    assert approval.records.items[APPROVAL_ID]["status"] == "PENDING"
    assert approval.tasks.answers == []
    details = dict(page.details)
    assert details["Requested by"] == "Ada Lovelace <ada@example.com>"
    assert details["Identity"] == f"sub-ada at {ISSUER}"
    assert (details["Profile"], details["Access groups"]) == ("engineering", "build-farm")
    assert details["Reason"] == "On-call for the build farm"
    assert page.form == {
        "decision": "approve",
        **{k: approval.links["approve"][k] for k in ("expires", "signature")},
    }
    html = page.html("n0nce", "void 0;")
    assert "<form id=decision-form method=post>" in html and "<script nonce='n0nce'>" in html
    assert approval.follow("approve").status == 200  # the link was not used up by the GETs


def test_a_page_of_a_bad_expired_or_decided_link_offers_no_confirmation(approval: Approval) -> None:
    assert approval.open("reject", decision="approve").status == 403
    expired = approval.open("approve", now=NOW + 86401)
    assert (expired.status, expired.form) == (410, None)
    approval.follow("reject")
    decided = approval.open("approve")
    assert (decided.status, decided.form) == (409, None)
    assert "already rejected by Grace Hopper" in decided.message


# ------------------------------------------------------------------ who may decide (the POST)


def test_nobody_approves_their_own_request(approval: Approval) -> None:
    """Ada asked (issuer + sub): though she is in the approver group, she cannot decide it."""
    for link in ("approve", "reject"):
        page = approval.follow(link, claims=ADA)
        assert (page.status, page.title) == (403, "Not your decision")
        assert "You asked for this request" in page.message
    assert approval.records.items[APPROVAL_ID]["status"] == "PENDING" and approval.tasks.answers == []


def test_the_same_sub_at_another_issuer_is_another_person(approval: Approval) -> None:
    assert approval.follow("approve", claims={**ADA, "iss": "https://other.example"}).status == 200


def test_an_approver_outside_the_group_is_refused(approval: Approval) -> None:
    page = approval.follow("approve", claims={**GRACE, "groups": "[staff finance]"})
    assert (page.status, page.title) == (403, "Not an approver")
    assert (
        page.message == "groups: you are not in the approver group 'vpn-approvers' of this request's profile."
    )
    assert approval.records.items[APPROVAL_ID]["status"] == "PENDING"


def test_a_token_without_the_group_claim_is_refused_naming_the_claim(approval: Approval) -> None:
    claims = {key: value for key, value in GRACE.items() if key != "groups"}
    page = approval.follow("approve", claims=claims)
    assert page.status == 403 and "carries no 'groups' claim" in page.message
    assert approval.tasks.answers == []


def test_the_claim_the_profile_names_is_the_one_checked(approval: Approval) -> None:
    approval.context.rules["engineering"] = ApproverRule("cognito:groups", APPROVERS, "profile 'engineering'")
    assert approval.follow("approve").status == 403  # Grace's "groups" is not the claim asked for
    assert approval.follow("approve", claims={**GRACE, "cognito:groups": [APPROVERS]}).status == 200


def test_without_an_approver_group_nobody_decides(approval: Approval) -> None:
    approval.context.requests["GH-42"]["profile"] = None
    page = approval.follow("approve")
    assert (page.status, page.title) == (403, "No approvers configured")
    assert "the stack's ApproverGroup parameter" in page.message


def test_nobody_signed_in_decides_nothing(approval: Approval) -> None:
    assert approval.follow("approve", claims={}).status == 401
    assert approval.follow("approve", claims={"iss": ISSUER, "groups": APPROVERS}).status == 403  # no sub
    assert approval.records.items[APPROVAL_ID]["status"] == "PENDING"


def test_a_ticket_requester_named_by_email_cannot_approve_it(approval: Approval) -> None:
    """A ticket names its requester by e-mail only: a token with that e-mail is refused (the safe side)."""
    approval.context.requests["GH-42"] = {
        "request_id": "GH-42",
        "requester": "Octo@Example.com",
        "source": "github",
    }
    approval.context.rules[None] = ApproverRule("groups", APPROVERS, "the stack's ApproverGroup parameter")
    page = approval.follow("approve", claims={**GRACE, "email": "octo@example.com"})
    assert page.status == 403 and "The ticket names you" in page.message
    assert approval.follow("approve").status == 200


def test_an_expired_or_used_link_decides_nothing_even_for_an_approver(approval: Approval) -> None:
    assert approval.follow("approve", now=NOW + 86401).status == 410
    assert approval.follow("approve").status == 200
    assert approval.follow("reject").status == 409
    assert len(approval.tasks.answers) == 1
