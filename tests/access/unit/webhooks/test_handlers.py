"""The intake's HTTP handlers as API Gateway (payload format 2.0) calls them: thin Powertools routing
over the domain, JSON or HTML answers, and never a 5xx for whatever a caller sends."""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvpn_shared.access.approval import approval_links
from cvpn_shared.access.signatures import SigningSecrets
from tests.fixtures.handlers import LambdaContext, load_handler_module

from .conftest import NOW, Harness
from .test_approval import GRACE, MemoryApprovals, MemoryContext, MemoryTasks

# Powertools warns when an answer published no metric (routing 404s): expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def _event(
    method: str,
    path: str,
    route: str,
    *,
    body: str | None = None,
    b64: bool = False,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    parameters: dict[str, str] | None = None,
    claims: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {name.lower(): value for name, value in (headers or {}).items()},
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
                "userAgent": "pytest",
            },
            "requestId": "id",
            "routeKey": route,
            "stage": "$default",
            "time": "28/Nov/2026:22:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": b64,
    }
    if body is not None:
        event["body"] = body
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if query:
        event["queryStringParameters"] = query
    if parameters:
        event["pathParameters"] = parameters
    return event


@pytest.fixture
def powertools_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "cvpn-autopilot")


@pytest.fixture
def webhook_app(harness: Harness, powertools_env: None, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = load_handler_module("access/webhook_intake")
    monkeypatch.setattr(module, "webhook_intake", lambda: harness.intake)
    return module


def _post(
    module: ModuleType, source: str, body: str | None, headers: dict[str, str], b64: bool
) -> dict[str, Any]:
    event = _event(
        "POST",
        f"/webhooks/{source}",
        "POST /webhooks/{source}",
        body=body,
        b64=b64,
        headers=headers,
        parameters={"source": source},
    )
    return dict(module.lambda_handler(event, LambdaContext("intake")))


def test_webhook_handler_answers_202_without_a_status_url(webhook_app: ModuleType, harness: Harness) -> None:
    """The ticket system cannot sign in to the request API: it gets no URL (no Location) it could
    not read; the result comes to the ticket as a comment."""
    body, headers = harness.signed("jira")
    answer = _post(webhook_app, "jira", base64.b64encode(body).decode(), headers, True)
    assert answer["statusCode"] == 202
    assert "Location" not in answer["headers"] and "location" not in answer["headers"]
    assert "status_url" not in json.loads(answer["body"])
    assert answer["headers"]["Content-Type"] == "application/json"
    assert json.loads(answer["body"])["request_id"] == "NET-2001"


def test_webhook_handler_answers_401_as_json(webhook_app: ModuleType, harness: Harness) -> None:
    body, headers = harness.signed("jira", secret="nope")
    answer = _post(webhook_app, "jira", body.decode(), headers, False)
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"])["message"].startswith("X-Hub-Signature: does not match")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    source=st.text(max_size=15),
    body=st.none() | st.text(max_size=600),
    headers=st.dictionaries(st.text(min_size=1, max_size=25), st.text(max_size=80), max_size=5),
    b64=st.booleans(),
)
def test_webhook_handler_never_answers_5xx(
    webhook_app: ModuleType,
    harness: Harness,
    source: str,
    body: str | None,
    headers: dict[str, str],
    b64: bool,
) -> None:
    answer = _post(webhook_app, source, body, headers, b64)
    assert 400 <= answer["statusCode"] < 500, answer
    assert harness.starter.started == {}


@pytest.fixture
def approval_app(powertools_env: None, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, MemoryApprovals]:
    module = load_handler_module("access/approval_decision")
    records = MemoryApprovals()
    records.create({"approval_id": "a" * 32, "status": "PENDING", "task_token": "tok", "request_id": "GH-42"})
    monkeypatch.setattr(module, "approval_records", lambda: records)
    monkeypatch.setattr(module, "task_callbacks", lambda: MemoryTasks())
    monkeypatch.setattr(module, "approval_context", lambda: MemoryContext())
    monkeypatch.setattr(module, "approval_link_secret", lambda: SigningSecrets("link-secret"))
    monkeypatch.setattr(module.time, "time", lambda: NOW)
    return module, records


def _link_query() -> dict[str, str]:
    link = approval_links("https://api.example", "a" * 32, int(NOW) + 60, "link-secret")["approve"]
    return dict(part.split("=", 1) for part in link.split("?", 1)[1].split("&"))


def _follow(module: ModuleType, approval_id: str, query: dict[str, str]) -> dict[str, Any]:
    event = _event(
        "GET",
        f"/approvals/{approval_id}",
        "GET /approvals/{approval_id}",
        query=query,
        parameters={"approval_id": approval_id},
    )
    return dict(module.lambda_handler(event, LambdaContext("intake")))


def _confirm(module: ModuleType, approval_id: str, body: str, claims: dict[str, Any]) -> dict[str, Any]:
    event = _event(
        "POST",
        f"/approvals/{approval_id}",
        "POST /approvals/{approval_id}",
        body=body,
        parameters={"approval_id": approval_id},
        claims=claims,
    )
    return dict(module.lambda_handler(event, LambdaContext("intake")))


def test_the_link_opens_a_confirm_page_under_a_nonce_policy(
    approval_app: tuple[ModuleType, MemoryApprovals],
) -> None:
    module, records = approval_app
    answer = _follow(module, "a" * 32, _link_query())
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "text/html; charset=utf-8"
    policy = answer["headers"]["Content-Security-Policy"]
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f"<script nonce='{nonce}'>" in answer["body"] and "connect-src 'self'" in policy
    assert "Approve request GH-42?" in answer["body"] and "Ada Lovelace" in answer["body"]
    assert records.items["a" * 32]["status"] == "PENDING"


def test_the_confirmation_decides_as_json_or_a_form_body(
    approval_app: tuple[ModuleType, MemoryApprovals],
) -> None:
    module, records = approval_app
    query = _link_query()
    refused = _confirm(module, "a" * 32, "not a form", GRACE)
    assert refused["statusCode"] == 400 and json.loads(refused["body"])["message"].startswith("decision:")
    answer = _confirm(module, "a" * 32, "&".join(f"{k}={v}" for k, v in query.items()), GRACE)
    assert answer["statusCode"] == 200, answer
    assert answer["headers"]["Content-Type"] == "application/json"
    assert "Request GH-42 is approved by Grace Hopper" in json.loads(answer["body"])["message"]
    assert records.items["a" * 32]["decided_via"] == "confirmed from 198.51.100.7 (pytest)"
    again = _confirm(module, "a" * 32, json.dumps(query), GRACE)
    assert again["statusCode"] == 409


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    approval_id=st.text(min_size=1, max_size=70).filter(lambda text: "/" not in text),
    query=st.dictionaries(
        st.sampled_from(["decision", "expires", "signature", "other"]), st.text(max_size=70), max_size=4
    ),
)
def test_approval_link_handler_never_answers_5xx(
    approval_app: tuple[ModuleType, MemoryApprovals], approval_id: str, query: dict[str, str]
) -> None:
    module, records = approval_app
    answer = _follow(module, approval_id, query)
    assert 400 <= answer["statusCode"] < 500, answer
    assert records.items["a" * 32]["status"] == "PENDING"
