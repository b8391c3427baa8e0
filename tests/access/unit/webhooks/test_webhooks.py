"""The webhook intake's answers: 202 started, 200 duplicate or ignored, 401/400/404/409/413/422 with the
reason; nothing starts on any error; a started request is recorded for its requester to follow; fuzzed
bodies and headers never get a 5xx."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from cvpn_shared.access.dal.form_store import FormSubmissions
from cvpn_shared.access.form import request_status
from cvpn_shared.access.identity import Person
from cvpn_shared.access.signatures import SignatureScheme, sign

from .conftest import NOW, SECRETS, Harness, example_payload, source_config


def _receive(
    harness: Harness, source: str, body: bytes | str | None, headers: dict[str, str], b64: bool = False
):
    return harness.intake.receive(source, headers, body, is_base64_encoded=b64)


def test_a_signed_delivery_starts_the_intake(harness: Harness) -> None:
    body, headers = harness.signed("jira")
    answer = _receive(harness, "jira", body.decode(), headers)
    assert answer.status == 202, answer
    assert answer.body == {
        "request_id": "NET-2001",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:cvpn-intake-request:jira-NET-2001",
        "result": "posted to the ticket when the request ends",
    }
    assert answer.headers == {}
    started = harness.starter.started["jira-NET-2001"]
    assert started["approval_required"] is False
    assert started["callback"]["url"] == "https://example.atlassian.net/rest/api/3/issue/NET-2001/comment"
    assert started["request"]["client_cidr_block"] == "172.20.0.0/22"


def test_a_source_needing_approval_says_so(harness: Harness) -> None:
    body, headers = harness.signed("github")
    assert _receive(harness, "github", body, headers).status == 202
    assert harness.starter.started["github-GH-42"]["approval_required"] is True


def test_a_retried_delivery_gets_the_original_and_starts_nothing(harness: Harness) -> None:
    body, headers = harness.signed("jira")
    first = _receive(harness, "jira", body, headers)
    again = _receive(harness, "jira", body, {**headers, "X-Atlassian-Webhook-Retry": "1"})
    assert (again.status, again.outcome) == (200, "already-started")
    assert again.body == {**first.body, "duplicate": True, "message": again.body["message"]}
    assert "re-opened" in again.body["message"]
    assert len(harness.starter.started) == 1


def test_a_new_delivery_for_a_started_ticket_is_a_duplicate(harness: Harness) -> None:
    body, headers = harness.signed("jira")
    _receive(harness, "jira", body, headers)
    answer = _receive(harness, "jira", body, {**headers, "X-Atlassian-Webhook-Identifier": "delivery-2"})
    assert (answer.status, answer.body["duplicate"]) == (200, True)
    assert len(harness.starter.started) == 1


def test_a_delivery_seen_after_its_ttl_still_starts_nothing(harness: Harness) -> None:
    """Expired delivery claims count as absent (DynamoDB deletes them lazily), and the execution name
    is free again 90 days after it closed: the permanent ticket record still refuses the replay."""
    body, headers = harness.signed("servicenow")
    _receive(harness, "servicenow", body, {**headers, "X-Request-Id": "r-1"})
    [key] = harness.deliveries.items
    harness.deliveries.items[key]["expires_at"] = int(NOW) - 1
    harness.starter.started.clear()  # the execution name is free again
    answer = _receive(harness, "servicenow", body, {**headers, "X-Request-Id": "r-1"})
    assert (answer.status, answer.outcome) == (200, "already-started")
    assert harness.starter.started == {}


def test_the_delivery_is_remembered_for_the_configured_days(harness: Harness) -> None:
    body, headers = harness.signed("jira")
    _receive(harness, "jira", body, headers)
    assert harness.deliveries.items["jira#delivery-1"]["expires_at"] == int(NOW) + 7 * 86400


@pytest.mark.parametrize("source", ["jira", "github", "servicenow", "slack"])
def test_a_bad_signature_is_401_and_starts_nothing(harness: Harness, source: str) -> None:
    body, headers = harness.signed(source, secret="wrong")
    answer = _receive(harness, source, body, headers)
    assert (answer.status, answer.outcome) == (401, "bad-signature")
    assert "does not match the body" in answer.body["message"]
    assert harness.starter.started == {} and harness.deliveries.items == {}


@pytest.mark.parametrize("secret", [None, {}, {"current": ""}, {"previous": "x"}, {"current": 7}])
def test_a_source_without_a_secret_refuses_everything(harness: Harness, secret: Any) -> None:
    """Fail closed: a missing secret (or one without a current value) is never a pass."""
    if secret is None:
        del harness.secrets.values["intake/jira"]
    else:
        harness.secrets.values["intake/jira"] = secret
    body, headers = harness.signed("jira", secret="")
    answer = _receive(harness, "jira", body, headers)
    assert (answer.status, answer.outcome) == (401, "no-secret")
    assert harness.starter.started == {}


def test_a_secret_rotated_since_it_was_cached_is_read_again(harness: Harness) -> None:
    """The cache still holds the old secret; the sender already signs with the new one."""
    harness.secrets.values["intake/jira"] = {"current": "brand-new", "previous": "jira-current"}
    harness.secrets.stale["intake/jira"] = {"current": "jira-current", "previous": "jira-previous"}
    body, headers = harness.signed("jira", secret="brand-new")
    assert _receive(harness, "jira", body, headers).status == 202
    assert harness.secrets.refreshes == 1


def test_the_previous_secret_is_accepted(harness: Harness) -> None:
    body, headers = harness.signed("jira", secret="jira-previous")
    assert _receive(harness, "jira", body, headers).status == 202


def test_lower_cased_headers_and_base64_bodies(harness: Harness) -> None:
    """API Gateway lower-cases header names and base64-encodes bodies it does not treat as text."""
    body, headers = harness.signed("jira")
    lowered = {name.lower(): value for name, value in headers.items()}
    answer = _receive(harness, "jira", base64.b64encode(body).decode(), lowered, b64=True)
    assert answer.status == 202, answer


def test_bad_base64_is_400(harness: Harness) -> None:
    _, headers = harness.signed("jira")
    answer = _receive(harness, "jira", "not base64 !", headers, b64=True)
    assert answer.status == 400
    assert answer.body["message"] == "body: isBase64Encoded is true but the body is not base64"


@pytest.mark.parametrize("b64", [False, True])
def test_an_oversize_body_is_413_before_anything_is_read(harness: Harness, b64: bool) -> None:
    body = json.dumps({"padding": "x" * 70_000}).encode()
    headers = sign(SignatureScheme.JIRA, body, SECRETS["jira"]["current"], timestamp=0)
    answer = _receive(
        harness, "jira", base64.b64encode(body).decode() if b64 else body.decode(), headers, b64
    )
    assert (answer.status, answer.body["message"]) == (413, "body: larger than 65536 bytes")


@pytest.mark.parametrize("source", ["gitlab", "JIRA", "../jira", "", "x" * 40])
def test_an_unknown_source_is_404(harness: Harness, source: str) -> None:
    body, headers = harness.signed("jira")
    answer = _receive(harness, source, body, headers)
    assert answer.status == 404
    assert answer.body["message"].startswith("source: no webhook source named")


def test_a_broken_source_configuration_is_500_and_starts_nothing(harness: Harness) -> None:
    harness.sources.configs["jira"] = {**source_config("jira"), "approval": "maybe"}
    body, headers = harness.signed("jira")
    answer = _receive(harness, "jira", body, headers)
    assert answer.status == 500
    assert answer.body["message"] == "the configuration of source 'jira' is invalid"
    assert harness.starter.started == {}


def test_a_signed_body_that_is_not_json_is_400(harness: Harness) -> None:
    body, headers = harness.signed("jira", b"issue=NET-1")
    answer = _receive(harness, "jira", body, headers)
    assert answer.status == 400 and answer.body["message"].startswith("body: not JSON")


def test_a_payload_that_makes_no_valid_request_is_422_naming_each_field(harness: Harness) -> None:
    payload = example_payload("jira")
    payload["issue"]["fields"]["customfield_10051"] = "300.1.1.0/22"
    payload["issue"]["fields"]["customfield_10053"] = {"value": "sctp"}
    body, headers = harness.signed("jira", payload)
    answer = _receive(harness, "jira", body, headers)
    assert answer.status == 422
    assert answer.body["message"] == "the payload does not make a valid request"
    assert {error["field"] for error in answer.body["errors"]} == {"client_cidr_block", "transport_protocol"}
    assert harness.starter.started == {} and harness.deliveries.items == {}


def test_a_delivery_the_source_does_not_mean_as_a_request_is_ignored(harness: Harness) -> None:
    payload = example_payload("jira")
    payload["webhookEvent"] = "comment_created"
    body, headers = harness.signed("jira", payload)
    answer = _receive(harness, "jira", body, headers)
    assert (answer.status, answer.body["ignored"]) == (200, True)
    assert harness.starter.started == {}


def test_an_execution_name_taken_by_another_ticket_is_409(harness: Harness) -> None:
    """ "NET:1" and "NET-1" make the same execution name: the second is refused, not merged."""
    first = example_payload("jira")
    first["issue"]["key"] = "NET-1"
    body, headers = harness.signed("jira", first)
    assert _receive(harness, "jira", body, headers).status == 202
    second = example_payload("jira")
    second["issue"]["key"] = "NET:1"
    body, headers = harness.signed("jira", second)
    answer = _receive(harness, "jira", body, {**headers, "X-Atlassian-Webhook-Identifier": "delivery-2"})
    assert answer.status == 409
    assert answer.body["message"].startswith("request_id: 'NET:1' maps to the execution name 'jira-NET-1'")
    assert harness.deliveries.released == ["jira#delivery-2"]


def test_a_failed_start_releases_the_delivery_so_the_retry_starts_it(harness: Harness) -> None:
    body, headers = harness.signed("jira")
    harness.starter.fail_with = ConnectionError("Step Functions unreachable")
    with pytest.raises(ConnectionError):
        _receive(harness, "jira", body, headers)
    assert harness.deliveries.items == {}
    harness.starter.fail_with = None
    assert _receive(harness, "jira", body, headers).status == 202


# -------------------------------------------------------------------- recorded for GET /requests/{id}


def test_a_started_request_is_recorded_for_its_requester_to_follow(harness: Harness) -> None:
    """Given a signed Jira delivery, when it starts the intake, then the request is recorded where
    GET /requests/{id} looks: the ticket's reporter as requester, the source, the ticket key, the intake
    execution and the time; no profile, access groups or pool block (the CIDR came from the ticket)."""
    body, headers = harness.signed("jira")
    answer = _receive(harness, "jira", body, headers)
    assert answer.status == 202
    assert harness.submissions.items == {
        "NET-2001": {
            "request_id": "NET-2001",
            "requester": "grace.hopper@example.com",
            "source": "jira",
            "ticket_key": "NET-2001",
            "execution_arn": answer.body["execution_arn"],
            "status_url_path": "/requests/NET-2001",
            "submitted_at": datetime.fromtimestamp(NOW, UTC).isoformat(),
        }
    }


def test_duplicates_record_nothing_more(harness: Harness) -> None:
    """A retried delivery and a new delivery about a started ticket start nothing and record nothing."""
    body, headers = harness.signed("jira")
    _receive(harness, "jira", body, headers)
    recorded = dict(harness.submissions.items)
    harness.submissions.fail_with = AssertionError("a duplicate must not be recorded")
    assert _receive(harness, "jira", body, {**headers, "X-Atlassian-Webhook-Retry": "1"}).status == 200
    other = {**headers, "X-Atlassian-Webhook-Identifier": "delivery-2"}
    assert _receive(harness, "jira", body, other).status == 200
    assert harness.submissions.items == recorded


def test_nothing_is_recorded_when_nothing_starts(harness: Harness) -> None:
    body, headers = harness.signed("jira", secret="wrong")
    assert _receive(harness, "jira", body, headers).status == 401
    body, headers = harness.signed("jira")
    harness.starter.fail_with = ConnectionError("Step Functions unreachable")
    with pytest.raises(ConnectionError):
        _receive(harness, "jira", body, headers)
    assert harness.submissions.items == {}


def test_a_started_request_that_cannot_be_recorded_is_still_202_and_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The execution runs whatever happens to the record: a 5xx would only make the sender retry a
    delivery that is now a duplicate. The failure is logged with the request."""
    harness.submissions.fail_with = ConnectionError("DynamoDB unreachable")
    body, headers = harness.signed("jira")
    with caplog.at_level(logging.ERROR, logger="cvpn_shared.access.webhooks"):
        answer = _receive(harness, "jira", body, headers)
    assert answer.status == 202
    assert len(harness.starter.started) == 1
    assert "request NET-2001 started but not recorded" in caplog.text


def test_a_recorded_webhook_request_is_followed_by_its_requester_only(harness: Harness) -> None:
    """Recorded in the form's DynamoDB table (moto), the webhook's request is found by request_status for
    the ticket's reporter, and is not revealed to anyone else (the API answers 404)."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="request-form",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        submissions = FormSubmissions(dynamodb, "request-form")
        intake = dataclasses.replace(harness.intake, submissions=submissions)
        body, headers = harness.signed("jira")
        answer = intake.receive("jira", headers, body, is_base64_encoded=False)
        assert answer.status == 202
        executions = _OneRunningExecution(answer.body["execution_arn"])

        def status_for(email: str, verified: bool = True) -> dict[str, Any] | None:
            person = Person("https://issuer.example", f"sub-{email}", email, email, email_verified=verified)
            return request_status(
                "NET-2001",
                person=person,
                submissions=submissions,
                executions=executions,
                allocations=_NoPoolBlocks(),
                presign=lambda key, filename: f"https://bucket.example/{key}",
            )

        status = status_for("grace.hopper@example.com")
        assert status is not None
        assert status["status"] == "in-progress"
        assert (status["source"], status["ticket_key"]) == ("jira", "NET-2001")
        assert status_for("ada.lovelace@example.com") is None  # the delivery's author is not the reporter
        # A ticket names the requester by e-mail: only an e-mail the issuer verified reads it.
        assert status_for("grace.hopper@example.com", verified=False) is None


class _OneRunningExecution:
    def __init__(self, execution_arn: str) -> None:
        self.execution_arn = execution_arn

    def describe(self, execution_arn: str) -> dict[str, Any]:
        assert execution_arn == self.execution_arn
        return {"status": "RUNNING"}

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return [{"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Provision"}}]


class _NoPoolBlocks:
    def held_blocks(self) -> dict[Any, str]:
        return {}

    def claim(self, block: Any, *, request_id: str, details: dict[str, Any]) -> bool:
        raise AssertionError("a ticket's request holds no pool block")

    def release(self, block: Any, *, request_id: str) -> bool:
        raise AssertionError("a ticket's request holds no pool block")


# ------------------------------------------------------------------------------------------ fuzzing
_HEADER_NAMES = st.sampled_from(
    [
        "X-Hub-Signature",
        "x-hub-signature-256",
        "X-Signature",
        "X-Slack-Signature",
        "x-slack-request-timestamp",
        "X-Atlassian-Webhook-Identifier",
        "X-GitHub-Delivery",
        "Content-Type",
    ]
) | st.text(max_size=20)
_HEADER_VALUES = (
    st.text(max_size=120)
    | st.builds(lambda h: f"sha256={h}", st.text("0123456789abcdefABCDEF", min_size=60, max_size=66))
    | st.builds(lambda t, h: f"t={t},v1={h}", st.integers(0, 2**40), st.text("0123456789abcdef", max_size=70))
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FUZZ
@given(
    source=st.sampled_from(["jira", "github", "servicenow", "slack", "unknown", ""]) | st.text(max_size=12),
    body=st.binary(max_size=2048) | st.text(max_size=2048),
    headers=st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=6),
    b64=st.booleans(),
)
def test_fuzzed_unsigned_deliveries_never_get_a_5xx_nor_start(
    harness: Harness, source: str, body: bytes | str, headers: dict[str, str], b64: bool
) -> None:
    answer = _receive(harness, source, body, headers, b64)
    assert 400 <= answer.status < 500, answer
    assert harness.starter.started == {}


@_FUZZ
@given(payload=_JSON, source=st.sampled_from(["jira", "github", "servicenow", "slack"]), b64=st.booleans())
def test_fuzzed_signed_payloads_never_get_a_5xx(
    harness: Harness, payload: Any, source: str, b64: bool
) -> None:
    """Correctly signed, arbitrary JSON: answered 200 (ignored), 400 or 422, never 5xx."""
    body, headers = harness.signed(source, json.dumps(payload).encode())
    sent: str = base64.b64encode(body).decode() if b64 else body.decode()
    answer = _receive(harness, source, sent, headers, b64)
    assert answer.status in (200, 400, 422), answer


@_FUZZ
@given(
    field=st.sampled_from(
        [
            "customfield_10050",
            "customfield_10051",
            "customfield_10052",
            "customfield_10053",
            "customfield_10054",
            "reporter",
            "summary",
            "status",
        ]
    ),
    value=_JSON,
    key=st.text(max_size=140) | st.integers() | st.none(),
)
def test_fuzzed_jira_fields_never_get_a_5xx(harness: Harness, field: str, value: Any, key: Any) -> None:
    """The example Jira payload with one field replaced by anything: a valid answer, never a crash."""
    payload = example_payload("jira")
    payload["issue"]["fields"][field] = value
    payload["issue"]["key"] = key
    body, headers = harness.signed("jira", payload)
    answer = _receive(harness, "jira", body, headers)
    assert answer.status in (200, 202, 400, 409, 422), answer
    if answer.status == 422:
        assert all(error["field"] and error["message"] for error in answer.body["errors"])
