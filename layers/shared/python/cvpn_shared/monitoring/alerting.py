"""Delivering a finding from the bus: archive, alert, block, and optionally cut sessions.

For each finding event (a ``Finding``, parsed from the spec's detail) ``deliver_finding``:

1. records it in the findings table (``cvpn findings`` reads it) under its revision (a digest of
   the detail);
2. for HIGH and CRITICAL findings that are not allow-listed, puts what the finding holds responsible
   on the blocklist until the block expires (the client-connect handler refuses them; see
   ``blocks_for``: the attacking addresses, never the person attacked);
3. publishes a readable alert to the alerts topic (e-mail and other subscriptions) - except for
   allow-listed findings, which are recorded (and imported into Security Hub) but page nobody;
4. posts it to a Slack incoming webhook or a Microsoft Teams Workflows webhook, when one is configured;
5. imports it into Security Hub (ASFF), when enabled;
6. when enabled, cuts the sessions of a blocked user: for a user blocked from one address, the
   user's live connections the finding saw from there; for a user blocked outright (an
   administrator's choice), every session, by user name for an Active Directory or SAML user,
   connection by connection for a certificate's common name.

Each of steps 3-6 has its turn even when another failed; a failure fails the delivery afterwards
(``FindingDeliveryIncomplete``), so Lambda retries it. Each channel that took the finding is marked
on its archive item, for that revision: a retry of the same event (or EventBridge's second copy of
it) skips the channels already reached, so the e-mail alert is not sent again because the chat
webhook was down; a re-fire of the finding (same id, new counts and last attempt: a new revision)
starts without marks and reaches every channel again. Marks are a best effort (a mark that cannot be
written is logged, and the channel may then receive the finding twice); the block, the Security Hub
import and the session cut are safe to repeat anyway (same finding id, same block, no session left
to cut).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from cvpn_shared.core.notifications import sns_subject
from cvpn_shared.monitoring.attempts import bounded_text
from cvpn_shared.monitoring.dal.blocklist import BlockEntry
from cvpn_shared.monitoring.findings import Finding, HealthIssue, format_time

__all__ = [
    "AlertChannels",
    "DeliveryReport",
    "FindingDeliveryIncomplete",
    "ResponsePolicy",
    "alert_text",
    "blocks_for",
    "deliver_finding",
    "deliver_health_alert",
    "shown",
    "teams_message",
]

logger = logging.getLogger(__name__)

BLOCKING_SEVERITIES = frozenset({"HIGH", "CRITICAL"})


# ------------------------------------------------------------------------------------------ ports
class FindingsStore(Protocol):
    def record(
        self, detail: dict[str, Any], *, revision: str, recorded_at: int, expires_at: int
    ) -> frozenset[str]: ...

    def mark_delivered(self, finding_id: str, revision: str, channel: str, *, delivered_at: int) -> bool: ...


class AlertPublisher(Protocol):
    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> str: ...


class Webhook(Protocol):
    @property
    def configured(self) -> bool: ...

    def post(self, document: dict[str, Any]) -> int: ...


class SecurityHub(Protocol):
    def import_findings(self, findings: list[dict[str, Any]]) -> int: ...


class Blocklist(Protocol):
    def block(self, entry: BlockEntry) -> bool: ...


class SessionTerminator(Protocol):
    def terminate_user(self, endpoint_id: str, username: str) -> list[dict[str, Any]]: ...

    def terminate_user_connections(
        self, endpoint_id: str, user: str, connection_ids: frozenset[str]
    ) -> list[dict[str, Any]]: ...

    def terminate_common_name(self, endpoint_id: str, common_name: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class AlertChannels:
    """Where a finding goes; None means that channel is off."""

    findings: FindingsStore
    topic: AlertPublisher
    blocklist: Blocklist
    webhook: Webhook | None = None
    webhook_format: Literal["slack", "teams"] = "slack"
    security_hub: SecurityHub | None = None
    sessions: SessionTerminator | None = None


@dataclass(frozen=True)
class ResponsePolicy:
    """How long blocks last, what else a HIGH/CRITICAL finding triggers, and who is never blocked.

    ``block_users``: also block the user named by an attack on a user (R2, R3) or a success after
    one (R6) from everywhere, and cut all their sessions; off by default, since anyone who knows a
    user name can make those findings fire (lockout on demand). ``exempt_users`` (lower-cased) and
    ``exempt_networks`` are the detection allow-lists: no rule's response blocks them.
    """

    block_duration: timedelta = timedelta(hours=24)
    terminate_sessions: bool = False
    findings_retention: timedelta = timedelta(days=90)
    block_users: bool = False
    exempt_users: frozenset[str] = frozenset()
    exempt_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def exempt_user(self, user: str) -> bool:
        return user.strip().lower() in self.exempt_users

    def exempt_source(self, source: str) -> bool:
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return False
        return any(address in network for network in self.exempt_networks)


@dataclass
class DeliveryReport:
    finding_id: str
    severity: str
    alert_message_id: str | None = None
    webhook_status: int | None = None
    security_hub_imported: int = 0
    blocked: list[str] = field(default_factory=list)
    terminated_connections: list[str] = field(default_factory=list)
    already_delivered: list[str] = field(default_factory=list)  # channels skipped: reached before


# ------------------------------------------------------------------------------------------ logic
def shown(text: str | None) -> str:
    """Text from a log line (a user name, a common name, a reason: whatever a login typed) as one
    printable line of bounded length: controls and line breaks escaped (``\\x0a``), so that it
    cannot forge a line of the alert, cut with a digest past ``MAX_FIELD_CHARS``."""
    return bounded_text(text) if text else ""


def alert_text(finding: Finding) -> tuple[str, str]:
    """(subject, body) of the alert a person reads.

    Every text a log line carried is ``shown``; the subject is made an SNS subject (printable ASCII,
    under 100 characters) where it is published (``AlertTopic``), the body keeps it whole.
    """
    who = ", ".join(
        part
        for part in (
            f"source {shown(finding.source_ip)}" if finding.source_ip else "",
            f"user {shown(finding.user)}" if finding.user else "",
        )
        if part
    )
    endpoint = shown(finding.endpoint_id)
    title = shown(finding.title) or finding.rule_id
    subject = f"[{finding.severity}] Client VPN: {title} ({who or endpoint})"
    lines = [
        f"{title} on {endpoint}",
        f"severity: {finding.severity}  rule: {finding.rule_id}  finding: {finding.finding_id}",
        f"who: {who or 'unknown'}",
        f"when: {finding.period}",
        f"counts: {finding.counts_text}",
    ]
    if finding.failure_reasons:
        reasons = [shown(reason) for reason in finding.failure_reasons]
        lines.append(f"failure reasons: {json.dumps(reasons, sort_keys=True)}")
    if finding.allowlisted:
        lines.append("allow-listed: recorded only, no block")
    if finding.runbook_url:
        lines.append(f"runbook: {finding.runbook_url}")
    lines += ["", json.dumps(finding.event_detail(), indent=2, sort_keys=True)]
    return subject, "\n".join(lines)


def _webhook_document(finding: Finding, style: Literal["slack", "teams"]) -> dict[str, Any]:
    if style == "teams":
        return teams_message(finding)
    subject, body = alert_text(finding)
    summary = "\n".join(body.split("\n\n", 1)[0].splitlines())
    return {"text": f"*{_slack_escaped(subject)}*\n{_slack_escaped(summary)}"}


def _slack_escaped(text: str) -> str:
    """``&``, ``<`` and ``>`` as Slack's entities, so that a user name an attacker typed cannot
    mention ``<!channel>`` or make a link (Slack's formatting reference, "Escaping text")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"


def teams_message(finding: Finding) -> dict[str, Any]:
    """The finding as a message for a Microsoft Teams Workflows webhook: one Adaptive Card.

    Office 365 connectors (the incoming webhooks that took a MessageCard) are retired; their
    replacement is a Workflows webhook (the template "Send webhook alerts to a channel", trigger "When
    a Teams webhook request is received"), which posts the Adaptive Cards it is sent. The envelope is
    the one Microsoft documents under "Send Adaptive Cards using an Incoming Webhook" in
    https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
    (the legacy incoming webhook took it too): ``type`` "message", ``attachments`` holding one
    attachment whose ``contentType`` is application/vnd.microsoft.card.adaptive, ``contentUrl`` null
    and ``content`` the card. Adaptive Cards are the format Workflows were built for: the same page's
    "Known issues" said Workflows did not take the connectors' MessageCard format.

    The card: the alert's subject as a bold title, the finding's facts, and the runbook as an
    Action.OpenUrl when the finding has one. Every text is escaped (``_teams_escaped``): user names
    and common names are whatever a failed login typed.
    """
    subject, _ = alert_text(finding)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": _teams_escaped(subject), "weight": "Bolder", "wrap": True},
        {
            "type": "FactSet",
            "facts": [
                {"title": title, "value": _teams_escaped(value)} for title, value in _teams_facts(finding)
            ],
        },
    ]
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    if finding.runbook_url:
        runbook = {"type": "Action.OpenUrl", "title": "Open the runbook", "url": finding.runbook_url}
        card["actions"] = [runbook]
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def _teams_facts(finding: Finding) -> list[tuple[str, str]]:
    """(title, value) of what the card lists; who the finding names only as far as the log told."""
    reasons = ", ".join(finding.failure_reasons)
    facts = [
        ("Endpoint", shown(finding.endpoint_id)),
        ("Severity", finding.severity),
        ("Rule", finding.rule_id),
        ("Finding", finding.finding_id),
        ("Device IP", shown(finding.source_ip)),
        ("User", shown(finding.username)),
        ("Common name", shown(finding.common_name)),
        ("When", finding.period),
        ("Counts", finding.counts_text),
        ("Failure reasons", shown(reasons)),
    ]
    return [(title, str(value)) for title, value in facts if value]


# What Adaptive Card text renders as markdown in Teams (bold, italic, links, lists), and the
# characters that would start HTML-like mentions (<at>) or headings: each is escaped with a
# backslash (a backslash too). Line breaks become spaces: a fact stays one line.
_TEAMS_MARKDOWN = re.compile(r"([\\`*_\[\]()<>#~])")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\u2028\u2029]+")


def _teams_escaped(text: str) -> str:
    """``text`` shown as typed on an Adaptive Card: an attacker's ``[click](https://evil.example)``
    or ``**bold**`` (a failed login logs whatever name was typed) makes no link and no emphasis."""
    return _TEAMS_MARKDOWN.sub(r"\\\1", _LINE_BREAKS.sub(" ", text))


def blocks_for(finding: Finding, policy: ResponsePolicy, now: datetime) -> list[BlockEntry]:
    """The blocks a HIGH or CRITICAL finding calls for: whom the evidence holds responsible.

    An attacker chooses the user names and their own addresses in failed attempts, so a failure-only
    signal never blocks the user it names (that would lock the victim out on demand):

    - R1, R4, R5 (failures from one address): that address;
    - R2, R3 (failures against one user): the addresses the failures came from;
    - R6 (a success after an attack): the user from the success's address, and only when that
      address took part in the attack (evidence the attacker got in); a success from elsewhere (the
      person attacked, from their own address) blocks nothing, the finding still alerts.

    With ``policy.block_users`` a user-targeting finding (R2, R3, R6) also blocks the user outright.
    Allow-listed addresses and users (the detection allow-lists) are never blocked, whatever the rule.
    """
    if finding.severity not in BLOCKING_SEVERITIES or finding.allowlisted:
        return []
    blocked_at = int(now.timestamp())
    expires_at = int((now + policy.block_duration).timestamp())
    reason = f"{finding.rule_id} {finding.title}".strip()

    def block(kind: Literal["source", "user", "user_source"], value: str, source: str = "") -> BlockEntry:
        return BlockEntry(
            kind=kind,
            value=value,
            expires_at=expires_at,
            blocked_at=blocked_at,
            reason=reason,
            finding_id=finding.finding_id,
            endpoint_id=finding.endpoint_id,
            severity=finding.severity,
            source=source,
        )

    user = finding.user
    user_blockable = user is not None and not policy.exempt_user(user)
    entries: list[BlockEntry] = []
    if finding.rule_id == "R6":
        source = finding.source_ip
        if (
            user_blockable
            and source
            and finding.success_from_attack_source
            and not policy.exempt_source(source)
        ):
            entries.append(block("user_source", str(user), source))
        if policy.block_users and user_blockable:
            entries.append(block("user", str(user)))
    elif finding.entity_key.startswith("user:"):
        entries.extend(
            block("source", source) for source in finding.attack_sources if not policy.exempt_source(source)
        )
        if policy.block_users and user_blockable:
            entries.append(block("user", str(user)))
    elif finding.source_ip and not policy.exempt_source(finding.source_ip):
        entries.append(block("source", finding.source_ip))
    return entries


def deliver_finding(
    finding: Finding,
    channels: AlertChannels,
    policy: ResponsePolicy,
    *,
    now: datetime,
    asff: Callable[[Finding], dict[str, Any]] | None = None,
) -> DeliveryReport:
    """Archive, alert, block and respond for one finding (see the module docstring).

    The archive and the blocks come first. Then each channel (alerts topic, webhook, Security Hub,
    session termination) has its turn even when one before it failed: a chat service's outage must
    not cost the Security Hub finding or the cut sessions. A channel this revision of the finding
    already reached (an earlier attempt of the same delivery) is skipped; one that succeeds is marked.
    If any failed, ``FindingDeliveryIncomplete`` names them after all had their turn, so the invocation
    fails and is retried, then kept by the on-failure destination.
    """
    report = DeliveryReport(finding_id=finding.finding_id, severity=finding.severity)
    revision = finding.revision
    delivered = channels.findings.record(
        finding.event_detail(),
        revision=revision,
        recorded_at=int(now.timestamp()),
        expires_at=int((now + policy.findings_retention).timestamp()),
    )
    for entry in blocks_for(finding, policy, now):
        channels.blocklist.block(entry)
        report.blocked.append(entry.key)
    failures: dict[str, Exception] = {}
    for channel, step in _channel_steps(finding, channels, policy, report, asff):
        if channel in delivered:
            report.already_delivered.append(channel)
            continue
        try:
            step()
        except Exception as error:  # each channel has its turn; the delivery fails after all of them
            failures[channel] = error
            continue
        _mark_delivered(channels.findings, finding.finding_id, revision, channel, now)
    if failures:
        raise FindingDeliveryIncomplete(report, failures) from next(iter(failures.values()))
    return report


def _mark_delivered(
    findings: FindingsStore, finding_id: str, revision: str, channel: str, now: datetime
) -> None:
    """Mark ``channel`` as reached; a mark that cannot be written costs at most a second copy on a
    retry, never the delivery."""
    try:
        findings.mark_delivered(finding_id, revision, channel, delivered_at=int(now.timestamp()))
    except Exception:
        logger.warning("delivery to %s not marked for finding %s", channel, finding_id, exc_info=True)


class FindingDeliveryIncomplete(Exception):
    """Channels that failed for a finding (by name), once every channel had its turn."""

    def __init__(self, report: DeliveryReport, failures: dict[str, Exception]) -> None:
        self.report = report
        self.failures = failures
        reasons = "; ".join(
            f"{channel}: {type(error).__name__}: {error}" for channel, error in failures.items()
        )
        super().__init__(f"finding {report.finding_id} not delivered to every channel: {reasons}")


def _channel_steps(
    finding: Finding,
    channels: AlertChannels,
    policy: ResponsePolicy,
    report: DeliveryReport,
    asff: Callable[[Finding], dict[str, Any]] | None,
) -> list[tuple[str, Callable[[], None]]]:
    """The channels ``finding`` goes to, in order, as (name, step); a step writes its outcome into
    ``report``. Allow-listed findings go to Security Hub only (as INFORMATIONAL): nobody is paged."""
    steps: list[tuple[str, Callable[[], None]]] = []
    webhook, security_hub, sessions = channels.webhook, channels.security_hub, channels.sessions

    def publish_alert() -> None:
        subject, body = alert_text(finding)
        report.alert_message_id = channels.topic.publish(
            subject,
            body,
            {
                "severity": finding.severity,
                "rule_id": finding.rule_id,
                "endpoint_id": finding.endpoint_id,
                "finding_id": finding.finding_id,
            },
        )

    if not finding.allowlisted:
        steps.append(("alerts topic", publish_alert))
    if not finding.allowlisted and webhook is not None and webhook.configured:

        def post_to_webhook() -> None:
            report.webhook_status = webhook.post(_webhook_document(finding, channels.webhook_format))

        steps.append(("webhook", post_to_webhook))
    if security_hub is not None and asff is not None:

        def import_into_security_hub() -> None:
            report.security_hub_imported = security_hub.import_findings([asff(finding)])

        steps.append(("security hub", import_into_security_hub))
    username, common_name, endpoint_id = finding.username, finding.common_name, finding.endpoint_id
    user_blocked = any(key.startswith("user#") for key in report.blocked)
    user_source_blocked = any(key.startswith("user_source#") for key in report.blocked)
    if (
        policy.terminate_sessions
        and sessions is not None
        and (user_blocked or user_source_blocked)
        and (username or common_name)
        and endpoint_id
    ):

        def cut_sessions() -> None:
            if user_blocked:
                # TerminateClientVpnConnections' Username is an Active Directory or SAML user name; a
                # certificate-only user has none, so their connections are found by common name.
                if username:
                    statuses = sessions.terminate_user(endpoint_id, username)
                else:
                    statuses = sessions.terminate_common_name(endpoint_id, str(common_name))
            else:
                # The API does not say where a live connection comes from: the connections the
                # finding saw from the attacking address are the ones cut (later ones are refused).
                statuses = sessions.terminate_user_connections(
                    endpoint_id, str(username or common_name), frozenset(finding.sample_connection_ids)
                )
            report.terminated_connections = [str(status.get("ConnectionId")) for status in statuses]

        steps.append(("sessions", cut_sessions))
    return steps


class OperationsNotifier(Protocol):
    def publish(self, subject: str, message: dict[str, Any], attributes: dict[str, str]) -> str: ...


def deliver_health_alert(issue: HealthIssue, operations: OperationsNotifier) -> str:
    """Tell operations the client-connect handler misbehaves (every such attempt was refused)."""
    reason, endpoint = shown(issue.reason), shown(issue.endpoint_id)
    subject = f"[OPERATIONS] Client VPN client-connect handler: {reason} on {endpoint}"
    body = "\n".join(
        [
            f"{issue.count} connection attempt(s) on {endpoint} were refused because the "
            f"client-connect handler failed: {reason}.",
            f"between {format_time(issue.first_seen)} and {format_time(issue.last_seen)}",
            f"sample connections: {', '.join(issue.sample_connection_ids) or '-'}",
            "Check the handler's errors, throttles and duration (it must answer within 30 seconds).",
        ]
    )
    return operations.publish(
        sns_subject(subject),
        {"summary": body, **issue.event_detail()},
        {"kind": "client-connect-handler-health", "endpoint_id": endpoint},
    )
