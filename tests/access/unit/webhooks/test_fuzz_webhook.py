"""The webhook function's entry point (API Gateway payload 2.0 through the Powertools router) fuzzed
with arbitrary paths, headers, bodies and signatures: never a 5xx nor an unhandled exception, and a
refusal starts nothing and writes nothing (no delivery claim, no ticket record, no submission)."""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvpn_shared.access.signatures import SignatureScheme, sign
from tests.fixtures.handlers import LambdaContext, load_handler_module

from .conftest import NOW, SECRETS, Harness, example_payload, source_config

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SOURCES = ["jira", "github", "servicenow", "slack"]
HEADER_NAMES = st.sampled_from(
    [
        "X-Hub-Signature",
        "X-Hub-Signature-256",
        "X-Signature",
        "X-Slack-Signature",
        "X-Slack-Request-Timestamp",
        "X-Atlassian-Webhook-Identifier",
        "X-GitHub-Delivery",
        "X-Request-Id",
        "Content-Type",
    ]
) | st.text(min_size=1, max_size=30)
HEX = "0123456789abcdefABCDEF"
SIGNATURES = (
    st.text(max_size=200)
    | st.builds(lambda h: f"sha256={h}", st.text(HEX, min_size=60, max_size=68))
    | st.builds(lambda h: f"v0={h}", st.text(HEX, min_size=64, max_size=64))
    | st.builds(
        lambda t, hs: f"t={t}," + ",".join(f"v1={h}" for h in hs),
        st.integers(-(2**40), 2**64) | st.just(int(NOW)),
        st.lists(st.text(HEX, min_size=63, max_size=65), max_size=12),
    )
)
PATHS = st.sampled_from([*SOURCES, "unknown", "", "JIRA", "jira/../github", "a" * 33]) | st.text(max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture
def webhook(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "cvpn-autopilot")
    module = load_handler_module("access/webhook_intake")
    monkeypatch.setattr(module, "webhook_intake", lambda: harness.intake)
    return module


def _event(source: str, body: str | None, headers: dict[str, str], b64: bool) -> dict[str, Any]:
    path = f"/webhooks/{source}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "POST /webhooks/{source}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7"},
            "requestId": "id",
            "routeKey": "POST /webhooks/{source}",
            "stage": "$default",
        },
        "pathParameters": {"source": source},
        "isBase64Encoded": b64,
    }
    if body is not None:
        event["body"] = body
    return event


def _state(harness: Harness) -> tuple[int, ...]:
    """What a delivery may change: executions started, delivery claims, ticket writes, submissions
    (each only grows in the in-memory collaborators, so equal counts mean nothing was written)."""
    return (
        len(harness.starter.started),
        len(harness.deliveries.items),
        harness.tickets.writes,
        len(harness.submissions.items),
    )


def _call(module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    answer = dict(module.lambda_handler(event, LambdaContext("webhook")))
    assert answer["statusCode"] < 500, answer
    json.loads(answer["body"])  # always a JSON answer
    return answer


@FUZZ
@given(
    source=PATHS,
    body=st.none()
    | st.text(max_size=1500)
    | st.binary(max_size=1500).map(lambda b: base64.b64encode(b).decode()),
    headers=st.dictionaries(HEADER_NAMES, SIGNATURES, max_size=6),
    b64=st.booleans(),
)
def test_anything_unsigned_is_refused_with_a_4xx_and_changes_nothing(
    webhook: ModuleType, harness: Harness, source: str, body: str | None, headers: dict[str, str], b64: bool
) -> None:
    before = _state(harness)
    answer = _call(webhook, _event(source, body, headers, b64))
    assert 400 <= answer["statusCode"] < 500, answer
    assert _state(harness) == before


@FUZZ
@given(
    source=st.sampled_from(SOURCES),
    payload=JSON | st.builds(lambda s, v: {**example_payload(s), "issue": v}, st.sampled_from(SOURCES), JSON),
    extra_headers=st.dictionaries(HEADER_NAMES, st.text(max_size=80), max_size=3),
    b64=st.booleans(),
    skew=st.integers(-1000, 1000),
)
def test_signed_arbitrary_payloads_never_5xx_and_only_a_start_writes(
    webhook: ModuleType,
    harness: Harness,
    source: str,
    payload: Any,
    extra_headers: dict[str, str],
    b64: bool,
    skew: int,
) -> None:
    body = json.dumps(payload).encode()
    scheme = SignatureScheme(source_config(source)["signature"])
    headers = {**extra_headers, **sign(scheme, body, SECRETS[source]["current"], timestamp=int(NOW) + skew)}
    sent = base64.b64encode(body).decode() if b64 else body.decode()
    before = _state(harness)
    answer = _call(webhook, _event(source, sent, headers, b64))
    if answer["statusCode"] != 202:
        assert _state(harness) == before, answer
    if answer["statusCode"] == 401:
        assert abs(skew) > 300 and scheme in (SignatureScheme.SLACK, SignatureScheme.GENERIC)
