"""Every channel takes an alert about a user name an attacker typed: line breaks, control characters,
a bidirectional override, hundreds of characters.

SNS refuses a subject with a line break or a control character, or longer than 100 characters; moto
checks only the length, so these tests install the local cloud's SNS rules (``localcloud.sns``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from cvpn_shared.core.notifications import MAX_SUBJECT_CHARS, Notifier, sns_subject
from cvpn_shared.monitoring.alerting import alert_text, deliver_health_alert, teams_message
from cvpn_shared.monitoring.dal.alert_channels import AlertTopic
from cvpn_shared.monitoring.findings import HealthIssue
from localcloud import sns as local_sns
from tests.monitoring.unit.ingest.test_delivery import finding

EVIL = "mallory\r\nseverity: LOW  rule: none\x00\x07\x1b[31m\u202egnp.exe\u2028" + "x" * 300


@pytest.fixture
def sns() -> Iterator[Any]:
    """moto's SNS with the Subject rules AWS applies, and a topic."""
    with mock_aws():
        local_sns.install()
        try:
            client = boto3.client("sns", region_name="us-east-1")
            yield client
        finally:
            local_sns.uninstall()


def topic(client: Any) -> str:
    return str(client.create_topic(Name="alerts")["TopicArn"])


def test_the_local_cloud_refuses_the_subjects_sns_refuses(sns: Any) -> None:
    """A control character, a line break or a leading space is refused as AWS refuses it."""
    arn = topic(sns)
    for subject in ("line\nbreak", "bell\x07", " leading space"):
        with pytest.raises(sns.exceptions.InvalidParameterException, match="Subject"):
            sns.publish(TopicArn=arn, Subject=subject, Message="m")
    sns.publish(TopicArn=arn, Subject="[HIGH] fine", Message="m")


def test_an_alert_about_a_hostile_user_name_is_published(sns: Any) -> None:
    """Given a finding about a 300-character user name holding line breaks, NUL, BEL, an ANSI escape and
    a right-to-left override, when its alert goes to the topic, then SNS takes it: the subject is one
    line of printable ASCII under 100 characters; the body names the user with every control escaped,
    so no line of the body is one the attacker wrote."""
    alert = finding("HIGH", entity={"device_ip": "198.51.100.66", "username": EVIL, "common_name": "NA"})
    subject, body = alert_text(alert)

    message_id = AlertTopic(sns, topic(sns)).publish(subject, body, {"severity": "HIGH"})

    assert message_id
    sent = sns_subject(subject)
    assert len(sent) <= MAX_SUBJECT_CHARS and sent.isascii() and sent.isprintable()
    assert sent.startswith("[HIGH] Client VPN: Password spray from one source (source 198.51.100.66, user")
    lines = body.splitlines()
    assert [line for line in lines if line.startswith("severity:")] == [lines[1]]
    assert "mallory\\x0d\\x0aseverity: LOW  rule: none\\x00\\x07\\x1b[31m\\u202egnp.exe\\u2028" in lines[2]
    assert all(line.isprintable() for line in lines)


def test_a_health_alert_about_a_hostile_reason_is_published(sns: Any) -> None:
    """Given a handler health issue whose reason holds a line break (anything can write a log line),
    when operations are told, then SNS takes the notification."""
    issue = HealthIssue(
        endpoint_id="cvpn-endpoint-0123456789abcdef0",
        reason="client-connect-handler-x\nBcc: everyone" + "y" * 200,
        count=1,
        first_seen=datetime(2026, 11, 28, tzinfo=UTC),
        last_seen=datetime(2026, 11, 28, tzinfo=UTC),
        sample_connection_ids=[],
    )
    assert deliver_health_alert(issue, Notifier(sns, topic(sns)))


def test_chat_messages_show_the_name_on_one_line() -> None:
    """Slack's text and the Teams card carry the hostile name escaped, on the line it belongs to."""
    alert = finding("HIGH", entity={"device_ip": "198.51.100.66", "username": EVIL, "common_name": "NA"})
    card = teams_message(alert)["attachments"][0]["content"]
    facts = {fact["title"]: fact["value"] for fact in card["body"][1]["facts"]}
    assert "\n" not in facts["User"] and "\u202e" not in facts["User"] and "\x1b" not in facts["User"]
    assert all(text.isprintable() for text in (card["body"][0]["text"], *facts.values()))


def test_the_security_hub_description_holds_no_control_character() -> None:
    """The ASFF Description (at most 1,024 characters) names the entity escaped."""
    alert = finding("HIGH", rule_id="R3", entity={"device_ip": None, "username": EVIL, "common_name": "NA"})
    asff = alert.to_asff(
        account_id="123456789012",
        region="us-east-1",
        product_arn="arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default",
        endpoint_arn="arn:aws:ec2:us-east-1:123456789012:client-vpn-endpoint/cvpn-endpoint-0123456789abcdef0",
        now=datetime(2026, 11, 28, tzinfo=UTC),
    )
    assert asff["Description"].isprintable() and len(asff["Description"]) <= 1024
    json.dumps(asff)


@settings(max_examples=1000, deadline=None, database=None)
@given(st.text(max_size=400))
def test_any_text_makes_a_subject_sns_takes(text: str) -> None:
    """Whatever the text, ``sns_subject`` makes a subject the SNS rules take, under 100 characters."""
    subject = sns_subject(text)
    assert local_sns.subject_problem(subject) is None
    assert 0 < len(subject) <= MAX_SUBJECT_CHARS and subject.isascii()
