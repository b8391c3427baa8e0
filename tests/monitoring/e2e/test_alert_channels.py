"""End to end on the local cloud, for the alert channels an operator turns on: simulated failed logins
-> scheduled ingest -> finding on the bus -> the deployed alert function posts it to a Slack webhook or
a Teams Workflows webhook (an HTTPS server on 127.0.0.1), imports it into Security Hub (moto's) and
cuts the live sessions of a blocked user, be it an Active Directory user or a client certificate's
common name; a webhook that fails makes the delivery fail, for Lambda to retry, without keeping any
other channel from its work.

The stack is a second deployment with every channel configured (``alerting_stack``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cvpn.monitoring_demo import wait_for
from localcloud.cloud import DEFAULT_ACCOUNT_ID, DEFAULT_REGION
from tests.monitoring.e2e.alerting_stack import (
    CLIENT_CONNECT_REFUSED,
    RUNBOOK_URL,
    SLACK_PATH,
    TEAMS_PATH,
    AlertingStack,
    deploy_alerting_stack,
)
from tests.monitoring.unit.ingest.test_webhook import adaptive_card_message
from tests.provisioning.workflow.harness import Provisioning

ACCOUNT, REGION = DEFAULT_ACCOUNT_ID, DEFAULT_REGION


@pytest.fixture(scope="module")
def alerting(product: Provisioning, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertingStack]:
    with deploy_alerting_stack(product, tmp_path_factory.mktemp("alerting")) as stack:
        yield stack


@pytest.fixture
def receiver_answers_ok(alerting: AlertingStack) -> Iterator[None]:
    """Whatever a test makes the webhook answer, the next test finds it answering 200."""
    yield
    alerting.receiver.answer(200)


def spray(source: str, users: list[str]) -> list[tuple[str, str]]:
    """One failed password for each user, all from ``source`` (R4, password spray)."""
    return [(user, source) for user in users]


def distributed_attack(user: str, sources: list[str]) -> list[tuple[str, str]]:
    """Two failed passwords for ``user`` from each source (R3 with five sources: ten failures)."""
    return [(user, source) for source in sources for _ in range(2)]


def summary_lines(detail: dict[str, Any], who: str) -> list[str]:
    """The lines the webhook message carries under its subject, from the finding's detail."""
    counts = ", ".join(f"{key} {value}" for key, value in sorted(detail["counts"].items()))
    return [
        f"{detail['title']} on {detail['endpoint_id']}",
        f"severity: {detail['severity']}  rule: {detail['rule_id']}  finding: {detail['finding_id']}",
        f"who: {who}",
        f"when: {detail['first_seen']} .. {detail['last_seen']}",
        f"counts: {counts}",
        'failure reasons: ["Authentication failed"]',
        f"runbook: {RUNBOOK_URL}",
    ]


def test_a_password_spray_reaches_slack_as_one_text_message(alerting: AlertingStack) -> None:
    """Given the Slack webhook URL in a Secrets Manager secret, when one address fails against five
    users and the scheduled ingest runs, then the webhook receives one JSON POST, Slack's ``text``
    message: the subject in bold, naming the severity, the rule's title and the source, then the
    endpoint, the rule id, the finding id, the counts."""
    alerting.configure(webhook="slack")
    source = "203.0.113.21"
    detail = alerting.detect(spray(source, ["ana", "ben", "cai", "dee", "eli"]), "R4", about=source)["detail"]
    (post,) = alerting.receiver.posts_mentioning(detail["finding_id"])

    assert post.path == SLACK_PATH and post.headers["content-type"] == "application/json"
    assert detail["title"] == f"Password spray from one source: {source}"
    subject = f"[HIGH] Client VPN: {detail['title']} (source {source})"
    assert post.body == {"text": "\n".join([f"*{subject}*", *summary_lines(detail, f"source {source}")])}
    assert detail["counts"] == {"failures": 5, "distinct_users": 5, "distinct_ips": 1}
    assert detail["endpoint_id"] == alerting.endpoint_id


def test_a_user_name_an_attacker_typed_reaches_slack_as_plain_text(alerting: AlertingStack) -> None:
    """Given the Slack webhook, when an attacker fails from five addresses for the user name
    ``<!channel>`` (a failed login logs whatever name was typed), then the message names that user
    with Slack's entities (``&lt;!channel&gt;``): the attacker cannot make Slack page the channel."""
    alerting.configure(webhook="slack")
    name = "<!channel>"
    attack = distributed_attack(name, [f"192.0.2.{n}" for n in range(61, 66)])
    detail = alerting.detect(attack, "R3", about=name)["detail"]
    (post,) = alerting.receiver.posts_mentioning(detail["finding_id"])

    text = post.body["text"]
    assert text.startswith("*[HIGH] Client VPN: Distributed attack on one user: &lt;!channel&gt; (user ")
    assert "\nwho: user &lt;!channel&gt;\n" in text
    assert "<" not in text and ">" not in text


def test_a_distributed_attack_reaches_a_teams_workflow_as_an_adaptive_card(alerting: AlertingStack) -> None:
    """Given a Teams Workflows webhook URL in an SSM SecureString parameter (format teams), when five
    addresses fail twice each for one user and the scheduled ingest runs, then the webhook receives
    one message with one Adaptive Card (the envelope Workflows take; Office 365 connectors' MessageCard
    is retired): the subject in bold (severity, the rule's title, the user), the facts (endpoint,
    severity, rule, finding, user, common name, when, counts, failure reasons) and the runbook as a
    button."""
    alerting.configure(webhook="teams")
    user = "paula"
    attack = distributed_attack(user, [f"192.0.2.{n}" for n in range(11, 16)])
    detail = alerting.detect(attack, "R3", about=user)["detail"]
    (post,) = alerting.receiver.posts_mentioning(detail["finding_id"])

    assert post.path == TEAMS_PATH and post.headers["content-type"] == "application/json"
    assert detail["title"] == f"Distributed attack on one user: {user}"
    assert detail["counts"] == {"failures": 10, "distinct_users": 1, "distinct_ips": 5}
    assert detail["entity"] == {"device_ip": None, "username": user, "common_name": "client1"}
    # Adaptive Card text is markdown: "[", "]", "(", ")" and "_" arrive escaped.
    subject = f"\\[HIGH\\] Client VPN: Distributed attack on one user: {user} \\(user {user}\\)"
    facts = {
        "Endpoint": alerting.endpoint_id,
        "Severity": "HIGH",
        "Rule": "R3",
        "Finding": detail["finding_id"],
        "User": user,
        "Common name": "client1",
        "When": f"{detail['first_seen']} .. {detail['last_seen']}",
        "Counts": "distinct\\_ips 5, distinct\\_users 1, failures 10",
        "Failure reasons": "Authentication failed",
    }
    assert post.body == adaptive_card_message(
        [
            {"type": "TextBlock", "text": subject, "weight": "Bolder", "wrap": True},
            {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in facts.items()]},
        ],
        actions=[{"type": "Action.OpenUrl", "title": "Open the runbook", "url": RUNBOOK_URL}],
    )


def test_a_user_name_an_attacker_typed_reaches_teams_without_a_link(alerting: AlertingStack) -> None:
    """Given the Teams Workflows webhook, when an attacker fails from five addresses for the user name
    ``[click](https://evil.example)`` (a failed login logs whatever name was typed), then the card
    names that user with Adaptive Card markdown escaped: Teams shows the brackets, no link."""
    alerting.configure(webhook="teams")
    name = "[click](https://evil.example)"
    attack = distributed_attack(name, [f"192.0.2.{n}" for n in range(71, 76)])
    detail = alerting.detect(attack, "R3", about=name)["detail"]
    (post,) = alerting.receiver.posts_mentioning(detail["finding_id"])

    (card,) = [attachment["content"] for attachment in post.body["attachments"]]
    title, facts = card["body"]
    escaped = "\\[click\\]\\(https://evil.example\\)"
    assert title["text"].endswith(f"Distributed attack on one user: {escaped} \\(user {escaped}\\)")
    assert {"title": "User", "value": escaped} in facts["facts"]


def test_security_hub_receives_the_finding_in_asff_and_a_refire_updates_it(alerting: AlertingStack) -> None:
    """Given Security Hub integration enabled, when a spray is detected, then Security Hub holds one
    ASFF finding under the finding's id (schema 2018-10-08, generator = rule, severity label, the
    endpoint as resource, the source as network); when the spray goes on and the rule fires again in
    the same episode, then that finding is updated (newer UpdatedAt, new counts), not duplicated."""
    alerting.configure()
    source = "203.0.113.31"
    event = alerting.detect(spray(source, ["fay", "gus", "hal", "ivy", "jon"]), "R4", about=source)
    detail = event["detail"]
    finding_id = detail["finding_id"]

    (imported,) = wait_for("the ASFF finding", lambda: alerting.security_hub_findings(finding_id))
    expected = {
        "SchemaVersion": "2018-10-08",
        "Id": finding_id,
        "ProductArn": f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default",
        "GeneratorId": "R4",
        "AwsAccountId": ACCOUNT,
        "Types": ["TTPs/Credential Access/Password Spraying"],
        "Severity": {"Label": "HIGH", "Original": "HIGH"},
        "Title": f"Password spray from one source: {source}",
        "Resources": [
            {
                "Type": "AwsEc2ClientVpnEndpoint",
                "Id": event["resources"][0],
                "Partition": "aws",
                "Region": REGION,
            }
        ],
        "Network": {"Direction": "IN", "SourceIpV4": source},
        "FirstObservedAt": detail["first_seen"],
        "LastObservedAt": detail["last_seen"],
        "RecordState": "ACTIVE",
    }
    assert {key: imported.get(key) for key in expected} == expected
    assert event["resources"] == [
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:client-vpn-endpoint/{alerting.endpoint_id}"
    ]
    assert imported["ProductFields"]["cvpn/distinct_users"] == "5"

    alerting.detect(spray(source, ["kim", "lou"]), "R4", about=source)

    def updated() -> list[dict[str, Any]]:
        found = alerting.security_hub_findings(finding_id)
        return found if found and found[0]["ProductFields"]["cvpn/distinct_users"] == "7" else []

    (refired,) = wait_for("the finding updated", updated)
    assert refired["UpdatedAt"] > imported["UpdatedAt"]
    assert refired["LastObservedAt"] > imported["LastObservedAt"]
    assert refired["FirstObservedAt"] == imported["FirstObservedAt"]
    assert len(alerting.security_hub_findings(finding_id)) == 1


@pytest.mark.parametrize(
    ("certificates", "terminate", "user", "third"),
    [(False, True, "quinn", 21), (False, False, "rosa", 31), (True, True, "ola.contractor", 81)],
    ids=["termination-on", "termination-off", "certificate-user-termination-on"],
)
def test_a_high_finding_about_a_connected_user_cuts_their_sessions_only_when_enabled(
    alerting: AlertingStack, certificates: bool, terminate: bool, user: str, third: int
) -> None:
    """Given a user connected from the office and users blocked outright (BlockUsers, on in this
    stack), when their account is attacked from five addresses (R3, HIGH) and the scheduled ingest
    runs, then the five addresses (on the certificate endpoint, where every failure is the handler's
    own refusal, none) and the user are blocklisted either way; with
    TerminateBlockedSessions true their live session is cut (DescribeClientVpnConnections: terminated,
    the connection log: its end record) and they cannot come back; with false it stays up.

    The same for a user of the certificate-only endpoint, known by the certificate's common name alone
    (no user name; its failures are the client-connect handler's refusals): TerminateClientVpnConnections'
    Username would not find them, so their connection is cut by its id."""
    alerting.configure(terminate_sessions=terminate)
    endpoint = alerting.on_certificate_endpoint() if certificates else alerting
    session = endpoint.connect(user, "198.51.100.40")
    assert session.connected and session.connection_id
    # Connected before the attack, in an earlier second (a success in the arming second counts as
    # following the attack: R6, whose delivery would cut the session before R3's).
    alerting.product.cloud.clock.advance(2.0)
    attackers = [f"192.0.2.{third + n}" for n in range(5)]
    detail = endpoint.detect(distributed_attack(user, attackers), "R3", about=user)["detail"]
    (report,) = endpoint.delivery_reports(detail["finding_id"])

    assert detail["endpoint_id"] == endpoint.endpoint_id
    assert (detail["entity"]["username"], detail["entity"]["common_name"]) == (
        (None, user) if certificates else (user, "client1")
    )
    # The certificate endpoint's failures are the handler's own refusals: no address is shown to attack.
    sources = [] if certificates else [f"source#{address}" for address in attackers]
    assert report["blocked"] == [*sources, f"user#{user}"]
    if terminate:
        assert report["terminated_connections"] == [session.connection_id]
        assert endpoint.connection(session.connection_id)["Status"] == {"Code": "terminated"}
        (end,) = endpoint.end_records(session.connection_id)
        assert end["connection-attempt-status"] == "successful"
        assert (end["username"], end["common-name"]) == (("NA", user) if certificates else (user, "client1"))
        refused = endpoint.connect(user, "198.51.100.40")
        assert not refused.connected and refused.failure_reason == CLIENT_CONNECT_REFUSED
    else:
        assert report["terminated_connections"] == []
        assert endpoint.connection(session.connection_id)["Status"] == {"Code": "active"}
        assert endpoint.end_records(session.connection_id) == []


WEBHOOK_FAILURES = {
    "status-500": (500, 0.0, "HTTP Error 500: Internal Server Error"),
    "timeout": (200, 8.0, "The read operation timed out"),  # answered after the 5-second timeout
}


@pytest.mark.parametrize("failure", list(WEBHOOK_FAILURES))
@pytest.mark.usefixtures("receiver_answers_ok")
def test_a_failing_webhook_fails_the_delivery_for_a_retry_and_loses_nothing(
    alerting: AlertingStack, failure: str
) -> None:
    """Given the webhook answering 500 (or not within the 5-second timeout), when a connected user's
    account is attacked (R3, HIGH), then the finding is recorded, the alert is on the alerts topic, the
    user is blocked and cut off and Security Hub has the finding, and only then does the delivery fail,
    naming the webhook and why, so that Lambda retries it (then hands it to the dead-letter queue:
    the template's EventInvokeConfig, which the local cloud does not run); when the delivery is
    retried (replayed here) with the webhook back, the message arrives, the alert e-mail is not sent
    again (the channels the first attempt reached are skipped), and the blocklist and Security Hub
    hold the finding once."""
    status, delay, reason = WEBHOOK_FAILURES[failure]
    alerting.configure(webhook="slack", terminate_sessions=True)
    user, third = ("sven", 41) if failure == "status-500" else ("tara", 51)
    session = alerting.connect(user, "198.51.100.41")
    assert session.connection_id
    # The user was connected before the attack: a success in the same second as the failures that
    # arm the user counts as following them (R6), whose delivery would cut the session first.
    alerting.product.cloud.clock.advance(2.0)
    alerting.receiver.answer(status, delay=delay)
    attackers = [f"192.0.2.{third + n}" for n in range(5)]
    event = alerting.detect(distributed_attack(user, attackers), "R3", about=user)
    finding_id = event["detail"]["finding_id"]

    (partial,) = alerting.delivery_reports(finding_id, outcome="finding partly delivered")
    assert partial["webhook_status"] is None and partial["alert_message_id"]
    assert partial["blocked"] == [*(f"source#{address}" for address in attackers), f"user#{user}"]
    assert partial["security_hub_imported"] == 1
    assert partial["terminated_connections"] == [session.connection_id]
    assert f"webhook: WebhookDeliveryFailed: {reason}" in alerting.delivery_log()
    (attempt,) = alerting.receiver.posts_mentioning(finding_id)
    assert attempt.path == SLACK_PATH

    assert finding_id in {finding["finding_id"] for finding in alerting.monitoring.findings_recorded()}
    assert f"user#{user}" in [entry["pk"] for entry in alerting.monitoring.blocklist()]
    assert alerting.connection(session.connection_id)["Status"] == {"Code": "terminated"}
    assert len(alerting.end_records(session.connection_id)) == 1
    assert len(alerting.security_hub_findings(finding_id)) == 1

    def alerted() -> list[dict[str, Any]]:
        return [
            envelope
            for envelope in alerting.monitoring.alert_envelopes()  # every one received so far
            if envelope["MessageAttributes"]["finding_id"]["Value"] == finding_id
        ]

    assert len(wait_for("the alert", alerted)) == 1

    # Lambda's retry of the asynchronous invocation, replayed: the local cloud does not retry.
    alerting.receiver.answer(200)
    answer = alerting.retry_delivery(event)
    retried = answer["Payload"]
    assert "FunctionError" not in answer, retried.get("errorMessage")
    assert retried["webhook_status"] == 200
    # what the first attempt delivered is not done again: the alert e-mail comes once
    assert retried["already_delivered"] == ["alerts topic", "security hub", "sessions"]
    assert retried["alert_message_id"] is None and retried["security_hub_imported"] == 0
    assert retried["terminated_connections"] == []
    (_, delivered) = alerting.receiver.posts_mentioning(finding_id, count=2)
    assert delivered.body == attempt.body and delivered.status == 200
    assert len(alerted()) == 1
    assert len(alerting.security_hub_findings(finding_id)) == 1
    assert [entry["pk"] for entry in alerting.monitoring.blocklist()].count(f"user#{user}") == 1
