"""Whom a finding blocks: the attacker, never the person attacked (lockout on demand).

Each test plays connection-log records through the real detector and delivers its findings with the
real response: anyone who knows a user name can make failure-only findings about that user fire, so
those block the addresses the failures came from; a success after an attack blocks the user only
from an address that took part in it; allow-lists hold for every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cvpn_shared.monitoring.alerting import AlertChannels, ResponsePolicy, blocks_for, deliver_finding
from cvpn_shared.monitoring.detection.detector import DetectionSettings, Detector, InMemoryDetectionState
from cvpn_shared.monitoring.findings import Finding
from tests.fixtures.connection_logs import ConnectionLog

ATTACKERS = [f"203.0.113.{index}" for index in range(10, 15)]
VICTIM = "vera"
VICTIM_HOME = "198.51.100.20"  # the victim's own address (an office NAT, say)


def attack(log: ConnectionLog) -> list[dict[str, Any]]:
    """Ten failed logins as the victim from five addresses, two each, within 10 minutes."""
    return [log.failure(index * 50, ip=ATTACKERS[index % 5], user=VICTIM) for index in range(10)]


def detect(
    events: list[dict[str, Any]], log: ConnectionLog, settings: DetectionSettings | None = None
) -> list[Finding]:
    attempts = log.attempts(events)
    now = max(attempt.timestamp for attempt in attempts) + timedelta(minutes=1)
    return (
        Detector(settings or DetectionSettings(), InMemoryDetectionState())
        .observe(attempts, now=now)
        .findings
    )


@dataclass
class Sink:
    """Every channel in memory: the blocklist, the archive, the alerts topic, the sessions."""

    blocked: dict[str, Any] = field(default_factory=dict)
    cut: list[tuple[str, ...]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)

    def block(self, entry: Any) -> bool:
        self.blocked[entry.key] = entry
        return True

    def record(self, detail: dict[str, Any], **_: Any) -> frozenset[str]:
        return frozenset()

    def mark_delivered(self, *_: Any, **__: Any) -> bool:
        return True

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> str:
        self.alerts.append(subject)
        return "message"

    def terminate_user(self, endpoint_id: str, username: str) -> list[dict[str, Any]]:
        self.cut.append(("user", username))
        return []

    def terminate_common_name(self, endpoint_id: str, common_name: str) -> list[dict[str, Any]]:
        self.cut.append(("common name", common_name))
        return []

    def terminate_user_connections(
        self, endpoint_id: str, user: str, connection_ids: frozenset[str]
    ) -> list[dict[str, Any]]:
        self.cut.append(("connections", user, *sorted(connection_ids)))
        return []


def deliver(findings: list[Finding], policy: ResponsePolicy) -> Sink:
    sink = Sink()
    channels = AlertChannels(findings=sink, topic=sink, blocklist=sink, sessions=sink)
    for finding in findings:
        deliver_finding(finding, channels, policy, now=finding.last_seen)
    return sink


def test_a_distributed_attack_then_the_victims_own_login_blocks_only_the_attackers() -> None:
    """Given ten failures from five addresses against vera, then vera's genuine login from her own
    address, when the findings (R2 MEDIUM, R3 HIGH, R6 CRITICAL) are delivered with session termination
    on, then the five addresses are blocked, and neither vera nor her address is; nobody is cut off,
    and the CRITICAL finding still pages a person."""
    log = ConnectionLog()
    events = [
        *attack(log),
        log.success(600, ip=VICTIM_HOME, user=VICTIM, connection_id="cvpn-connection-vera"),
    ]

    findings = detect(events, log)
    sink = deliver(findings, ResponsePolicy(terminate_sessions=True))

    assert sorted(finding.rule_id for finding in findings) == ["R2", "R3", "R6"]
    r3 = next(finding for finding in findings if finding.rule_id == "R3")
    assert r3.attack_sources == sorted(ATTACKERS)
    r6 = next(finding for finding in findings if finding.rule_id == "R6")
    assert r6.source_ip == VICTIM_HOME and not r6.success_from_attack_source
    assert sorted(sink.blocked) == sorted(f"source#{address}" for address in ATTACKERS)
    assert sink.cut == []
    assert any(subject.startswith("[CRITICAL]") for subject in sink.alerts)


def test_a_success_from_an_attacking_address_blocks_that_user_from_there_only() -> None:
    """Given the same attack, then a successful login as vera from one of the attacking addresses,
    when delivered, then vera is blocked from that address only (user_source), and only the
    connection the finding saw from there is cut."""
    log = ConnectionLog()
    events = [
        *attack(log),
        log.success(600, ip=ATTACKERS[2], user=VICTIM, connection_id="cvpn-connection-in"),
    ]

    findings = detect(events, log)
    sink = deliver(findings, ResponsePolicy(terminate_sessions=True))

    r6 = next(finding for finding in findings if finding.rule_id == "R6")
    assert r6.success_from_attack_source
    assert f"user_source#{ATTACKERS[2]}#{VICTIM}" in sink.blocked
    assert f"user#{VICTIM}" not in sink.blocked
    assert sink.cut == [("connections", VICTIM, *sorted(r6.sample_connection_ids))]
    assert "cvpn-connection-in" in r6.sample_connection_ids


def test_a_success_from_an_address_that_brute_forced_blocks_the_user_from_there() -> None:
    """Given an address that failed five times as two users (R1, MEDIUM: no block), then succeeded as
    one of them, the success (R6 of the source, CRITICAL) blocks that user from that address only."""
    log = ConnectionLog()
    failures = [
        log.failure(index * 30, ip=ATTACKERS[0], user=("ann", "bob")[index % 2]) for index in range(5)
    ]
    events = [*failures, log.success(400, ip=ATTACKERS[0], user="ann", connection_id="cvpn-connection-ann")]

    findings = detect(events, log)
    r6 = next(finding for finding in findings if finding.rule_id == "R6")
    entries = blocks_for(r6, ResponsePolicy(), r6.last_seen)

    assert r6.entity_key == f"device_ip:{ATTACKERS[0]}" and r6.attack_sources == [ATTACKERS[0]]
    assert [entry.key for entry in entries] == [f"user_source#{ATTACKERS[0]}#ann"]


def test_blocking_users_outright_is_the_administrators_choice() -> None:
    """Given BlockUsers on, the same attack and genuine login also block vera from everywhere (and cut
    all her sessions): the trade-off an administrator may choose, never the default."""
    log = ConnectionLog()
    events = [*attack(log), log.success(600, ip=VICTIM_HOME, user=VICTIM)]

    sink = deliver(detect(events, log), ResponsePolicy(terminate_sessions=True, block_users=True))

    assert f"user#{VICTIM}" in sink.blocked
    assert f"source#{VICTIM_HOME}" not in sink.blocked
    assert ("user", VICTIM) in sink.cut


def test_allow_lists_hold_for_every_rule() -> None:
    """Given vera allow-listed, her attack (R3) and the success after it are allow-listed: nothing is
    blocked, nobody paged. Given an attacking address in an allow-listed CIDR, it is never blocked
    (the other four are), and a user allow-listed in the response is never blocked, even outright."""
    log = ConnectionLog()
    events = [*attack(log), log.success(600, ip=ATTACKERS[1], user=VICTIM)]

    exempt = detect(events, log, DetectionSettings(allowlist_users=(VICTIM,)))
    assert exempt and all(finding.allowlisted for finding in exempt if finding.rule_id in ("R2", "R3", "R6"))
    exempt_sink = deliver(exempt, ResponsePolicy(terminate_sessions=True, block_users=True))
    assert exempt_sink.blocked == {} and exempt_sink.cut == []

    log = ConnectionLog()
    events = [*attack(log), log.success(600, ip=ATTACKERS[1], user=VICTIM)]
    settings = DetectionSettings(allowlist_cidrs=(f"{ATTACKERS[1]}/32",))
    policy = ResponsePolicy(
        block_users=True,
        exempt_users=frozenset({VICTIM}),
        exempt_networks=settings.allowlist_networks,
    )
    sink = deliver(detect(events, log, settings), policy)
    assert sorted(sink.blocked) == sorted(
        f"source#{address}" for address in ATTACKERS if address != ATTACKERS[1]
    )
