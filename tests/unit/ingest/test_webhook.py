"""The chat webhook: its URL read from Secrets Manager or SSM (moto), Slack and Teams message shapes,
https only, and failures reported by name."""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Iterator
from email.message import Message
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn_shared.dal import alert_channels
from cvpn_shared.dal.alert_channels import ChatWebhook, WebhookDeliveryFailed, WebhookUrl
from cvpn_shared.monitoring.alerting import (
    AlertChannels,
    FindingDeliveryIncomplete,
    ResponsePolicy,
    deliver_finding,
)
from tests.unit.ingest.test_delivery import NOW, EveryChannel, MemoryBlocklist, Recorder, finding


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


@pytest.mark.parametrize("style", ["slack", "teams"])
def test_a_finding_is_posted_in_the_webhooks_format(style: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a configured webhook, when a finding is delivered, then one JSON POST goes to the URL:
    Slack gets ``text``, Teams a MessageCard with the same subject."""
    posted = Posted()
    monkeypatch.setattr(alert_channels.urllib.request, "urlopen", posted)
    webhook = webhook_at("https://hooks.example.com/abc")
    channels = AlertChannels(
        findings=Recorder(),
        topic=Recorder(),
        blocklist=MemoryBlocklist(),
        webhook=webhook,
        webhook_format=style,  # type: ignore[arg-type]
    )

    report = deliver_finding(finding("HIGH"), channels, ResponsePolicy(), now=NOW)

    assert report.webhook_status == 200
    request = posted.requests[0]
    assert request.full_url == "https://hooks.example.com/abc" and request.get_method() == "POST"
    body = json.loads(request.data)
    if style == "slack":
        assert body["text"].startswith("*[HIGH] Client VPN: Password spray")
    else:
        assert body["@type"] == "MessageCard" and body["title"].startswith("[HIGH] Client VPN")


def test_a_user_name_an_attacker_typed_cannot_mention_the_channel_in_slack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a finding about the user name ``<!channel> & <https://evil.example|login>`` (failed
    logins carry whatever name was typed), when posted to Slack, then ``&``, ``<`` and ``>`` arrive as
    Slack's entities: no @channel mention, no link; the subject is still bold."""
    posted = Posted()
    monkeypatch.setattr(alert_channels.urllib.request, "urlopen", posted)
    name = "<!channel> & <https://evil.example|login>"
    alert = finding("HIGH", rule_id="R3", title=f"Distributed attack on one user: {name}")
    alert.entity.device_ip, alert.entity.username = None, name
    channels = AlertChannels(
        findings=Recorder(),
        topic=Recorder(),
        blocklist=MemoryBlocklist(),
        webhook=webhook_at("https://hooks.example.com/abc"),
    )

    deliver_finding(alert, channels, ResponsePolicy(), now=NOW)

    text = json.loads(posted.requests[0].data)["text"]
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

    monkeypatch.setattr(alert_channels.urllib.request, "urlopen", refuse)
    with pytest.raises(WebhookDeliveryFailed, match="refused"):
        webhook_at("https://hooks.example.com/abc").post({"text": "x"})


def test_a_webhook_answering_500_costs_neither_security_hub_nor_the_session_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a webhook answering 500, when a HIGH finding is delivered with the alerts topic, Security
    Hub and session termination on, then all three still do their work, and the delivery fails
    afterwards naming the webhook and its status (Lambda retries it)."""

    def answer_500(request: Any, timeout: float) -> Any:
        raise urllib.error.HTTPError(request.full_url, 500, "Internal Server Error", Message(), None)

    monkeypatch.setattr(alert_channels.urllib.request, "urlopen", answer_500)
    everything = EveryChannel()

    with pytest.raises(FindingDeliveryIncomplete, match="webhook: WebhookDeliveryFailed: HTTP Error 500"):
        everything.deliver_high_finding(webhook=webhook_at("https://hooks.example.com/abc"))

    assert everything.done == ["alerts topic", "security hub", "sessions"]
