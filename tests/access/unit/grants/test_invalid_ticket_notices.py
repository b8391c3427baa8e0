"""A signed ticket of a grants source that starts nothing is told why on the ticket: no valid request
(422), too many of its reporter's requests waiting (429), a key colliding with another ticket's
execution name (409); once per signed body (whatever delivery id a replay carries); an unsigned or
badly signed one, or one that names no ticket, never makes the intake comment. The webhook intake is
the real one (grants table on moto), the notices are recorded."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from cvpn_shared.access.callback import InvalidTicketNotice, NotStartedNotice
from cvpn_shared.access.signatures import SignatureScheme, sign
from tests.access.unit.grants.test_ticket_grants import (
    FIELDS,
    JIRA,
    SECRET,
    SOURCE,
    Desk,
    desk,  # noqa: F401 (the fixture)
    grants_source,
    ticket,
)
from tests.access.unit.webhooks.conftest import MemorySources


@dataclass
class Notices:
    sent: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    def notify(self, notice: dict[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("lambda:InvokeFunction throttled")
        self.sent.append(json.loads(json.dumps(notice)))  # as an invocation's payload carries it


@pytest.fixture
def told(desk: Desk) -> tuple[Desk, Notices]:  # noqa: F811
    notices = Notices()
    return dataclasses.replace(desk, intake=dataclasses.replace(desk.intake, notices=notices)), notices


def _send(office: Desk, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    answer = office.intake.receive(SOURCE, headers, body, is_base64_encoded=False)
    return answer.status, answer.body


def _signed(
    payload: dict[str, Any], delivery: str = "d-1", secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    headers = sign(SignatureScheme.JIRA, body, secret, timestamp=1_800_000_000)
    headers["X-Atlassian-Webhook-Identifier"] = delivery
    return body, headers


def test_hours_over_the_profiles_maximum_are_told_on_the_ticket_once(told: tuple[Desk, Notices]) -> None:
    office, notices = told
    body, headers = _signed(ticket("ACC-8", customfield_10063=100))
    status, answer = _send(office, body, headers)
    assert status == 422 and [e["field"] for e in answer["errors"]] == ["hours"]
    [notice] = notices.sent
    parsed = InvalidTicketNotice.model_validate(notice)
    assert parsed.request_id == "ACC-8" and parsed.source == SOURCE
    assert parsed.callback.url == f"{JIRA}/rest/api/3/issue/ACC-8/comment"
    assert [(e["field"], e["mapped_from"]) for e in parsed.errors] == [("hours", f"{FIELDS}10063")]
    assert "72" in parsed.errors[0]["message"]
    assert _send(office, body, headers)[0] == 422  # the same delivery again: no second comment
    headers["X-Atlassian-Webhook-Identifier"] = "d-2"  # a replay under another (unsigned) delivery id
    assert _send(office, body, headers)[0] == 422
    assert len(notices.sent) == 1
    edited = ticket("ACC-8", customfield_10063=100, summary="still wrong")
    assert _send(office, *_signed(edited, delivery="d-3"))[0] == 422  # the ticket sent again: told again
    assert len(notices.sent) == 2


def test_a_field_that_does_not_map_is_told_with_its_ticket_field(told: tuple[Desk, Notices]) -> None:
    office, notices = told
    status, _ = _send(office, *_signed(ticket("ACC-9", reporter={"displayName": "No Account"})))
    assert status == 422
    [notice] = notices.sent
    assert notice["request_id"] == "ACC-9"
    assert [(e["field"], e["mapped_from"]) for e in notice["errors"]] == [
        ("sub", "issue.fields.reporter.accountId")
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature": "sha256=" + "0" * 64, "X-Atlassian-Webhook-Identifier": "d-1"},
    ],
    ids=["unsigned", "bad-signature"],
)
def test_an_unsigned_or_badly_signed_delivery_is_never_told(
    told: tuple[Desk, Notices], headers: dict[str, str]
) -> None:
    office, notices = told
    body = json.dumps(ticket("ACC-10", customfield_10063=100)).encode()
    assert _send(office, body, headers)[0] == 401
    forged = _signed(ticket("ACC-10", customfield_10063=100), secret="not-the-secret")
    assert _send(office, *forged)[0] == 401
    assert notices.sent == []


@pytest.mark.parametrize(
    "key",
    [None, "", "has space", "x" * 200, ["ACC-1"], True],
    ids=["none", "empty", "space", "long", "list", "bool"],
)
def test_a_ticket_without_a_usable_key_is_not_told(told: tuple[Desk, Notices], key: Any) -> None:
    office, notices = told
    payload = ticket(customfield_10063=100)
    payload["issue"]["key"] = key
    assert _send(office, *_signed(payload))[0] == 422
    assert notices.sent == []


def test_a_source_without_a_callback_is_not_told(told: tuple[Desk, Notices]) -> None:
    office, notices = told
    config = grants_source()
    del config["callback"]
    intake = dataclasses.replace(office.intake, sources=MemorySources({SOURCE: config}))
    body, headers = _signed(ticket(customfield_10063=100))
    assert intake.receive(SOURCE, headers, body, is_base64_encoded=False).status == 422
    assert notices.sent == []


def test_a_notice_that_could_not_be_sent_is_sent_on_the_retry(told: tuple[Desk, Notices]) -> None:
    office, notices = told
    body, headers = _signed(ticket("ACC-11", customfield_10063=100))
    notices.fail = True
    assert _send(office, body, headers)[0] == 422  # the sender still learns why
    notices.fail = False
    assert _send(office, body, headers)[0] == 422
    assert [n["request_id"] for n in notices.sent] == ["ACC-11"]


def test_a_valid_ticket_is_not_told_anything(told: tuple[Desk, Notices]) -> None:
    office, notices = told
    assert _send(office, *_signed(ticket("ACC-12")))[0] == 202
    assert notices.sent == []


def test_a_ticket_past_the_pending_limit_is_told_which_requests_wait_once(told: tuple[Desk, Notices]) -> None:
    office, notices = told  # the reporter may have 2 requests waiting
    assert _send(office, *_signed(ticket("ACC-21"), "d-1"))[0] == 202
    assert _send(office, *_signed(ticket("ACC-22"), "d-2"))[0] == 202
    body, headers = _signed(ticket("ACC-23"), "d-3")
    status, answer = _send(office, body, headers)
    assert status == 429 and "the limit is 2" in answer["message"] and "notice" not in answer
    [notice] = notices.sent
    parsed = NotStartedNotice.model_validate(notice)
    assert (parsed.request_id, parsed.reason, parsed.pending, parsed.limit) == (
        "ACC-23",
        "too-many-pending",
        ["ACC-21", "ACC-22"],
        2,
    )
    assert parsed.callback.url == f"{JIRA}/rest/api/3/issue/ACC-23/comment"
    # Jira Cloud sends a 429 again, the delivery id unsigned: the ticket is not told twice.
    assert _send(office, body, headers)[0] == 429
    assert _send(office, body, {**headers, "X-Atlassian-Webhook-Identifier": "d-4"})[0] == 429
    assert len(notices.sent) == 1
    forged = _signed(ticket("ACC-24"), "d-5", secret="not-the-secret")
    assert _send(office, *forged)[0] == 401
    assert len(notices.sent) == 1
    # A place frees (the limit counts requests in flight): the retry starts it, and says nothing more.
    office.pending.held.clear()
    assert _send(office, body, headers)[0] == 202
    assert len(notices.sent) == 1


def test_a_ticket_whose_key_collides_is_told_the_other_ticket_once(told: tuple[Desk, Notices]) -> None:
    office, notices = told
    office.pending.limit = 10  # a start that failed keeps its place a while: the resends fit
    assert _send(office, *_signed(ticket("ACC-31"), "d-1"))[0] == 202
    body, headers = _signed(ticket("ACC.31"), "d-2")  # the same execution name as ACC-31
    status, answer = _send(office, body, headers)
    assert status == 409 and "ACC-31" in answer["message"]
    [notice] = notices.sent
    parsed = NotStartedNotice.model_validate(notice)
    assert (parsed.request_id, parsed.reason, parsed.other_request_id) == (
        "ACC.31",
        "name-conflict",
        "ACC-31",
    )
    assert parsed.callback.url == f"{JIRA}/rest/api/3/issue/ACC.31/comment"
    assert _send(office, body, {**headers, "X-Atlassian-Webhook-Identifier": "d-3"})[0] == 409
    assert len(notices.sent) == 1
