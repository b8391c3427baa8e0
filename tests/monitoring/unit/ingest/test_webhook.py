"""The chat webhook: its URL read from Secrets Manager or SSM (moto), Slack text and Teams Workflows
Adaptive Card messages (attacker-typed names escaped in both),
https only, and failures reported by name."""

from __future__ import annotations

import json
import re
import urllib.error
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn_shared.monitoring.alerting import (
    AlertChannels,
    FindingDeliveryIncomplete,
    ResponsePolicy,
    deliver_finding,
)
from cvpn_shared.monitoring.dal import alert_channels
from cvpn_shared.monitoring.dal.alert_channels import ChatWebhook, WebhookDeliveryFailed, WebhookUrl
from cvpn_shared.monitoring.findings import Finding
from tests.fixtures.webhook_receiver import WebhookReceiver
from tests.monitoring.unit.ingest.test_delivery import NOW, EveryChannel, MemoryBlocklist, Recorder, finding


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def test_the_url_comes_from_a_secret_or_a_secure_parameter(aws: None) -> None:
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    ssm = boto3.client("ssm", region_name="us-east-1")
    plain = secrets.create_secret(Name="plain", SecretString="https://hooks.slack.com/services/T/B/x")["ARN"]
    as_json = secrets.create_secret(
        Name="json", SecretString=json.dumps({"url": "https://example.webhook/y"})
    )
    ssm.put_parameter(Name="/alerts/webhook", Value="https://example.webhook/z", Type="SecureString")

    assert WebhookUrl(secrets, None, secret_arn=plain, parameter="").get().endswith("/T/B/x")
    assert WebhookUrl(secrets, None, secret_arn=as_json["ARN"], parameter="").get().endswith("/y")
    assert WebhookUrl(None, ssm, secret_arn="", parameter="/alerts/webhook").get().endswith("/z")
    assert not WebhookUrl(None, None, secret_arn="", parameter="").configured


class Parameters:
    """SSM GetParameter answering one SecureString."""

    def __init__(self, value: str) -> None:
        self.value = value

    def get_parameter(self, Name: str, WithDecryption: bool) -> dict[str, Any]:
        assert WithDecryption
        return {"Parameter": {"Name": Name, "Value": self.value}}


def webhook_at(url: str) -> ChatWebhook:
    return ChatWebhook(WebhookUrl(None, Parameters(url), secret_arn="", parameter="/alerts/webhook"))


class Posted:
    def __init__(self) -> None:
        self.requests: list[Any] = []

    def __call__(self, request: Any, timeout: float) -> Any:
        self.requests.append(request)

        class Answer:
            status = 200

            def __enter__(self) -> Answer:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

        return Answer()


def post_finding(alert: Finding, style: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """Deliver ``alert`` to a webhook of ``style`` at https://hooks.example.com/abc; (the delivery's
    report, the one request posted)."""
    posted = Posted()
    monkeypatch.setattr(alert_channels, "open_url", posted)
    channels = AlertChannels(
        findings=Recorder(),
        topic=Recorder(),
        blocklist=MemoryBlocklist(),
        webhook=webhook_at("https://hooks.example.com/abc"),
        webhook_format=style,  # type: ignore[arg-type]
    )
    report = deliver_finding(alert, channels, ResponsePolicy(), now=NOW)
    (request,) = posted.requests
    return report, request


def test_a_finding_is_posted_to_slack_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a configured Slack webhook, when a finding is delivered, then one JSON POST goes to the
    URL: Slack's ``text``, the subject in bold."""
    report, request = post_finding(finding("HIGH"), "slack", monkeypatch)

    assert report.webhook_status == 200
    assert request.full_url == "https://hooks.example.com/abc" and request.get_method() == "POST"
    assert request.get_header("Content-type") == "application/json"
    assert json.loads(request.data)["text"].startswith("*[HIGH] Client VPN: Password spray")


def adaptive_card_message(card_body: list[dict[str, Any]], **card: Any) -> dict[str, Any]:
    """The message a Teams Workflows webhook takes: one Adaptive Card 1.4 attachment."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": card_body,
                    **card,
                },
            }
        ],
    }


def test_a_finding_is_posted_to_a_teams_workflow_as_an_adaptive_card(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a Teams Workflows webhook (format teams), when a finding with a runbook is delivered,
    then one JSON POST carries a message with one Adaptive Card: the subject as a bold title, the
    finding's facts (the log's "NA" common name left out), and the runbook as an Action.OpenUrl; no
    legacy MessageCard."""
    alert = finding(
        "HIGH",
        first_seen="2026-11-28T11:50:00Z",
        last_seen="2026-11-28T11:55:00Z",
        failure_reasons=["Authentication failed"],
        runbook_url="https://wiki.example.com/runbooks/client-vpn",
    )

    report, request = post_finding(alert, "teams", monkeypatch)

    assert report.webhook_status == 200
    assert request.full_url == "https://hooks.example.com/abc" and request.get_method() == "POST"
    facts = [
        ("Endpoint", "cvpn-endpoint-0123456789abcdef0"),
        ("Severity", "HIGH"),
        ("Rule", "R4"),
        ("Finding", "a" * 64),
        ("Device IP", "198.51.100.66"),
        ("User", "Mallory"),
        ("When", "2026-11-28T11:50:00.000Z .. 2026-11-28T11:55:00.000Z"),
        ("Counts", "distinct\\_ips 1, distinct\\_users 6, failures 12"),
        ("Failure reasons", "Authentication failed"),
    ]
    assert json.loads(request.data) == adaptive_card_message(
        [
            {
                "type": "TextBlock",
                "text": "\\[HIGH\\] Client VPN: Password spray from one source "
                "\\(source 198.51.100.66, user Mallory\\)",
                "weight": "Bolder",
                "wrap": True,
            },
            {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in facts]},
        ],
        actions=[
            {
                "type": "Action.OpenUrl",
                "title": "Open the runbook",
                "url": "https://wiki.example.com/runbooks/client-vpn",
            }
        ],
    )


def test_a_user_name_an_attacker_typed_makes_no_link_and_no_emphasis_in_teams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a finding about the user name ``[click](https://evil.example) **bold** <at>all</at>``,
    two line breaks and ``# big``, with the certificate common name ``_x_ `code` \\ ~y~`` (failed
    logins carry whatever was typed), when posted to Teams, then every character Adaptive Card
    markdown would act on arrives escaped with a backslash (so the card shows the name as typed: no
    link, no bold, no mention), a line break arrives as its escape ``\\x0a`` (one line, and the card
    shows that the name held one), and the card has no action (no runbook)."""
    name = "[click](https://evil.example) **bold** <at>all</at>\n\n# big"
    common_name = "_x_ `code` \\ ~y~"
    alert = finding(
        "HIGH",
        rule_id="R3",
        title=f"Distributed attack on one user: {name}",
        entity={"device_ip": None, "username": name, "common_name": common_name},
    )

    _, request = post_finding(alert, "teams", monkeypatch)

    card = json.loads(request.data)["attachments"][0]["content"]
    title = card["body"][0]["text"]
    facts = {fact["title"]: fact["value"] for fact in card["body"][1]["facts"]}
    escaped = (
        "\\[click\\]\\(https://evil.example\\) \\*\\*bold\\*\\* \\<at\\>all\\</at\\>\\\\x0a\\\\x0a\\# big"
    )
    assert facts["User"] == escaped
    assert facts["Common name"] == "\\_x\\_ \\`code\\` \\\\ \\~y\\~"
    assert title == f"\\[HIGH\\] Client VPN: Distributed attack on one user: {escaped} \\(user {escaped}\\)"
    assert "actions" not in card
    for text in (title, *facts.values()):
        unescaped = re.sub(r"\\.", "", text)  # what is left once every escaped pair is taken out
        assert not set(unescaped) & set("[]()*_`<>#~\\\n")


def test_a_user_name_an_attacker_typed_cannot_mention_the_channel_in_slack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a finding about the user name ``<!channel> & <https://evil.example|login>`` (failed
    logins carry whatever name was typed), when posted to Slack, then ``&``, ``<`` and ``>`` arrive as
    Slack's entities: no @channel mention, no link; the subject is still bold."""
    name = "<!channel> & <https://evil.example|login>"
    alert = finding(
        "HIGH",
        rule_id="R3",
        title=f"Distributed attack on one user: {name}",
        entity={"device_ip": None, "username": name, "common_name": "NA"},
    )

    _, request = post_finding(alert, "slack", monkeypatch)

    text = json.loads(request.data)["text"]
    escaped = "&lt;!channel&gt; &amp; &lt;https://evil.example|login&gt;"
    assert text.startswith(
        f"*[HIGH] Client VPN: Distributed attack on one user: {escaped} (user {escaped})*\n"
    )
    assert f"who: user {escaped}" in text
    assert "<" not in text and ">" not in text


def test_only_https_urls_are_posted_to() -> None:
    with pytest.raises(WebhookDeliveryFailed, match="https"):
        webhook_at("http://hooks.example.com/abc").post({"text": "x"})


def test_an_unreachable_webhook_is_a_named_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: Any, timeout: float) -> Any:
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(alert_channels, "open_url", refuse)
    with pytest.raises(WebhookDeliveryFailed, match="refused"):
        webhook_at("https://hooks.example.com/abc").post({"text": "x"})


def test_a_webhook_answering_a_redirect_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a webhook (HTTPS on 127.0.0.1) that answers 302 to another URL, when a message is posted,
    then nothing is posted to that URL and the failure names the redirect."""
    with WebhookReceiver(tmp_path / "receiver") as receiver:
        monkeypatch.setenv("SSL_CERT_FILE", str(receiver.ca_file))
        receiver.answer(302, location=receiver.url("/elsewhere"))
        with pytest.raises(WebhookDeliveryFailed, match=r"302 .*redirect.*not followed"):
            webhook_at(receiver.url("/services/T0/B0/secret")).post({"text": "x"})
        receiver.answer(200)
        assert webhook_at(receiver.url("/services/T0/B0/secret")).post({"text": "y"}) == 200
        assert [post.path for post in receiver.received()] == ["/services/T0/B0/secret"] * 2


class CountingParameters(Parameters):
    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.reads = 0

    def get_parameter(self, Name: str, WithDecryption: bool) -> dict[str, Any]:
        self.reads += 1
        return super().get_parameter(Name, WithDecryption)


def test_the_url_is_read_once_and_again_after_a_failed_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rotated webhook URL is picked up by the retry of a failed delivery, not only by a new worker."""
    parameters = CountingParameters("https://hooks.example.com/old")
    webhook = ChatWebhook(WebhookUrl(None, parameters, secret_arn="", parameter="/alerts/webhook"))
    posted = Posted()
    monkeypatch.setattr(alert_channels, "open_url", posted)
    webhook.post({"text": "a"})
    webhook.post({"text": "b"})
    assert parameters.reads == 1

    def gone(request: Any, timeout: float) -> Any:
        raise urllib.error.HTTPError(request.full_url, 404, "Not Found", Message(), None)

    monkeypatch.setattr(alert_channels, "open_url", gone)
    with pytest.raises(WebhookDeliveryFailed, match="404"):
        webhook.post({"text": "c"})
    parameters.value = "https://hooks.example.com/new"
    monkeypatch.setattr(alert_channels, "open_url", posted)
    webhook.post({"text": "c"})
    assert parameters.reads == 2
    assert [request.full_url for request in posted.requests][-1] == "https://hooks.example.com/new"


def test_a_webhook_answering_500_costs_neither_security_hub_nor_the_session_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a webhook answering 500, when a HIGH finding is delivered with the alerts topic, Security
    Hub and session termination on, then all three still do their work, and the delivery fails
    afterwards naming the webhook and its status (Lambda retries it)."""

    def answer_500(request: Any, timeout: float) -> Any:
        raise urllib.error.HTTPError(request.full_url, 500, "Internal Server Error", Message(), None)

    monkeypatch.setattr(alert_channels, "open_url", answer_500)
    everything = EveryChannel()

    with pytest.raises(FindingDeliveryIncomplete, match="webhook: WebhookDeliveryFailed: HTTP Error 500"):
        everything.deliver_high_finding(webhook=webhook_at("https://hooks.example.com/abc"))

    assert everything.done == ["alerts topic", "security hub", "sessions"]
