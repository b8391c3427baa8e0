"""Replayed tickets: a captured delivery, sent again (as it was, with a new delivery id, or after its
execution name is free again) starts nothing; a ticket explicitly re-opened in its ticket system starts
once more, and the replay of that re-open starts nothing."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn_shared.access.dal.tickets import StartedTickets
from cvpn_shared.access.naming import MAX_EXECUTION_NAME_LENGTH, run_execution_name

from .conftest import Harness, example_payload
from .test_abuse import REGION


def _receive(harness: Harness, source: str, body: bytes, headers: dict[str, str]) -> Any:
    return harness.intake.receive(source, headers, body, is_base64_encoded=False)


def _jira_reopened(changelog_id: str) -> dict[str, Any]:
    """The example Jira ticket approved again after it was re-opened (a new change, a new id)."""
    payload = example_payload("jira")
    payload["changelog"] = {
        "id": changelog_id,
        "items": [{"field": "status", "fromString": "Reopened", "toString": "Approved"}],
    }
    return payload


def _writes(harness: Harness) -> tuple[int, int, int]:
    return harness.tickets.writes, len(harness.deliveries.items), len(harness.submissions.items)


# ------------------------------------------------------------------------- the domain, in memory
def test_a_redelivery_with_a_new_delivery_id_starts_nothing_and_writes_nothing(harness: Harness) -> None:
    body, headers = harness.signed("jira")
    assert _receive(harness, "jira", body, headers).status == 202
    before = _writes(harness)
    for delivery in ("delivery-2", "delivery-3"):
        again = _receive(harness, "jira", body, {**headers, "X-Atlassian-Webhook-Identifier": delivery})
        assert (again.status, again.outcome) == (200, "already-started")
    assert list(harness.starter.started) == ["jira-NET-2001"]
    assert _writes(harness) == before


@pytest.mark.parametrize(
    ("source", "reopen"),
    [
        ("jira", lambda payload: _jira_reopened("10500")),
        (
            "github",
            lambda payload: {
                **payload,
                "action": "reopened",
                "issue": {**payload["issue"], "updated_at": "2027-01-05T10:00:00Z"},
            },
        ),
        ("servicenow", lambda payload: {**payload, "ticket": {**payload["ticket"], "reopen_count": 1}}),
    ],
)
def test_a_reopened_ticket_starts_once_more_and_its_replay_does_not(
    harness: Harness, source: str, reopen: Any
) -> None:
    first_body, first_headers = harness.signed(source)
    first = _receive(harness, source, first_body, first_headers)
    assert first.status == 202, first.body
    request_id = first.body["request_id"]
    # the first delivery replayed: refused
    assert _receive(harness, source, first_body, first_headers).outcome == "already-started"

    reopened_body, reopened_headers = harness.signed(source, reopen(example_payload(source)))
    reopened_headers.update(
        {"X-Atlassian-Webhook-Identifier": "delivery-r", "X-GitHub-Delivery": "delivery-r"}
    )
    answer = _receive(harness, source, reopened_body, reopened_headers)
    assert answer.status == 202, answer.body
    second_name = run_execution_name(request_id, source, 2)
    assert answer.body["execution_arn"].endswith(":" + second_name)
    assert sorted(harness.starter.started) == sorted([run_execution_name(request_id, source, 1), second_name])
    assert harness.submissions.items[request_id]["execution_arn"] == answer.body["execution_arn"]

    # the re-open replayed, with a new delivery id too: refused, nothing more started
    for extra in (
        {},
        {"X-Atlassian-Webhook-Identifier": "other", "X-GitHub-Delivery": "other", "X-Request-Id": "o"},
    ):
        again = _receive(harness, source, reopened_body, {**reopened_headers, **extra})
        assert again.status == 200 and again.body["duplicate"] is True
        assert again.body["execution_arn"] == answer.body["execution_arn"]
    assert len(harness.starter.started) == 2


def test_a_ticket_without_a_reopen_marker_never_starts_twice(harness: Harness) -> None:
    """A source without ``reopen_marker`` configured: a ticket starts once, whatever comes later."""
    del harness.sources.configs["jira"]["reopen_marker"]
    body, headers = harness.signed("jira")
    assert _receive(harness, "jira", body, headers).status == 202
    body, headers = harness.signed("jira", _jira_reopened("10500"))
    headers["X-Atlassian-Webhook-Identifier"] = "delivery-r"
    assert _receive(harness, "jira", body, headers).outcome == "already-started"
    assert len(harness.starter.started) == 1


def test_a_transition_to_approved_from_another_status_is_not_a_reopen(harness: Harness) -> None:
    body, headers = harness.signed("jira")
    assert _receive(harness, "jira", body, headers).status == 202
    payload = example_payload("jira")
    payload["changelog"]["id"] = "10999"  # a new change, but from "In Review": not a re-open
    body, headers = harness.signed("jira", payload)
    headers["X-Atlassian-Webhook-Identifier"] = "delivery-r"
    assert _receive(harness, "jira", body, headers).outcome == "already-started"


def test_a_reopen_whose_start_fails_is_undone_so_the_retry_starts_it(harness: Harness) -> None:
    body, headers = harness.signed("jira")
    _receive(harness, "jira", body, headers)
    body, headers = harness.signed("jira", _jira_reopened("10500"))
    headers["X-Atlassian-Webhook-Identifier"] = "delivery-r"
    harness.starter.fail_with = RuntimeError("throttled")
    with pytest.raises(RuntimeError):
        _receive(harness, "jira", body, headers)
    assert harness.tickets.items["jira#NET-2001"]["run"] == 1
    assert harness.tickets.items["jira#NET-2001"]["markers"] == []
    harness.starter.fail_with = None
    assert _receive(harness, "jira", body, headers).status == 202
    assert harness.tickets.items["jira#NET-2001"]["run"] == 2


def test_a_claim_that_never_started_is_started_by_the_senders_retry(harness: Harness) -> None:
    """The function stopped between the claim and StartExecution: the retry starts it, once."""
    body, headers = harness.signed("jira")
    harness.tickets.items["jira#NET-2001"] = {
        "ticket_key": "jira#NET-2001",
        "source": "jira",
        "request_id": "NET-2001",
        "run": 1,
        "markers": [],
        "execution_arn": harness.starter.execution_arn("jira", "NET-2001"),
        "state": "starting",
        "claimed_at": int(harness.intake.clock()) - 30,
    }
    answer = _receive(harness, "jira", body, headers)
    assert answer.status == 202 and list(harness.starter.started) == ["jira-NET-2001"]
    assert harness.tickets.items["jira#NET-2001"]["state"] == "started"
    assert _receive(harness, "jira", body, headers).outcome == "already-started"


def test_two_deliveries_racing_for_one_ticket_start_it_once(harness: Harness) -> None:
    body, headers = harness.signed("jira")
    real_claim = harness.tickets.claim

    def claim_after_a_rival(record: dict[str, Any], *, previous_run: int) -> bool:
        harness.tickets.claim = real_claim  # type: ignore[method-assign]
        rival = dict(record, state="started", execution_arn="arn:rival")
        assert real_claim(rival, previous_run=previous_run)
        return real_claim(record, previous_run=previous_run)

    harness.tickets.claim = claim_after_a_rival  # type: ignore[method-assign]
    answer = _receive(harness, "jira", body, headers)
    assert (answer.status, answer.outcome) == (200, "already-started")
    assert answer.body["execution_arn"] == "arn:rival"
    assert harness.starter.started == {}


def test_a_marker_that_is_not_a_string_or_number_is_no_reopen(harness: Harness) -> None:
    body, headers = harness.signed("servicenow")
    _receive(harness, "servicenow", body, headers)
    counts: list[Any] = [True, None, [], {"n": 1}, ""]
    for count in counts:
        payload = example_payload("servicenow")
        payload["ticket"]["reopen_count"] = count
        body, headers = harness.signed("servicenow", payload)
        assert _receive(harness, "servicenow", body, headers).outcome == "already-started", count
    payload["ticket"]["reopen_count"] = "x" * 201
    body, headers = harness.signed("servicenow", payload)
    answer = _receive(harness, "servicenow", body, headers)
    assert answer.status == 422 and answer.body["errors"][0]["field"] == "reopen_marker"


@pytest.mark.parametrize("request_id", ["NET-1", "A" * 200, "ä/ü x"])
@pytest.mark.parametrize("run", [1, 2, 17])
def test_every_run_has_its_own_valid_execution_name(request_id: str, run: int) -> None:
    names = {run_execution_name(request_id, "jira", n) for n in range(1, run + 1)}
    assert len(names) == run
    for name in names:
        assert len(name) <= MAX_EXECUTION_NAME_LENGTH and all(c.isalnum() or c in "-_" for c in name)


# --------------------------------------------------------------- the permanent record on DynamoDB
def test_the_ticket_record_is_claimed_per_run_and_undone_exactly() -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="tickets",
            AttributeDefinitions=[{"AttributeName": "ticket_key", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "ticket_key", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        tickets = StartedTickets(dynamodb, "tickets")
        first = {
            "ticket_key": "jira#NET-1",
            "request_id": "NET-1",
            "run": 1,
            "markers": [],
            "state": "starting",
        }
        assert tickets.claim(first, previous_run=0)
        assert not tickets.claim(first, previous_run=0)  # a second first start
        tickets.mark_started("jira#NET-1", 1)
        stored = tickets.get("jira#NET-1")
        assert stored is not None and (stored["state"], stored["markers"], stored["run"]) == (
            "started",
            [],
            1,
        )
        second = {**stored, "run": 2, "markers": ["10500"], "state": "starting"}
        assert tickets.claim(second, previous_run=1)
        assert not tickets.claim({**second, "run": 2}, previous_run=1)  # a racing re-open
        tickets.release("jira#NET-1", 2, stored)
        assert tickets.get("jira#NET-1") == stored
        tickets.release("jira#NET-1", 1, None)
        assert tickets.get("jira#NET-1") is None


def test_an_administrators_grant_lets_the_next_delivery_start_once(harness: Harness) -> None:
    """``cvpn request reopen`` records a grant on the ticket: the next delivery, even the original one
    replayed, starts one more run and uses the grant up; the one after is refused again."""
    body, headers = harness.signed("jira")
    assert _receive(harness, "jira", body, headers).status == 202
    harness.tickets.items["jira#NET-2001"]["reopen_granted"] = "admin:7f1c"
    retried = {**headers, "X-Atlassian-Webhook-Identifier": "delivery-after-grant"}
    answer = _receive(harness, "jira", body, retried)
    assert answer.status == 202 and answer.body["execution_arn"].endswith(":jira-NET-2001_run2")
    assert harness.tickets.items["jira#NET-2001"]["markers"] == ["admin:7f1c"]
    again = {**headers, "X-Atlassian-Webhook-Identifier": "delivery-3"}
    assert _receive(harness, "jira", body, again).outcome == "already-started"
    assert len(harness.starter.started) == 2


def test_a_grant_and_a_reopen_in_one_delivery_start_one_run_and_use_both(harness: Harness) -> None:
    body, headers = harness.signed("jira")
    _receive(harness, "jira", body, headers)
    harness.tickets.items["jira#NET-2001"]["reopen_granted"] = "admin:7f1c"
    body, headers = harness.signed("jira", _jira_reopened("10500"))
    headers["X-Atlassian-Webhook-Identifier"] = "delivery-r"
    assert _receive(harness, "jira", body, headers).status == 202
    assert harness.tickets.items["jira#NET-2001"]["markers"] == ["10500", "admin:7f1c"]
    headers["X-Atlassian-Webhook-Identifier"] = "delivery-r2"
    assert _receive(harness, "jira", body, headers).outcome == "already-started"
