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
    TicketCallbackTask,
    compose_message,
    post_invalid_ticket_notice,
)
from cvpn_shared.access.intake_end import IntakeEndTask, end_intake
from cvpn_shared.access.ticket_notices import MAX_LISTED_ERRORS, invalid_ticket_text

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
    outcome = {"status": "REJECTED", "error": {"Error": "ApprovalRejected", "Cause": REJECTED_CAUSE}}
    decision = GrantDecisionTask.model_validate(
        {"action": "refuse", "request": {"request_id": "ACC-9", "grant_id": GRANT}, "outcome": outcome}
    )
    assert decision.outcome is not None
    assert _refusal_reason(decision.outcome) == "rejected by Grace Approver"
    assert _ended("REJECTED", outcome["error"])["refusal"]["decided_by"] == "Grace Approver"


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
    result = post_invalid_ticket_notice(notice, secrets=secrets, http=poster, clock=lambda: NOW)
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
