"""The request API under whatever a caller sends: never a 5xx, never an unhandled exception, and a
refused call starts nothing, holds no client CIDR block and records no submission.

The handler is the deployed one (Powertools routing, payload format 2.0); its data access is in
memory with the same semantics as the tables. Each example starts from empty stores.
"""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvpn_shared.access.cidr_pool import CidrPool
from cvpn_shared.access.form import REQUESTER_CLAIMS, FormServices
from cvpn_shared.access.profiles import parse_profile
from tests.fixtures.handlers import LambdaContext, load_handler_module

from .conftest import GROUP_ENGINEERING, GROUP_FINANCE, PROFILE_DOCUMENT
from .test_cidr_pool import MemoryAllocations
from .test_form import Catalog, Executions, Network, Starter, Submissions

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

SEEDED = "REQ-SEEDED"
SEEDED_ARN = f"arn:aws:states:us-east-1:123456789012:execution:intake:{SEEDED}"
OWNER = "ada@example.com"
ISSUER = "https://issuer.example"
OWNER_CLAIMS = {"iss": ISSUER, "sub": "sub-ada", "email": OWNER}


# Validated once: the profile is frozen, so every example can share it (the stores stay per example).
PROFILES = Catalog(parse_profile("engineering", dict(PROFILE_DOCUMENT)))


class World:
    """What one example runs against: fresh stores, and a request of OWNER's that is still running."""

    def __init__(self) -> None:
        self.starter = Starter()
        self.services = FormServices(
            profiles=PROFILES,
            allocations=MemoryAllocations(),
            submissions=Submissions(),
            network=Network(),
            start=self.starter,
        )
        self.services.submissions.put(
            {
                "request_id": SEEDED,
                "requester": OWNER,
                "requester_issuer": ISSUER,
                "requester_sub": "sub-ada",
                "source": "request-form",
                "execution_arn": SEEDED_ARN,
            }
        )
        self.executions = Executions({"status": "RUNNING"})
        self.executions.described[SEEDED_ARN] = {"status": "RUNNING"}
        self.executions.histories[SEEDED_ARN] = [{"stateEnteredEventDetails": {"name": "RequestApproval"}}]
        self.ids = iter(f"REQ-{n:04d}" for n in range(1000))

    def written(self) -> tuple[int, int, int]:
        """Executions started, blocks held, submissions recorded (beyond the seeded one)."""
        allocations = self.services.allocations
        assert isinstance(allocations, MemoryAllocations)
        return len(self.starter.started), len(allocations.held), len(self.services.submissions.items) - 1


@pytest.fixture
def module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # Powertools reads the metrics namespace when the handler first imports it.
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    module = load_handler_module("access/request_api")
    # No log lines while the fuzz test runs (a thousand formatted for stdout and pytest's report);
    # a failure to log is never raised, so nothing the test checks is hidden.
    monkeypatch.setattr(module.logger._logger, "disabled", True)
    return module


@pytest.fixture
def world(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[World]:
    """The handler wired to the current World (a fresh one per example: ``holder[0] = World()``)."""
    holder = [World()]
    monkeypatch.setattr(module, "form_services", lambda: holder[0].services)
    monkeypatch.setattr(module, "form_submissions", lambda: holder[0].services.submissions)
    monkeypatch.setattr(module, "client_cidr_allocations", lambda: holder[0].services.allocations)
    monkeypatch.setattr(module, "client_cidr_pool", lambda: CidrPool.parse("172.16.0.0/16", 22))
    monkeypatch.setattr(module, "step_functions_executions", lambda: holder[0].executions)
    monkeypatch.setattr(module, "configuration_store", lambda: None)
    monkeypatch.setattr(module, "_new_request_id", lambda: next(holder[0].ids))
    return holder


# ------------------------------------------------------------------------------------- strategies
_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
_json = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=5,
)
_groups = st.lists(
    st.sampled_from([GROUP_ENGINEERING, GROUP_FINANCE, "", " ", "S-1-5-21-0", "x" * 300]), max_size=22
)
_form = st.fixed_dictionaries(
    {},
    optional={
        "profile": st.one_of(st.sampled_from(["engineering", "Engineering", "nope", "", "../x"]), _json),
        "access_groups": st.one_of(_groups, _json),
        "justification": st.one_of(
            st.sampled_from(["On-call for the build farm", "short", " " * 20, "j" * 501]),
            st.text(max_size=30),
        ),
        "requester": st.text(max_size=20),
        "extra": _json,
    },
)
_valid_form = st.builds(
    lambda groups: {"profile": "engineering", "access_groups": groups, "justification": "On-call this week"},
    st.lists(st.sampled_from([GROUP_ENGINEERING, GROUP_FINANCE]), min_size=1, max_size=2, unique=True),
)
_body = st.one_of(
    st.none(),
    st.text(max_size=60),
    _json.map(json.dumps),
    _form.map(json.dumps),
    _valid_form.map(json.dumps),
)
_claims = st.one_of(
    st.just({}),
    st.just({"email": OWNER}),
    st.just(OWNER_CLAIMS),
    # someone else's token claiming the owner's (verified) e-mail
    st.just({"iss": ISSUER, "sub": "sub-eve", "email": OWNER, "email_verified": "true"}),
    st.dictionaries(
        st.sampled_from([*REQUESTER_CLAIMS, "iss", "sub", "email_verified", "scope"]),
        st.one_of(st.text(max_size=30), st.sampled_from([ISSUER, "sub-ada", OWNER, "true"])),
        max_size=5,
    ),
)
_segment = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#"), min_size=1, max_size=20
)
_path = st.one_of(
    st.sampled_from(["/profiles", "/requests", f"/requests/{SEEDED}", "/requests/", "/", "/profiles/x"]),
    _segment.map(lambda s: f"/requests/{s}"),
    st.lists(_segment, min_size=1, max_size=2).map(lambda parts: "/" + "/".join(parts)),
)
_method = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])


def _event(method: str, path: str, body: str | None, b64: bool, claims: dict[str, str]) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
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
                "userAgent": "fuzz",
            },
            "requestId": "r1",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "28/Nov/2026:10:00:00 +0000",
            "timeEpoch": 0,
            "authorizer": {"jwt": {"claims": claims, "scopes": None}},
        },
        "isBase64Encoded": b64,
    }
    if path.startswith("/requests/"):
        event["pathParameters"] = {"id": path.split("/", 2)[2]}
    if body is not None:
        event["body"] = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode() if b64 else body
    return event


@settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(method=_method, path=_path, body=_body, b64=st.booleans(), claims=_claims)
def test_the_request_api_answers_every_call_without_a_5xx_and_refusals_write_nothing(
    module: ModuleType,
    world: list[World],
    method: str,
    path: str,
    body: str | None,
    b64: bool,
    claims: dict[str, str],
) -> None:
    current = world[0] = World()

    answer = module.lambda_handler(_event(method, path, body, b64, claims), LambdaContext("request-api"))

    status = answer["statusCode"]
    assert 200 <= status < 500, answer
    payload = json.loads(answer["body"])
    assert isinstance(payload, dict)
    if status == 202:
        assert (method, path) == ("POST", "/requests")
        assert current.written() == (1, 1, 1)
        assert payload["request_id"] in current.services.submissions.items
    else:
        assert current.written() == (0, 0, 0), (status, payload)
    if status == 422:
        assert payload["errors"] and all(error["field"] and error["message"] for error in payload["errors"])
    if status == 200 and path == f"/requests/{SEEDED}":
        # nobody else sees OWNER's request, whatever e-mail their token claims
        assert (claims.get("iss"), claims.get("sub")) == (ISSUER, "sub-ada")
