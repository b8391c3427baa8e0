"""What a ticket that asked for access is told when it gets none: a refusal before approval (rejected,
expired, not activated) in words about the grant, and a ticket that made no valid request, field by
field. The texts are built from the intake's real end (``end_intake``) and the callback's task."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvpn_shared.access.access_requests import GrantDecisionTask, _refusal_reason
from cvpn_shared.access.callback import (
    InvalidTicketNotice,
    NotStartedNotice,
    TicketCallbackTask,
    compose_message,
    parse_notice,
    post_notice,
)
from cvpn_shared.access.intake_end import IntakeEndTask, end_intake
from cvpn_shared.access.ticket_notices import (
    MAX_LISTED_ERRORS,
    MAX_LISTED_PENDING,
    GrantRefusal,
    invalid_ticket_text,
    not_started_text,
    refusal_reason,
    refusal_statement,
    refusal_text,
    refused_statement,
)

from .conftest import NOW, MemorySecrets
from .test_callback import RecordingPoster

FORM = "https://vpn.example.com/"
GRANT = "g-0123456789abcdef"
REJECTED_CAUSE = "request ACC-9 was rejected by Grace Approver (approval abcdefghijklmnop)"


class NoPool:
    def release(self, block: ipaddress.IPv4Network, *, request_id: str) -> bool:
        raise AssertionError("a grant request holds no client CIDR block")


def _ended(status: str, error: dict[str, Any] | None, **request: Any) -> dict[str, Any]:
    """The outcome EndIntake hands PostResultToTicket for a grant request of ticket ACC-9."""
    task = IntakeEndTask.model_validate(
        {
            "source": "jira-access",
            "request": {"request_id": "ACC-9", "grant_id": GRANT, "kind": "grant", **request},
            "outcome": {"status": status, "error": error},
        }
    )
    return end_intake(task, allocations=NoPool())


def _comment(outcome: dict[str, Any], form_url: str = FORM) -> str:
    task = TicketCallbackTask.model_validate(
        {
            "callback": {"kind": "jira-comment", "url": "https://t.example/c", "credentials_secret_id": "c"},
            "source": "jira-access",
            "request_id": "ACC-9",
            "outcome": json.loads(json.dumps(outcome)),  # as it travels through the state machine
        }
    )
    return compose_message(task, form_url=form_url)


def test_a_rejected_grant_request_names_the_approver_and_how_to_ask_again() -> None:
    text = _comment(_ended("REJECTED", {"Error": "ApprovalRejected", "Cause": REJECTED_CAUSE}))
    assert text.startswith(
        f"The access request ACC-9 (grant {GRANT}) was refused: Grace Approver rejected it"
    )
    assert "no access was granted" in text and "ask Grace Approver why" in text
    assert f"file a new ticket, or use the request form at {FORM}" in text
    assert "nothing was created" not in text and "Provisioning" not in text


def test_a_rejection_without_a_name_says_an_approver() -> None:
    text = _comment(_ended("REJECTED", {"Error": "ApprovalRejected", "Cause": "rejected"}))
    assert "was refused: an approver rejected it" in text


def test_an_expired_grant_request_says_nobody_decided() -> None:
    text = _comment(_ended("EXPIRED", {"Error": "States.Timeout", "Cause": ""}), form_url="")
    assert text.startswith(f"The access request ACC-9 (grant {GRANT}) expired: no approver decided")
    assert text.endswith("To ask again, file a new ticket. Tell an approver, so it is decided in time.")
    assert "request form" not in text


def test_a_grant_that_could_not_be_activated_says_why() -> None:
    error = {
        "Error": "GrantConflict",
        "Cause": json.dumps({"errorType": "GrantConflict", "errorMessage": f"grant {GRANT} is revoked."}),
    }
    text = _comment(_ended("FAILED", error))
    assert f"could not be activated: GrantConflict: grant {GRANT} is revoked. No access was granted." in text
    assert "tell the VPN administrators" in text


def test_an_extension_refused_keeps_its_end() -> None:
    text = _comment(
        _ended("REJECTED", {"Error": "ApprovalRejected", "Cause": REJECTED_CAUSE}, kind="extension")
    )
    assert text.startswith(f"The extension asked in ACC-9 (grant {GRANT}) was refused")
    assert "the grant keeps the end it had" in text


def test_an_endpoint_request_keeps_its_own_wording() -> None:
    task = IntakeEndTask.model_validate(
        {"source": "jira", "request": {"request_id": "ACC-9"}, "outcome": {"status": "REJECTED"}}
    )
    ended = end_intake(task, allocations=NoPool())
    assert "refusal" not in ended
    assert _comment(ended) == "Request ACC-9 was rejected by an approver; nothing was created."


def test_the_grant_and_the_ticket_name_the_same_approver() -> None:
    error = {"Error": "ApprovalRejected", "Cause": REJECTED_CAUSE}
    outcome = {"status": "REJECTED", "error": error}
    decision = GrantDecisionTask.model_validate(
        {"action": "refuse", "request": {"request_id": "ACC-9", "grant_id": GRANT}, "outcome": outcome}
    )
    assert decision.outcome is not None
    assert _refusal_reason(decision.outcome) == "Grace Approver rejected it on the approval page"
    assert _ended("REJECTED", error)["refusal"]["decided_by"] == "Grace Approver"


def test_an_invalid_ticket_names_each_field_its_origin_and_why() -> None:
    errors = [
        {"field": "hours", "message": "at most 48 hours", "mapped_from": "issue.fields.customfield_10063"},
        {"field": "access_groups[0]", "message": "not offered by profile eng"},
        {"field": "issuer", "message": "must be https", "mapped_from": "defaults"},
    ]
    text = invalid_ticket_text("ACC-9", errors, form_url=FORM)
    assert text.startswith("Ticket ACC-9 did not make a valid access request, so nothing was requested: ")
    assert "hours (ticket field issue.fields.customfield_10063): at most 48 hours" in text
    assert "access_groups[0]: not offered by profile eng" in text and "issuer: must be https" in text
    assert text.endswith(f"You can also ask on the request form at {FORM}.")


def test_an_invalid_ticket_lists_a_bounded_number_of_errors() -> None:
    errors = [{"field": f"f{i}", "message": "x" * 5000} for i in range(MAX_LISTED_ERRORS + 5)]
    text = invalid_ticket_text("ACC-9", errors)
    assert "and 5 more" in text and f"f{MAX_LISTED_ERRORS}:" not in text
    assert len(text) < MAX_LISTED_ERRORS * 400 + 400


@settings(max_examples=1000, deadline=None, database=None)
@given(
    errors=st.lists(
        st.fixed_dictionaries(
            {"field": st.text(max_size=400), "message": st.text(max_size=2000)},
            optional={"mapped_from": st.text(max_size=400)},
        ),
        min_size=1,
        max_size=40,
    )
)
def test_any_errors_make_one_bounded_paragraph(errors: list[dict[str, Any]]) -> None:
    text = invalid_ticket_text("ACC-9", errors)
    assert "\n" not in text and len(text) < 6000
    assert text.startswith("Ticket ACC-9 did not make a valid access request")


def test_the_notice_is_posted_as_a_jira_comment() -> None:
    notice = InvalidTicketNotice.model_validate(
        {
            "notice": "invalid-request",
            "callback": {"kind": "jira-comment", "url": "https://t.example/c", "credentials_secret_id": "c"},
            "source": "jira-access",
            "request_id": "ACC-9",
            "errors": [{"field": "hours", "message": "at most 48 hours"}],
        }
    )
    poster = RecordingPoster()
    secrets = MemorySecrets({"c": {"email": "bot@example.com", "api_token": "t"}})
    result = post_notice(notice, secrets=secrets, http=poster, clock=lambda: NOW)
    assert result["delivered"] is True
    [(url, _, body)] = poster.sent
    comment = json.loads(body)["body"]["content"][0]["content"][0]["text"]
    assert url == "https://t.example/c" and "hours: at most 48 hours" in comment


def test_a_notice_without_errors_is_refused() -> None:
    with pytest.raises(ValueError, match="errors"):
        InvalidTicketNotice.model_validate(
            {
                "notice": "invalid-request",
                "callback": {"kind": "generic", "url": "https://t.example/c"},
                "source": "s",
                "request_id": "ACC-9",
                "errors": [],
            }
        )


# ------------------------------------------------------------------ what every reader of a refusal says
@pytest.mark.parametrize(
    ("status", "error", "name", "cause"),
    [
        (
            "REJECTED",
            {"Error": "ApprovalRejected", "Cause": REJECTED_CAUSE},
            "ApprovalRejected",
            f"The access request ACC-9 (grant {GRANT}) was refused: Grace Approver rejected it on the "
            "approval page; no access was granted.",
        ),
        (
            "EXPIRED",
            {"Error": "States.Timeout", "Cause": ""},
            "ApprovalExpired",
            f"The access request ACC-9 (grant {GRANT}) expired: no approver decided before the approval "
            "ran out; no access was granted.",
        ),
        (
            "FAILED",
            {"Error": "GrantConflict", "Cause": f"grant {GRANT} is revoked"},
            "GrantConflict",
            f"The access request ACC-9 (grant {GRANT}) could not be activated: GrantConflict: grant "
            f"{GRANT} is revoked. No access was granted.",
        ),
        (
            "FAILED",
            {"Error": "States.TaskFailed", "Cause": "the decision function timed out"},
            "ProvisioningFailed",
            f"The access request ACC-9 (grant {GRANT}) could not be activated: ProvisioningFailed: "
            "States.TaskFailed: the decision function timed out. No access was granted.",
        ),
    ],
    ids=["rejected", "expired", "not-activated", "reserved-name"],
)
def test_the_fail_state_says_what_the_ticket_comment_says(
    status: str, error: dict[str, Any], name: str, cause: str
) -> None:
    ended = _ended(status, error)
    assert ended["error"] == {"Error": name, "Cause": cause}
    assert "nothing was created" not in ended["error"]["Cause"]
    assert _comment(ended).startswith(cause + " ")


def test_the_status_words_come_back_from_the_reason_the_grant_keeps() -> None:
    """The status API has only the grant: from the reason its history keeps, it says what the
    execution's Fail state and the ticket's comment say."""
    for status, error in [
        ("REJECTED", {"Error": "ApprovalRejected", "Cause": REJECTED_CAUSE}),
        ("EXPIRED", {"Error": "States.Timeout"}),
        ("FAILED", {"Error": "GrantConflict", "Cause": "grant g is revoked."}),
    ]:
        for kind in ("grant", "extension"):
            ended = _ended(status, error, kind=kind)
            refusal = GrantRefusal.model_validate(ended["refusal"])
            decision = GrantDecisionTask.model_validate(
                {
                    "action": "refuse",
                    "request": {"request_id": "ACC-9", "grant_id": GRANT, "kind": kind},
                    "outcome": {"status": status, "error": error},
                }
            )
            kept = _refusal_reason(decision.outcome, kind)
            assert kept == refusal_reason(refusal)
            said = refused_statement("ACC-9", kept, kind=kind, grant_id=GRANT)
            assert (
                said
                == refusal_statement("ACC-9", refusal)
                == (ended["error"]["Error"], ended["error"]["Cause"])
            )


def test_another_refusal_is_said_as_it_was_recorded() -> None:
    name, cause = refused_statement("REQ-1", "withdrawn by the administrators", grant_id="g-1")
    assert name == "GrantRefused"
    assert cause == (
        "The access request REQ-1 (grant g-1) was refused: withdrawn by the administrators; "
        "no access was granted."
    )
    name, cause = refused_statement("REQ-1", "", kind="extension")
    assert (
        cause == "The extension asked in REQ-1 was refused: no reason given; the grant keeps the end it had."
    )


@settings(max_examples=1000, deadline=None, database=None)
@given(
    status=st.sampled_from(["REJECTED", "EXPIRED", "FAILED"]),
    kind=st.sampled_from(["grant", "extension"]),
    decided_by=st.none() | st.text(max_size=300),
    error=st.none()
    | st.fixed_dictionaries({"Error": st.text(max_size=300), "Cause": st.text(max_size=5000)}),
)
def test_any_refusal_reads_the_same_from_the_grant_and_from_the_intake(
    status: str, kind: str, decided_by: str | None, error: dict[str, str] | None
) -> None:
    refusal = GrantRefusal.model_validate(
        {"kind": kind, "grant_id": GRANT, "status": status, "decided_by": decided_by, "reason": error}
    )
    kept = refusal_reason(refusal)
    assert len(kept) <= 1000 and "\n" not in kept and kept == kept.strip()  # as the grant keeps it
    name, cause = refused_statement("ACC-9", kept, kind=kind, grant_id=GRANT)
    assert (name, cause) == refusal_statement("ACC-9", refusal)
    named = {"REJECTED": "ApprovalRejected", "EXPIRED": "ApprovalExpired"}
    assert name == named[status] if status in named else name not in (*named.values(), "GrantRefused")
    assert refusal_text("ACC-9", refusal).startswith(cause + " ")


# ------------------------------------------------------------------ a valid ticket that did not start
def test_a_ticket_past_the_pending_limit_names_the_waiting_requests_and_what_to_do() -> None:
    text = not_started_text("ACC-9", "too-many-pending", pending=["ACC-1", "ACC-2"], limit=2, form_url=FORM)
    assert text.startswith(
        "Ticket ACC-9 did not start an access request yet: its reporter already has 2 access request(s) "
        "waiting for a decision (ACC-1, ACC-2), and the limit is 2 per person."
    )
    assert "The ticket system may send this ticket again for a while" in text
    assert text.endswith(
        f"once one of them is decided, file a new ticket, or use the request form at {FORM}."
    )


def test_a_long_pending_list_is_bounded() -> None:
    pending = [f"ACC-{i}" + "x" * 500 for i in range(MAX_LISTED_PENDING + 3)]
    text = not_started_text("ACC-9", "too-many-pending", pending=pending, limit=50)
    assert "and 3 more" in text and f"ACC-{MAX_LISTED_PENDING}x" not in text
    assert len(text) < MAX_LISTED_PENDING * 140 + 800


def test_requests_arriving_at_once_say_to_wait() -> None:
    text = not_started_text("ACC-9", "too-many-pending")
    assert "arrived at the same moment" in text and "within an hour, file a new ticket." in text


def test_a_colliding_key_names_the_other_ticket() -> None:
    text = not_started_text("ACC.1", "name-conflict", other_request_id="ACC-1", form_url=FORM)
    assert text.startswith(
        "Ticket ACC.1 did not start an access request, so nothing was requested: its key gives the same "
        "workflow name as ticket ACC-1's"
    )
    assert f"File a new ticket, or use the request form at {FORM}; tell the VPN administrators" in text


@pytest.mark.parametrize("kind", ["jira-comment", "generic"])
def test_the_not_started_notice_is_posted_as_the_callback_says(kind: str) -> None:
    notice = NotStartedNotice.model_validate(
        {
            "notice": "not-started",
            "callback": {"kind": kind, "url": "https://t.example/c", "credentials_secret_id": "c"},
            "source": "jira-access",
            "request_id": "ACC-9",
            "reason": "too-many-pending",
            "pending": ["ACC-1"],
            "limit": 1,
        }
    )
    poster = RecordingPoster()
    secrets = MemorySecrets({"c": {"email": "bot@example.com", "api_token": "t", "current": "s"}})
    result = post_notice(notice, secrets=secrets, http=poster, clock=lambda: NOW, form_url=FORM)
    assert result["delivered"] is True
    [(url, _, body)] = poster.sent
    sent = json.loads(body)
    if kind == "jira-comment":
        text = sent["body"]["content"][0]["content"][0]["text"]
    else:
        assert (sent["status"], sent["reason"], sent["request_id"]) == (
            "NOT_STARTED",
            "too-many-pending",
            "ACC-9",
        )
        text = sent["message"]
    assert url == "https://t.example/c" and "waiting for a decision (ACC-1)" in text


@pytest.mark.parametrize(
    "change",
    [{"reason": "conflict"}, {"limit": 0}, {"request_id": ""}, {"pending": ["x"] * 101}],
    ids=["reason", "limit", "request-id", "pending"],
)
def test_a_not_started_notice_out_of_shape_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        NotStartedNotice.model_validate(
            {
                "notice": "not-started",
                "callback": {"kind": "generic", "url": "https://t.example/c"},
                "source": "s",
                "request_id": "ACC-9",
                "reason": "too-many-pending",
                **change,
            }
        )


def test_the_callback_function_tells_a_notice_from_a_result() -> None:
    callback = {"kind": "generic", "url": "https://t.example/c"}
    common = {"callback": callback, "source": "s", "request_id": "ACC-9"}
    invalid = {**common, "notice": "invalid-request", "errors": [{"field": "hours", "message": "x"}]}
    not_started = {**common, "notice": "not-started", "reason": "name-conflict", "other_request_id": "A"}
    assert isinstance(parse_notice(invalid), InvalidTicketNotice)
    assert isinstance(parse_notice(not_started), NotStartedNotice)
    assert parse_notice({**common, "outcome": {"status": "SUCCEEDED"}}) is None
    with pytest.raises(ValueError):
        parse_notice({**common, "notice": "not-started"})  # no reason
