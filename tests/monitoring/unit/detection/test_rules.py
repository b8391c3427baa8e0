"""Each rule at, below and above its threshold; windows that span runs; duplicates counted once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cvpn_shared.monitoring.detection.detector import (
    DetectionResult,
    DetectionSettings,
    Detector,
    InMemoryDetectionState,
)
from tests.fixtures.connection_logs import ConnectionLog


def observe(
    log: ConnectionLog,
    events: list[dict[str, Any]],
    *,
    detector: Detector | None = None,
    settings: DetectionSettings | None = None,
) -> DetectionResult:
    detector = detector or Detector(settings or DetectionSettings(), InMemoryDetectionState())
    attempts = log.attempts(events)
    latest = max((attempt.timestamp for attempt in attempts), default=log.start)
    return detector.observe(attempts, now=latest + timedelta(minutes=1))


def rules(result: DetectionResult) -> list[str]:
    return sorted(finding.rule_id for finding in result.findings)


def two_users(index: int) -> str:
    return ("alice", "bob")[index % 2]


# ------------------------------------------------------------------------------------------------ R1
@pytest.mark.parametrize(("failures", "fires"), [(4, False), (5, True), (6, True)])
def test_r1_source_brute_force_threshold(failures: int, fires: bool) -> None:
    """Given n failures from one address in 10 min for two users, R1 fires from the fifth."""
    log = ConnectionLog()
    events = [log.failure(index * 60, user=two_users(index)) for index in range(failures)]

    result = observe(log, events)

    assert rules(result) == (["R1"] if fires else [])
    if fires:
        (finding,) = result.findings
        assert finding.severity == "MEDIUM"
        assert finding.mitre == ["T1110.001"]
        assert finding.entity.device_ip == "203.0.113.7"
        assert finding.counts.failures == failures
        assert finding.counts.distinct_users == 2
        assert finding.window.start == log.at(0)
        assert finding.last_seen == log.at((failures - 1) * 60)


def test_r1_needs_the_failures_inside_its_window() -> None:
    """Five failures spread over more than 10 minutes do not fire R1."""
    log = ConnectionLog()
    events = [log.failure(index * 151, user=two_users(index)) for index in range(5)]  # 604 s

    assert rules(observe(log, events)) == []


# ------------------------------------------------------------------------------------------------ R2
@pytest.mark.parametrize(("failures", "fires"), [(4, False), (5, True), (6, True)])
def test_r2_user_brute_force_threshold(failures: int, fires: bool) -> None:
    """Given n failures for one user from n addresses in 10 min, R2 fires from the fifth."""
    log = ConnectionLog()
    events = [log.failure(index * 60, ip=f"198.51.100.{index}", user="carol") for index in range(failures)]

    result = observe(log, events)

    assert rules(result) == (["R2"] if fires else [])
    if fires:
        (finding,) = result.findings
        assert finding.entity.username == "carol"
        assert finding.entity_key == "user:carol"
        assert finding.counts.distinct_ips == failures


def test_r2_watches_the_common_name_when_there_is_no_username() -> None:
    log = ConnectionLog()
    events = [
        log.failure(index * 60, ip=f"198.51.100.{index}", user=None, common_name="laptop-7")
        for index in range(5)
    ]

    (finding,) = observe(log, events).findings

    assert finding.rule_id == "R2"
    assert finding.entity.common_name == "laptop-7"
    assert finding.entity.username is None


# ------------------------------------------------------------------------------------------------ R3
def distributed(log: ConnectionLog, failures: int, addresses: int) -> list[dict[str, Any]]:
    """Failures for one user every 3 minutes (never 5 in 10 min), rotating over ``addresses``."""
    return [
        log.failure(index * 180, ip=f"192.0.2.{index % addresses}", user="dave") for index in range(failures)
    ]


@pytest.mark.parametrize(
    ("failures", "addresses", "fires"),
    [(10, 5, True), (11, 6, True), (9, 5, False), (10, 4, False)],
)
def test_r3_distributed_attack_on_a_user(failures: int, addresses: int, fires: bool) -> None:
    """R3 needs both >= 10 failures and >= 5 addresses for one user within 30 minutes."""
    log = ConnectionLog()

    result = observe(log, distributed(log, failures, addresses))

    assert rules(result) == (["R3"] if fires else [])
    if fires:
        (finding,) = result.findings
        assert finding.severity == "HIGH"
        assert finding.counts.failures == failures
        assert finding.counts.distinct_ips == addresses
        assert finding.mitre == ["T1110.001", "T1110.004"]


# ------------------------------------------------------------------------------------------------ R4
@pytest.mark.parametrize(("users", "fires"), [(4, False), (5, True), (7, True)])
def test_r4_password_spray_threshold(users: int, fires: bool) -> None:
    """Distinct users failing from one address in 10 min (R1 is off to watch R4 alone)."""
    log = ConnectionLog()
    events = [log.failure(index * 60, user=f"user{index}") for index in range(users)]

    result = observe(log, events, settings=DetectionSettings(enabled_rules=("R4",)))

    assert rules(result) == (["R4"] if fires else [])
    if fires:
        (finding,) = result.findings
        assert finding.severity == "HIGH"
        assert finding.counts.distinct_users == users
        assert finding.mitre == ["T1110.003"]
        assert finding.entity.username is None  # several users: none singled out


def test_r4_with_default_rules_also_fires_r1() -> None:
    log = ConnectionLog()
    events = [log.failure(index * 60, user=f"user{index}") for index in range(5)]

    assert rules(observe(log, events)) == ["R1", "R4"]


def test_r4_counts_distinct_users_not_failures() -> None:
    log = ConnectionLog()
    events = [log.failure(index * 30, user=two_users(index)) for index in range(12)]

    assert "R4" not in rules(observe(log, events))


# ------------------------------------------------------------------------------------------------ R5
@pytest.mark.parametrize(("users", "fires"), [(9, False), (10, True), (11, True)])
def test_r5_slow_spray_across_runs(users: int, fires: bool) -> None:
    """One user an hour from one address, each in its own ingestion run: R5 at ten within 24 h."""
    log = ConnectionLog()
    detector = Detector(DetectionSettings(), InMemoryDetectionState())
    found = []
    for index in range(users):
        result = observe(log, [log.failure(index * 3600, user=f"user{index}")], detector=detector)
        found.extend(result.findings)

    assert {finding.rule_id for finding in found} == ({"R5"} if fires else set())
    if fires:
        # The eleventh user comes an hour (the cooldown) after the tenth: an update of the same finding.
        assert len({finding.finding_id for finding in found}) == 1
        assert len(found) == users - 9
        assert [finding.counts.distinct_users for finding in found] == list(range(10, users + 1))
        assert {finding.severity for finding in found} == {"MEDIUM"}
        assert found[0].window.start == log.at(0)


def test_r5_forgets_users_older_than_a_day() -> None:
    log = ConnectionLog()
    detector = Detector(DetectionSettings(), InMemoryDetectionState())
    found = []
    for index in range(10):
        found += observe(
            log, [log.failure(index * 3 * 3600, user=f"user{index}")], detector=detector
        ).findings

    assert found == []


# ------------------------------------------------------------------------------------------------ R6
def r1_attack(log: ConnectionLog, start: float = 0) -> list[dict[str, Any]]:
    return [log.failure(start + index * 30, user=two_users(index)) for index in range(5)]


def test_r6_success_after_an_attack_is_critical() -> None:
    log = ConnectionLog()
    detector = Detector(DetectionSettings(), InMemoryDetectionState())
    observe(log, r1_attack(log), detector=detector)

    result = observe(
        log, [log.success(20 * 60, user="alice", connection_id="cvpn-connection-in")], detector=detector
    )

    (finding,) = result.findings
    assert finding.rule_id == "R6"
    assert finding.severity == "CRITICAL"
    assert finding.entity.device_ip == "203.0.113.7"
    assert finding.entity.username == "alice"
    assert finding.counts.failures == 5  # the attack it follows
    assert finding.sample_connection_ids[0] == "cvpn-connection-in"  # then the attack's samples
    assert len(finding.sample_connection_ids) == 6


@pytest.mark.parametrize(("seconds", "fires"), [(29 * 60, True), (31 * 60 + 120, False)])
def test_r6_window_after_the_last_fire(seconds: float, fires: bool) -> None:
    log = ConnectionLog()
    events = [*r1_attack(log), log.success(120 + seconds, user="alice")]

    assert ("R6" in rules(observe(log, events))) is fires


def test_r6_ignores_a_session_that_started_before_the_attack() -> None:
    """A periodic re-log of a session begun before the attack is not a success after it."""
    log = ConnectionLog()
    events = [*r1_attack(log, start=600), log.success(900, user="alice", started=0)]

    assert rules(observe(log, events)) == ["R1"]


def test_r6_after_a_user_attack_from_another_address() -> None:
    log = ConnectionLog()
    attack = [log.failure(index * 60, ip=f"198.51.100.{index}", user="carol") for index in range(5)]
    events = [*attack, log.success(600, ip="192.0.2.200", user="carol")]

    result = observe(log, events)

    assert rules(result) == ["R2", "R6"]
    r6 = next(finding for finding in result.findings if finding.rule_id == "R6")
    assert r6.entity_key == "user:carol"
    assert r6.entity.device_ip == "192.0.2.200"


def test_r6_once_per_successful_connection_when_source_and_user_both_fire() -> None:
    log = ConnectionLog()
    attack = [log.failure(index * 30, user="alice") for index in range(5)]  # R1 and R2
    events = [*attack, log.success(600, user="alice")]

    result = observe(log, events)

    assert rules(result) == ["R1", "R2", "R6"]
    assert next(f for f in result.findings if f.rule_id == "R6").entity_key == "device_ip:203.0.113.7"


# ------------------------------------------------------------------------------------------------ R7
@pytest.mark.parametrize(
    ("reason", "fires"),
    [
        ("authorization-policy-deny", True),
        ("client-connect-failed", True),
        ("signature-invalid", True),
        ("tenant-mismatch", True),
        ("token-expired", False),
        ("authentication-failed", False),
    ],
)
def test_r7_single_notable_reasons(reason: str, fires: bool) -> None:
    log = ConnectionLog()

    result = observe(log, [log.failure(0, reason=reason)])

    assert rules(result) == (["R7"] if fires else [])
    if fires:
        assert result.findings[0].severity == "LOW"
        assert result.findings[0].failure_reasons == [reason]


def test_r7_without_a_device_ip_follows_the_user() -> None:
    log = ConnectionLog()

    (finding,) = observe(log, [log.failure(0, ip=None, reason="authorization-policy-deny")]).findings

    assert (finding.rule_id, finding.entity_key) == ("R7", "user:joe")


# ------------------------------------------------------------------------------------------------ health
def test_handler_malfunctions_are_health_issues_not_attacks() -> None:
    """Six handler time-outs from one address: a health issue, no R1, no failures counted for rules."""
    log = ConnectionLog()
    events = [log.failure(index * 10, reason="client-connect-handler-timed-out") for index in range(6)]
    events.append(log.failure(70, reason="client-connect-handler-throttled"))

    result = observe(log, events)

    assert result.findings == []
    assert [(issue.reason, issue.count) for issue in result.health] == [
        ("client-connect-handler-throttled", 1),
        ("client-connect-handler-timed-out", 6),
    ]
    assert result.health[1].first_seen == log.at(0)
    assert result.health[1].last_seen == log.at(50)
    assert result.stats.health_failures == 7
    assert result.stats.failures == 0
    assert len(result.failures) == 7  # every failed attempt is still reported once


# ------------------------------------------------------------------------------------------------ runs
def test_windows_span_ingestion_runs() -> None:
    """Three failures in one run and two in the next (new detector, same store): R1 fires."""
    log = ConnectionLog()
    store = InMemoryDetectionState()
    first = observe(log, r1_attack(log)[:3], detector=Detector(DetectionSettings(), store))
    second = observe(log, [log.failure(100, user="alice"), log.failure(130, user="bob")],
                     detector=Detector(DetectionSettings(), store))  # fmt: skip

    assert first.findings == []
    assert rules(second) == ["R1"]
    assert second.findings[0].window.start == log.at(0)
    assert second.findings[0].counts.failures == 5


def test_periodic_relogs_of_one_connection_count_once() -> None:
    """The same failed connection logged five times (within and across runs) is one failure."""
    log = ConnectionLog()
    store = InMemoryDetectionState()
    relogs = [log.failure(index * 30, connection_id="cvpn-connection-same") for index in range(5)]

    first = observe(log, relogs[:3], detector=Detector(DetectionSettings(), store))
    second = observe(log, relogs[3:], detector=Detector(DetectionSettings(), store))

    assert first.findings == [] and second.findings == []
    assert first.stats.failures == 1 and first.stats.duplicates_in_run == 2
    assert len(first.failures) == 1
    assert second.stats.duplicates_across_runs == 2  # skipped by the source and the user
    assert second.stats.records_written == 0


def test_replaying_a_run_counts_nothing_twice() -> None:
    log = ConnectionLog()
    store = InMemoryDetectionState()
    events = r1_attack(log)

    first = observe(log, events, detector=Detector(DetectionSettings(), store))
    again = observe(log, events, detector=Detector(DetectionSettings(), store))

    assert rules(first) == ["R1"]
    assert again.findings == [] and again.stats.fires == 0


def test_late_event_counts_in_its_own_time() -> None:
    """A failure that arrives in a later run but happened inside the window still counts."""
    log = ConnectionLog()
    detector = Detector(DetectionSettings(), InMemoryDetectionState())
    attack = r1_attack(log)

    observe(log, [attack[0], attack[1], attack[3], attack[4]], detector=detector)
    late = observe(log, [attack[2]], detector=detector)

    assert rules(late) == ["R1"]
    assert late.findings[0].counts.failures == 5


def test_relogs_of_sessions_judged_in_earlier_runs_are_not_read_again() -> None:
    """A run of periodic re-logs of a session that started long before the run reads nothing."""
    log = ConnectionLog()
    store = InMemoryDetectionState()
    observe(log, r1_attack(log), detector=Detector(DetectionSettings(), store))
    reads = store.reads

    relog = observe(log, [log.success(7200, user="alice", started=3000)],
                    detector=Detector(DetectionSettings(), store))  # fmt: skip
    reads_for_relog = store.reads - reads
    fresh = observe(log, [log.success(7300, user="alice", started=7290)],
                    detector=Detector(DetectionSettings(), store))  # fmt: skip

    assert relog.findings == [] and relog.stats.entities == 0 and reads_for_relog == 0
    assert fresh.findings == [] and fresh.stats.entities == 2  # a new connection: source and user read


# ------------------------------------------------------------------------------- whom an attack names
def test_a_user_attack_names_the_addresses_it_came_from() -> None:
    """R3 (and R2) report the addresses the failures came from: what the response blocks."""
    log = ConnectionLog()

    result = observe(log, distributed(log, 10, 5))

    (r3,) = result.findings
    assert r3.attack_sources == [f"192.0.2.{index}" for index in range(5)]


@pytest.mark.parametrize(("success_ip", "took_part"), [("192.0.2.3", True), ("198.51.100.20", False)])
def test_r6_of_a_user_says_whether_the_success_came_from_the_attack(success_ip: str, took_part: bool) -> None:
    """R6 after an attack on a user carries the attack's addresses, not the success's own one unless
    it took part: a success from an attacking address is evidence the attacker got in; one from
    elsewhere is most likely the person attacked."""
    log = ConnectionLog()
    events = [*distributed(log, 10, 5), log.success(1900, ip=success_ip, user="dave")]

    result = observe(log, events)

    r6 = next(finding for finding in result.findings if finding.rule_id == "R6")
    assert r6.entity_key == "user:dave" and r6.source_ip == success_ip
    assert r6.attack_sources == [f"192.0.2.{index}" for index in range(5)]
    assert r6.success_from_attack_source is took_part


def test_an_allow_listed_user_is_exempt_from_r3() -> None:
    log = ConnectionLog()

    result = observe(log, distributed(log, 10, 5), settings=DetectionSettings(allowlist_users=("dave",)))

    (r3,) = result.findings
    assert r3.rule_id == "R3" and r3.allowlisted


def test_an_address_the_handler_only_refused_is_not_an_attacking_address() -> None:
    """Given an attack on dave, then dave refused by the client-connect handler at his office (he
    was blocked outright), when R3 fires again, then the office is not among the attack's addresses:
    a refusal by the handler is no evidence of an attack from there."""
    log = ConnectionLog()
    refused = log.failure(1700, ip="198.51.100.20", user="dave", reason="client-connect-failed")

    result = observe(log, [*distributed(log, 10, 5), refused], settings=DetectionSettings(cooldown_seconds=0))

    r3 = [finding for finding in result.findings if finding.rule_id == "R3"][-1]
    assert r3.counts.distinct_ips == 6
    assert r3.attack_sources == [f"192.0.2.{index}" for index in range(5)]
