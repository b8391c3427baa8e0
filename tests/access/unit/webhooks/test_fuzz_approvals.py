"""The approval endpoints under whatever arrives: never a 5xx, never an unhandled exception; a GET
decides nothing, and only a genuine link confirmed (POST) by an approver who did not ask decides.

``GET /approvals/{id}`` is public (the links travel by e-mail); its POST comes through the JWT
authorizer with the token's claims. The handler is the deployed one, its records and task callbacks in
memory with the table's and Step Functions' semantics. The
RequestApproval task is fed any event: it either stores one approval and sends one message SNS
would accept, or refuses the event (a validation error naming the field) having written nothing.
"""

from __future__ import annotations

import json
import logging
import re
import string
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cvpn_shared.access.approval import link_signature
from cvpn_shared.access.signatures import SigningSecrets
from tests.fixtures.handlers import LambdaContext, load_handler_module

from .conftest import NOW
from .test_approval import (
    ADA,
    APPROVAL_ID,
    GRACE,
    MemoryApprovals,
    MemoryApprovers,
    MemoryContext,
    MemoryTasks,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

SECRET = SigningSecrets("link-secret-current", "link-secret-previous")
FUZZ = settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _quiet(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """No log lines while the module's fuzz test runs: Powertools' event parser logs the traceback
    of every refused event, and formatting a thousand of them (for stdout and for pytest's report)
    is a large share of the test's time. A failure to log is never raised (logging reports it on
    stderr), so nothing the test checks is hidden."""
    monkeypatch.setattr(module.logger._logger, "disabled", True)
    monkeypatch.setattr(
        logging.getLogger("aws_lambda_powertools.middleware_factory.factory"), "disabled", True
    )


class World:
    """One pending approval whose workflow waits on task token ``tok``."""

    def __init__(self) -> None:
        self.records = MemoryApprovals()
        self.records.create(
            {"approval_id": APPROVAL_ID, "status": "PENDING", "task_token": "tok", "request_id": "R-1"}
        )
        self.tasks = MemoryTasks()
        self.context = MemoryContext()
        self.context.requests["R-1"] = {**self.context.requests["GH-42"], "request_id": "R-1"}


@pytest.fixture
def decision_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # Powertools reads the metrics namespace when the handler first imports it.
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    module = load_handler_module("access/approval_decision")
    _quiet(module, monkeypatch)
    return module


@pytest.fixture
def world(decision_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[World]:
    holder = [World()]
    monkeypatch.setattr(decision_module, "approval_records", lambda: holder[0].records)
    monkeypatch.setattr(decision_module, "task_callbacks", lambda: holder[0].tasks)
    monkeypatch.setattr(decision_module, "approval_context", lambda: holder[0].context)
    monkeypatch.setattr(decision_module, "approval_link_secret", lambda: SECRET)
    monkeypatch.setattr(decision_module.time, "time", lambda: NOW)
    return holder


def _genuine(decision: str, expires: int, secret: str = SECRET.current) -> dict[str, str]:
    return {
        "decision": decision,
        "expires": str(expires),
        "signature": link_signature(secret, APPROVAL_ID, decision, expires),
    }


_expires = st.one_of(st.integers(int(NOW) - 86400, int(NOW) + 86400), st.integers(0, 10**12))
_genuine_link = st.builds(
    _genuine,
    st.sampled_from(["approve", "reject"]),
    _expires,
    st.sampled_from([SECRET.current, SECRET.previous or "", "another-secret"]),
)


@st.composite
def _tampered(draw: st.DrawFn) -> dict[str, str]:
    query = dict(draw(_genuine_link))
    key = draw(st.sampled_from(["decision", "expires", "signature"]))
    query[key] = draw(
        st.one_of(
            st.sampled_from(["approve", "reject", "APPROVE", "", "0", query[key].upper(), query[key] + "0"]),
            st.text(max_size=70),
        )
    )
    if draw(st.booleans()):
        query.pop(draw(st.sampled_from(sorted(query))))
    return query


_random_query = st.dictionaries(
    st.sampled_from(["decision", "expires", "signature", "other", ""]), st.text(max_size=80), max_size=5
)
_approval_id = st.one_of(
    st.just(APPROVAL_ID),
    st.just(APPROVAL_ID.lower()),
    st.just(APPROVAL_ID + "x"),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#"), min_size=1, max_size=80),
)


_claims = st.one_of(
    st.just(GRACE),  # an approver
    st.just(ADA),  # the requester, also in the approver group
    st.just({**GRACE, "groups": "[staff]"}),  # outside the group
    st.just({}),
    st.dictionaries(st.sampled_from(["iss", "sub", "groups", "email"]), st.text(max_size=20), max_size=4),
)


def _event(approval_id: str, query: dict[str, str], method: str, claims: dict[str, Any]) -> dict[str, Any]:
    """GET carries the link in its query; POST (the confirmation) in a JSON body, with the claims."""
    path = f"/approvals/{approval_id}"
    route = f"{method} /approvals/{{approval_id}}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in query.items()) if method != "POST" else "",
        "queryStringParameters": (query or None) if method != "POST" else None,
        "pathParameters": {"approval_id": approval_id},
        "headers": {"user-agent": "fuzz"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "fuzz",
            },
            "requestId": "r1",
            "routeKey": route,
            "stage": "$default",
            "time": "28/Nov/2026:10:00:00 +0000",
            "timeEpoch": 0,
            **({"authorizer": {"jwt": {"claims": claims, "scopes": None}}} if method == "POST" else {}),
        },
        "isBase64Encoded": False,
    }
    if method == "POST":
        event["body"] = json.dumps(query)
    return event


@FUZZ
@given(
    approval_id=_approval_id,
    query=st.one_of(_genuine_link, _tampered(), _random_query),
    method=st.sampled_from(["GET", "GET", "POST", "POST", "HEAD", "DELETE"]),
    claims=_claims,
)
def test_approval_links_never_answer_5xx_and_only_a_confirmed_genuine_one_decides(
    decision_module: ModuleType,
    world: list[World],
    approval_id: str,
    query: dict[str, str],
    method: str,
    claims: dict[str, Any],
) -> None:
    current = world[0] = World()

    event = _event(approval_id, query, method, claims)
    answer = decision_module.lambda_handler(event, LambdaContext("approvals"))

    status = answer["statusCode"]
    assert 200 <= status < 500, answer
    record = current.records.items[APPROVAL_ID]
    genuine = (
        approval_id == APPROVAL_ID
        and query.get("decision") in ("approve", "reject")
        and re.fullmatch("[0-9]{1,12}", query.get("expires", "")) is not None
        and int(query["expires"]) >= int(NOW)
        and re.fullmatch("[0-9a-fA-F]{64}", query.get("signature", "")) is not None
        and any(  # hex digits in either case are the same signature
            query["signature"].lower()
            == link_signature(secret, APPROVAL_ID, query["decision"], int(query["expires"]))
            for secret in (SECRET.current, SECRET.previous or "")
        )
    )
    if genuine and method == "POST" and claims is GRACE:
        assert status == 200, answer
        assert record["status"] == {"approve": "APPROVED", "reject": "REJECTED"}[query["decision"]]
        assert record["approver_sub"] == GRACE["sub"]
        assert [token for token, _, _ in current.tasks.answers] == ["tok"]
    else:
        # a GET (page or scanner), a bad link, the requester or anyone outside the group: nothing decided
        assert status == 200 if genuine and method == "GET" else status != 200, (answer, query)
        assert record["status"] == "PENDING"
        assert current.tasks.answers == []


# ------------------------------------------------------------------------------- RequestApproval
class SnsApprovers(MemoryApprovers):
    """The approvers' topic with SNS's rules for what Publish accepts."""

    def publish(self, subject: str, text: str, attributes: dict[str, str]) -> str:
        # Subject: ASCII, no line breaks or control characters, fewer than 100 characters.
        assert 0 < len(subject) < 100 and all(
            c in string.printable and c not in "\r\n\t\x0b\x0c" for c in subject
        ), subject
        assert text and len(text.encode()) <= 256 * 1024
        return super().publish(subject, text, attributes)


@pytest.fixture
def request_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # Powertools reads the metrics namespace when the handler first imports it.
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    module = load_handler_module("access/request_approval")
    _quiet(module, monkeypatch)
    return module


_REQUEST_ITEM_KEYS = [
    "type",
    "target_network_cidr",
    "destination_cidr",
    "authorize_all_groups",
    "access_group_id",
]
_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12))
# Shapes a JSON field can take, flat enough to draw quickly: a scalar, a list or an object of scalars.
_json = st.one_of(
    _scalar,
    st.lists(_scalar, max_size=3),
    st.dictionaries(st.text(max_size=6), _scalar, max_size=3),
    st.lists(st.dictionaries(st.sampled_from(_REQUEST_ITEM_KEYS), _scalar, max_size=3), max_size=2),
)
_REQUEST_FIELDS = ["requester", "authentication", "authorization_rules", "routes", "subnet_ids"]
_request = st.one_of(
    _json,
    st.fixed_dictionaries(
        {},
        optional={
            "request_id": st.one_of(st.text(max_size=150), _scalar),
            **dict.fromkeys(_REQUEST_FIELDS, _json),
        },
    ),
)
_task_event = st.one_of(
    _json,
    st.fixed_dictionaries(
        {},
        optional={
            "task_token": st.one_of(st.text(max_size=30), st.just("t" * 3000), _scalar),
            "execution_arn": st.one_of(st.text(max_size=30), _scalar),
            "source": st.one_of(st.sampled_from(["github", "request-form"]), st.text(max_size=20), _scalar),
            "request": _request,
        },
    ),
    # A task the workflow could hand over (every field there, a request id named) whose values are
    # still anyone's: without it, hardly an example reaches the message that is sent.
    st.fixed_dictionaries(
        {
            "task_token": st.one_of(st.text(min_size=1, max_size=30), st.just("t" * 2048)),
            "execution_arn": st.text(min_size=1, max_size=30),
            "source": st.one_of(
                st.sampled_from(["github", "request-form"]), st.text(min_size=1, max_size=20)
            ),
            "request": st.builds(
                lambda request, request_id: {**request, "request_id": request_id},
                st.fixed_dictionaries({}, optional=dict.fromkeys(_REQUEST_FIELDS, _json)),
                st.text(min_size=1, max_size=150),
            ),
        }
    ),
)


@pytest.fixture
def approvals_sent(request_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    monkeypatch.setenv("INTAKE_API_URL", "https://abc123.execute-api.us-east-1.amazonaws.com")
    monkeypatch.setenv("APPROVAL_LINK_TTL_SECONDS", "86400")
    request_module.get_settings.cache_clear()
    holder: list[Any] = [MemoryApprovals(), SnsApprovers()]
    monkeypatch.setattr(request_module, "approval_records", lambda: holder[0])
    monkeypatch.setattr(request_module, "approvers_topic", lambda: holder[1])
    monkeypatch.setattr(request_module, "approval_link_secret", lambda create=False: SECRET)
    yield holder
    request_module.get_settings.cache_clear()


@FUZZ
@given(event=_task_event)
def test_the_approval_task_sends_one_valid_message_or_refuses_writing_nothing(
    request_module: ModuleType, approvals_sent: list[Any], event: Any
) -> None:
    records, approvers = MemoryApprovals(), SnsApprovers()
    approvals_sent[:] = [records, approvers]
    try:
        answer = request_module.lambda_handler(event, LambdaContext("request-approval"))
    except ValidationError as error:
        assert error.errors(), error
        assert records.items == {} and approvers.messages == []
        return
    assert set(answer) == {"approval_id", "expires_at"}
    [record] = records.items.values()
    assert record["status"] == "PENDING" and record["task_token"] == event["task_token"]
    [(_, text, _)] = approvers.messages
    assert f"/approvals/{answer['approval_id']}?decision=approve" in text
    json.dumps(record)  # storable as it is
