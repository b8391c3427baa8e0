"""Ticket webhooks end to end: POST /webhooks/{source} through the local gateway, the intake workflow,
the real provisioning state machine, and the result posted back to the ticket system."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import pytest

from cvpn_shared.access.signatures import SignatureScheme, SigningSecrets, sign, verify_signature
from tests.access.e2e.conftest import CALLBACK_SIGNING_SECRET, PREVIOUS_SECRETS, SECRETS, WEBHOOKS, Intake


def _ticket_key() -> str:
    return f"NET-{uuid.uuid4().hex[:6].upper()}"


def test_signed_jira_webhook_provisions_an_endpoint_and_comments_on_the_ticket(intake: Intake) -> None:
    """Given a pre-approved Jira source, when Jira delivers a signed issue-updated webhook, the API answers
    202 with the request id and execution, and no status URL Jira could not read; the endpoint is
    provisioned from the mapped custom fields; and the ticket gets a comment (Basic auth, Atlassian
    Document Format) naming the endpoint."""
    key = _ticket_key()
    body, headers = intake.jira_delivery(key)
    status, answer = intake.post_webhook("jira", body, headers)
    assert status == 202, answer
    assert answer["request_id"] == key
    assert "status_url" not in answer
    assert answer["execution_arn"].endswith(f":execution:{intake.intake_arn.split(':')[-1]}:jira-{key}")

    assert intake.wait_status(answer["execution_arn"], {"SUCCEEDED", "FAILED"}) == "SUCCEEDED"
    progress = intake.progress(answer["execution_arn"])
    assert "RequestApproval" not in progress.steps
    endpoint_id = progress.output["provisioning"]["output"]["result"]["endpoint_id"]
    [endpoint] = intake.endpoints_for(key)
    assert endpoint["ClientVpnEndpointId"] == endpoint_id
    assert endpoint["ClientCidrBlock"] == "172.20.0.0/22"  # customfield_10051
    rules = intake.cloud.client("ec2").describe_client_vpn_authorization_rules(
        ClientVpnEndpointId=endpoint_id
    )
    assert [r["GroupId"] for r in rules["AuthorizationRules"]] == [
        "S-1-5-21-1004336348-1177238915-682003330-1105"
    ]

    [comment] = intake.tickets.callbacks_for(f"/rest/api/3/issue/{key}/comment")
    assert comment["headers"]["authorization"].startswith("Basic ")
    document = json.loads(comment["body"])["body"]
    text = document["content"][0]["content"][0]["text"]
    assert endpoint_id in text and key in text


def test_the_tickets_reporter_follows_the_request_at_its_status_url(intake: Intake) -> None:
    """Given a signed Jira delivery that started a request (202), when the ticket's reporter signs in
    to the request API (a token from the local cloud's issuer) and follows GET /requests/<ticket key>,
    the request goes on to ``available`` with a link to the configuration; to another
    signed-in person (here the delivery's author) the same URL answers 404."""
    key = _ticket_key()
    body, headers = intake.jira_delivery(key)
    status, answer = intake.post_webhook("jira", body, headers)
    assert status == 202, answer
    status_url = f"/requests/{key}"
    reporter = intake.token_for("grace.hopper@example.com")  # issue.fields.reporter.emailAddress

    deadline = time.monotonic() + 90
    while True:
        status, progress = intake.get_status(status_url, reporter)
        assert status == 200, progress
        if progress["status"] not in ("awaiting-approval", "in-progress") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert progress["status"] == "available", progress
    assert (progress["request_id"], progress["source"], progress["ticket_key"]) == (key, "jira", key)
    assert "Provision" in progress["steps"] and "CreateEndpoint" in progress["steps"]
    [endpoint] = intake.endpoints_for(key)
    assert progress["endpoint_id"] == endpoint["ClientVpnEndpointId"]
    with urllib.request.urlopen(progress["config_url"], timeout=30) as download:
        configuration = download.read().decode()
    assert "remote " in configuration and "client" in configuration

    other = intake.token_for("ada.lovelace@example.com")
    status, hidden = intake.get_status(status_url, other)
    assert (status, hidden) == (404, {"message": f"no request {key} of yours"})


def test_duplicate_delivery_starts_nothing(intake: Intake) -> None:
    """A retried delivery (same X-Atlassian-Webhook-Identifier) gets 200 with the original execution and
    starts nothing; so does a new delivery about the same ticket (the ticket was started)."""
    key = _ticket_key()
    body, headers = intake.jira_delivery(key)
    status, first = intake.post_webhook("jira", body, headers)
    assert status == 202, first
    started = len(intake.executions())

    status, again = intake.post_webhook("jira", body, {**headers, "X-Atlassian-Webhook-Retry": "1"})
    assert status == 200, again
    assert {name: again[name] for name in first} == first and again["duplicate"] is True

    other_body, other_headers = intake.jira_delivery(key)  # a new delivery id, same ticket
    status, same_ticket = intake.post_webhook("jira", other_body, other_headers)
    assert status == 200, same_ticket
    assert same_ticket["execution_arn"] == first["execution_arn"]
    assert same_ticket["duplicate"] is True
    assert len(intake.executions()) == started
    intake.wait_status(first["execution_arn"], {"SUCCEEDED", "FAILED"})


@pytest.mark.parametrize(
    "tamper",
    ["body changed after signing", "signed with another secret", "no signature header"],
)
def test_bad_signature_is_401_and_starts_nothing(intake: Intake, tamper: str) -> None:
    """A delivery whose signature does not prove the body came from Jira is refused with 401 naming the
    header, and no execution starts."""
    key = _ticket_key()
    body, headers = intake.jira_delivery(key)
    if tamper == "body changed after signing":
        body = body.replace(b"172.20.0.0/22", b"172.21.0.0/22")
    elif tamper == "signed with another secret":
        body, headers = intake.jira_delivery(key, secret="not-the-secret")
    else:
        headers.pop("X-Hub-Signature")
    before = len(intake.executions())
    status, answer = intake.post_webhook("jira", body, headers)
    assert status == 401, answer
    assert "X-Hub-Signature" in answer["message"]
    assert len(intake.executions()) == before
    assert intake.endpoints_for(key) == []


def test_previous_secret_is_accepted_during_rotation(intake: Intake) -> None:
    """A sender still signing with the previous secret is accepted (202) while it is configured."""
    body, headers = intake.jira_delivery(_ticket_key(), secret=PREVIOUS_SECRETS["jira"])
    status, answer = intake.post_webhook("jira", body, headers)
    assert status == 202, answer
    intake.wait_status(answer["execution_arn"], {"SUCCEEDED", "FAILED"})


def test_bad_deliveries_get_4xx_naming_the_problem_and_start_nothing(intake: Intake) -> None:
    """Unknown source 404; signed non-JSON 400; a mapped request with a bad field 422 naming the field
    and the expression it came from; an oversize body 413. Nothing starts."""
    before = len(intake.executions())
    body, headers = intake.jira_delivery(_ticket_key())
    status, answer = intake.post_webhook("bitbucket", body, headers)
    assert (status, answer["message"]) == (404, "source: no webhook source named 'bitbucket' is configured")

    text = b"key=NET-1"
    status, answer = intake.post_webhook(
        "jira", text, sign(SignatureScheme.JIRA, text, SECRETS["jira"], timestamp=0)
    )
    assert status == 400 and answer["message"].startswith("body: not JSON")

    payload = json.loads((WEBHOOKS / "jira-issue-updated.json").read_text())
    payload["issue"]["key"] = _ticket_key()
    payload["issue"]["fields"]["customfield_10051"] = "172.20.0.0/33"
    bad = json.dumps(payload).encode()
    status, answer = intake.post_webhook(
        "jira", bad, sign(SignatureScheme.JIRA, bad, SECRETS["jira"], timestamp=0)
    )
    assert status == 422, answer
    [error] = answer["errors"]
    assert error["field"] == "client_cidr_block"
    assert error["mapped_from"] == "issue.fields.customfield_10051"
    assert "172.20.0.0/33" in error["message"]

    huge = json.dumps({"padding": "x" * 300_000}).encode()
    status, answer = intake.post_webhook(
        "jira", huge, sign(SignatureScheme.JIRA, huge, SECRETS["jira"], timestamp=0)
    )
    assert status == 413, answer
    assert len(intake.executions()) == before


def test_generic_source_posts_a_signed_json_result(intake: Intake) -> None:
    """A ServiceNow-style sender signs with the generic scheme (t=, v1=); the result goes back as JSON
    signed the same way, which the receiver can verify."""
    payload = json.loads((WEBHOOKS / "generic-servicenow.json").read_text())
    number = f"RITM{uuid.uuid4().int % 10**7:07d}"
    payload["ticket"]["number"] = number
    body = json.dumps(payload).encode()
    headers = sign(SignatureScheme.GENERIC, body, SECRETS["servicenow"], timestamp=int(time.time()))
    headers["X-Request-Id"] = str(uuid.uuid4())
    status, answer = intake.post_webhook("servicenow", body, headers)
    assert status == 202, answer
    assert intake.wait_status(answer["execution_arn"], {"SUCCEEDED", "FAILED"}) == "SUCCEEDED"

    [callback] = intake.tickets.callbacks_for(f"/api/x_cvpn/result/{number}")
    verify_signature(
        SignatureScheme.GENERIC,
        callback["headers"],
        callback["body"],
        SigningSecrets(CALLBACK_SIGNING_SECRET),
        now=time.time(),
    )
    result = json.loads(callback["body"])
    assert (result["request_id"], result["status"]) == (number, "SUCCEEDED")
    assert result["endpoint_id"] == intake.endpoints_for(number)[0]["ClientVpnEndpointId"]


def test_cvpn_request_submit_starts_a_request(
    intake: Intake, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line signs a payload file and sends it to the API; the request provisions."""
    from cvpn.cli import main as cvpn_main

    key = _ticket_key()
    payload = json.loads((WEBHOOKS / "jira-issue-updated.json").read_text())
    payload["issue"]["key"] = key
    path = tmp_path / "ticket.json"
    path.write_text(json.dumps(payload, indent=2))
    argv = [
        "request",
        "submit",
        str(path),
        "--source",
        "jira",
        "--secret",
        SECRETS["jira"],
        "--base-url",
        intake.api_url,
    ]
    assert cvpn_main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("HTTP 202")
    answer = json.loads(out.split("\n", 1)[1])
    assert intake.wait_status(answer["execution_arn"], {"SUCCEEDED", "FAILED"}) == "SUCCEEDED"
    assert len(intake.endpoints_for(key)) == 1


def test_a_reopened_ticket_starts_again_and_a_replay_of_either_does_not(intake: Intake) -> None:
    """A captured delivery replayed with a new delivery id starts nothing; the same ticket approved
    again after it was re-opened in Jira (a new change from ``Reopened``) starts a second run; that
    re-open replayed starts nothing."""
    key = _ticket_key()
    body, headers = intake.jira_delivery(key)
    status, first = intake.post_webhook("jira", body, headers)
    assert status == 202, first
    intake.wait_status(first["execution_arn"], {"SUCCEEDED", "FAILED"})
    replayed = {**headers, "X-Atlassian-Webhook-Identifier": str(uuid.uuid4())}
    assert intake.post_webhook("jira", body, replayed)[0] == 200

    payload = json.loads(body)
    payload["changelog"] = {
        "id": "20001",
        "items": [{"field": "status", "fromString": "Reopened", "toString": "Approved"}],
    }
    reopened = json.dumps(payload).encode()
    reopened_headers = sign(SignatureScheme.JIRA, reopened, SECRETS["jira"], timestamp=int(time.time()))
    reopened_headers["X-Atlassian-Webhook-Identifier"] = str(uuid.uuid4())
    status, second = intake.post_webhook("jira", reopened, reopened_headers)
    assert status == 202, second
    assert second["execution_arn"].endswith(f":jira-{key}_run2")
    reopened_headers["X-Atlassian-Webhook-Identifier"] = str(uuid.uuid4())
    status, again = intake.post_webhook("jira", reopened, reopened_headers)
    assert (status, again["execution_arn"]) == (200, second["execution_arn"])
    names = [e["name"] for e in intake.executions() if e["name"].startswith(f"jira-{key}")]
    assert sorted(names) == [f"jira-{key}", f"jira-{key}_run2"]
    intake.wait_status(second["execution_arn"], {"SUCCEEDED", "FAILED"})


def test_a_source_configured_after_a_404_works_at_once(intake: Intake) -> None:
    """An operator who tries a source before configuring it gets 404, configures it, and the very next
    delivery is accepted: the 404 is not remembered."""
    source = f"late-{uuid.uuid4().hex[:8]}"
    key = _ticket_key()
    body, headers = intake.jira_delivery(key, secret="late-secret")
    status, answer = intake.post_webhook(source, body, headers)
    assert status == 404, answer

    secret_id = f"{intake.stack.outputs['IntakeSecretsPrefix']}{source}"
    intake.cloud.client("secretsmanager").create_secret(
        Name=secret_id, SecretString=json.dumps({"current": "late-secret", "previous": ""})
    )
    jira = intake.cloud.client("ssm").get_parameter(
        Name=f"{intake.stack.outputs['IntakeSourcesParameterPath']}/jira"
    )["Parameter"]["Value"]
    config = {**json.loads(jira), "secret_id": secret_id, "callback": None}
    intake.cloud.client("ssm").put_parameter(
        Name=f"{intake.stack.outputs['IntakeSourcesParameterPath']}/{source}",
        Type="String",
        Value=json.dumps(config),
    )
    status, answer = intake.post_webhook(source, body, headers)
    assert status == 202, answer
    intake.wait_status(answer["execution_arn"], {"SUCCEEDED", "FAILED"})
