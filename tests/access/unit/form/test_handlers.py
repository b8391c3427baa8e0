"""The form's handlers: thin routing over domain logic, payload format 2.0, JWT claims name the requester."""

from __future__ import annotations

import json
import re
from types import ModuleType
from typing import Any

import pytest

from cvpn_shared.access.cidr_pool import CidrPool
from cvpn_shared.access.form import FormServices
from cvpn_shared.access.profiles import parse_profile
from cvpn_shared.access.settings import get_settings
from tests.fixtures.handlers import LambdaContext, load_handler_module

from .conftest import GROUP_ENGINEERING, PROFILE_DOCUMENT
from .test_cidr_pool import MemoryAllocations
from .test_form import Catalog, Executions, Network, Starter, Submissions

ISSUER = "https://issuer.example"
# API Gateway hands a function the validated token's claims, every one as a string.
ADA = {"iss": ISSUER, "sub": "sub-ada", "email": "ada@example.com", "email_verified": "false"}


def _event(
    method: str, path: str, *, body: Any = None, claims: dict[str, str] | None = None
) -> dict[str, Any]:
    route = "GET /requests/{id}" if path.startswith("/requests/") else f"{method} {path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.1",
                "userAgent": "t",
            },
            "requestId": "r1",
            "routeKey": route,
            "stage": "$default",
            "time": "28/Nov/2026:10:00:00 +0000",
            "timeEpoch": 0,
            "authorizer": {"jwt": {"claims": ADA if claims is None else claims, "scopes": None}},
        },
        "isBase64Encoded": False,
    }
    if path.startswith("/requests/"):
        event["pathParameters"] = {"id": path.rsplit("/", 1)[-1]}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, FormServices]:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    module = load_handler_module("access/request_api")
    services = FormServices(
        profiles=Catalog(parse_profile("engineering", dict(PROFILE_DOCUMENT))),
        allocations=MemoryAllocations(),
        submissions=Submissions(),
        network=Network(),
        start=Starter(),
    )
    executions = Executions({"status": "RUNNING"})
    executions.described["arn:aws:states:us-east-1:123456789012:execution:intake:REQ-X"] = {
        "status": "RUNNING"
    }
    executions.histories["arn:aws:states:us-east-1:123456789012:execution:intake:REQ-X"] = [
        {"stateEnteredEventDetails": {"name": "WaitForApproval"}}
    ]
    monkeypatch.setattr(module, "form_services", lambda: services)
    monkeypatch.setattr(module, "form_submissions", lambda: services.submissions)
    monkeypatch.setattr(module, "client_cidr_allocations", lambda: services.allocations)
    monkeypatch.setattr(module, "client_cidr_pool", lambda: CidrPool.parse("172.16.0.0/16", 22))
    monkeypatch.setattr(module, "step_functions_executions", lambda: executions)
    monkeypatch.setattr(module, "_new_request_id", lambda: "REQ-X")
    return module, services


def _call(module: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = module.lambda_handler(event, LambdaContext("request-api"))
    return answer["statusCode"], json.loads(answer["body"])


def test_profiles_are_listed_for_a_signed_in_person(api: tuple[ModuleType, FormServices]) -> None:
    status, body = _call(api[0], _event("GET", "/profiles"))
    assert status == 200
    assert [profile["name"] for profile in body["profiles"]] == ["engineering"]


def test_a_submission_is_accepted_with_the_tokens_email_as_requester(
    api: tuple[ModuleType, FormServices],
) -> None:
    module, services = api
    form = {
        "profile": "engineering",
        "access_groups": [GROUP_ENGINEERING],
        "justification": "Build farm on-call",
    }
    status, body = _call(module, _event("POST", "/requests", body=form, claims=ADA))
    assert status == 202, body
    assert body["request_id"] == "REQ-X" and body["status_url"] == "/requests/REQ-X"
    assert isinstance(services.start, Starter)
    assert services.start.started[0]["requester"] == "ada@example.com"
    recorded = services.submissions.get("REQ-X")
    assert recorded is not None
    assert (recorded["requester_issuer"], recorded["requester_sub"]) == (ISSUER, "sub-ada")

    status, body = _call(module, _event("GET", "/requests/REQ-X", claims=ADA))
    assert (status, body["status"], body["steps"]) == (200, "awaiting-approval", ["WaitForApproval"])
    eve = {"iss": ISSUER, "sub": "sub-eve", "email": "eve@example.com"}
    status, body = _call(module, _event("GET", "/requests/REQ-X", claims=eve))
    assert (status, body["message"]) == (404, "no request REQ-X of yours")
    # Eve's token claims Ada's e-mail, even as verified: the request is Ada's sub's, not her address's.
    eve_as_ada = {**eve, "email": "ada@example.com", "email_verified": "true"}
    status, body = _call(module, _event("GET", "/requests/REQ-X", claims=eve_as_ada))
    assert (status, body["message"]) == (404, "no request REQ-X of yours")


def test_a_bad_submission_gets_422_naming_each_field(api: tuple[ModuleType, FormServices]) -> None:
    form = {"profile": "engineering", "access_groups": [], "justification": "x", "requester": "eve"}
    status, body = _call(api[0], _event("POST", "/requests", body=form))
    assert status == 422
    assert {error["field"] for error in body["errors"]} == {"access_groups", "justification", "requester"}


def test_a_token_naming_nobody_gets_403(api: tuple[ModuleType, FormServices]) -> None:
    status, body = _call(api[0], _event("GET", "/profiles", claims={"email": "ada@example.com"}))
    assert status == 403 and "names no person" in body["message"]


def test_the_page_carries_public_configuration_only_under_a_nonce_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OIDC_ISSUER_URL", "https://login.example.com/oauth2/default")
    monkeypatch.setenv("OIDC_CLIENT_ID", "form-client")
    get_settings.cache_clear()
    try:
        module = load_handler_module("access/request_form")
        answer = module.lambda_handler({"rawPath": "/"}, LambdaContext("request-form"))
    finally:
        get_settings.cache_clear()
    assert answer["statusCode"] == 200
    page = answer["body"]
    policy = answer["headers"]["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}">' in page
    assert "connect-src 'self' https: https://login.example.com" in policy
    config = json.loads(
        re.search(r'<script type="application/json" id="cvpn-config">(.*?)</script>', page, re.S)[1]
    )
    assert config == {
        "issuer": "https://login.example.com/oauth2/default",
        "clientId": "form-client",
        "scope": "openid email profile",
    }
    assert "{{" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert (
        re.search(r"<(script|link|img)[^>]+(src|href)=\"https?://", page) is None
    )  # nothing from the internet
    assert answer["headers"]["Referrer-Policy"] == "no-referrer"
