"""Cooldown, recurrence (escalation), allow-list and stable finding ids, across runs and processes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

from cvpn_shared.monitoring.detection.detector import (
    DetectionResult,
    DetectionSettings,
    Detector,
    InMemoryDetectionState,
)
from cvpn_shared.monitoring.findings import Finding, finding_id
from tests.fixtures import REPO_ROOT
from tests.fixtures.connection_logs import ConnectionLog

ROOT = REPO_ROOT


class Runs:
    """One detector over one store, fed run by run."""

    def __init__(self, settings: DetectionSettings | None = None) -> None:
        self.log = ConnectionLog()
        self.store = InMemoryDetectionState()
        self.settings = settings or DetectionSettings()

    def run(self, events: list[dict[str, Any]]) -> DetectionResult:
        attempts = self.log.attempts(events)
        now = max(attempt.timestamp for attempt in attempts) + timedelta(minutes=1)
        return Detector(self.settings, self.store).observe(attempts, now=now)

    def burst(
        self, start: float, *, failures: int = 5, ip: str = "203.0.113.7", users: tuple[str, ...] = ("a", "b")
    ) -> list[dict[str, Any]]:
        """``failures`` failures 30 s apart from ``ip``, cycling over ``users`` (R1 only by default)."""
        return [
            self.log.failure(start + index * 30, ip=ip, user=users[index % len(users)])
            for index in range(failures)
        ]


def only(result: DetectionResult, rule_id: str) -> list[Finding]:
    return [finding for finding in result.findings if finding.rule_id == rule_id]


# ------------------------------------------------------------------------------------------ cooldown
def test_fire_inside_the_cooldown_is_suppressed_but_counted() -> None:
    """Given R1 fired, more failures 10 min later fire again inside the cooldown: nothing published,
    and when it publishes after the cooldown, the same finding carries every failure since."""
    runs = Runs()
    first = runs.run(runs.burst(0))
    second = runs.run(runs.burst(600))
    third = runs.run(runs.burst(3700))

    (opened,) = only(first, "R1")
    assert second.findings == []
    assert second.stats.suppressed >= 1
    (updated,) = only(third, "R1")
    assert updated.finding_id == opened.finding_id
    assert updated.counts.failures == 15
    assert updated.window.start == opened.window.start
    assert not updated.escalated


def test_one_finding_per_rule_and_entity_per_run() -> None:
    runs = Runs()
    result = runs.run(runs.burst(0, failures=40))

    assert len(only(result, "R1")) == 1
    assert only(result, "R1")[0].counts.failures == 40
    assert len(only(result, "R1")[0].sample_connection_ids) == 20


# ------------------------------------------------------------------------------------------ recurrence
def test_recurrence_within_a_day_raises_severity_one_step() -> None:
    """R1 again after a quiet gap longer than the cooldown: a new episode (new id), escalated."""
    runs = Runs()
    first = only(runs.run(runs.burst(0)), "R1")[0]
    second = only(runs.run(runs.burst(2 * 3600)), "R1")[0]
    third = only(runs.run(runs.burst(4 * 3600)), "R1")[0]

    assert (first.severity, first.escalated, first.occurrence) == ("MEDIUM", False, 1)
    assert (second.severity, second.escalated, second.occurrence) == ("HIGH", True, 2)
    assert (third.severity, third.escalated, third.occurrence) == ("HIGH", True, 3)  # one step by default
    assert len({first.finding_id, second.finding_id, third.finding_id}) == 3


def test_escalation_steps_are_capped_at_critical() -> None:
    runs = Runs(DetectionSettings(max_escalation_steps=3))
    severities = [only(runs.run(runs.burst(hour * 3600)), "R1")[0].severity for hour in range(0, 10, 2)]

    assert severities == ["MEDIUM", "HIGH", "CRITICAL", "CRITICAL", "CRITICAL"]


def test_no_escalation_after_more_than_a_day() -> None:
    runs = Runs()
    runs.run(runs.burst(0))
    later = only(runs.run(runs.burst(26 * 3600)), "R1")[0]

    assert (later.severity, later.escalated, later.occurrence) == ("MEDIUM", False, 1)


# ------------------------------------------------------------------------------------------ allow-list
def test_allowlisted_cidr_still_records_the_finding() -> None:
    runs = Runs(DetectionSettings(allowlist_cidrs=("10.0.0.0/8",)))

    (finding,) = runs.run(runs.burst(0, ip="10.20.30.40")).findings

    assert finding.rule_id == "R1"
    assert finding.allowlisted is True
    assert finding.event_detail()["allowlisted"] is True


def test_source_outside_the_cidrs_is_not_allowlisted() -> None:
    runs = Runs(DetectionSettings(allowlist_cidrs=("10.0.0.0/8",)))

    (finding,) = runs.run(runs.burst(0, ip="11.0.0.1")).findings

    assert finding.allowlisted is False


def test_exempt_user_allowlists_r1_and_r2() -> None:
    """A service account failing from one address: R1 and R2 fire allow-listed."""
    runs = Runs(DetectionSettings(allowlist_users=("svc-backup",)))

    result = runs.run(runs.burst(0, users=("svc-backup",)))

    assert sorted((f.rule_id, f.allowlisted) for f in result.findings) == [("R1", True), ("R2", True)]


def test_exempt_user_does_not_cover_other_users_of_the_source() -> None:
    runs = Runs(DetectionSettings(allowlist_users=("svc-backup",)))

    (finding,) = runs.run(runs.burst(0, users=("svc-backup", "mallory"))).findings

    assert (finding.rule_id, finding.allowlisted) == ("R1", False)


def test_r4_and_r5_are_never_exempted_by_user() -> None:
    """Spraying only exempted users: R4 is not allow-listed (R1 is, every failure is exempt)."""
    users = tuple(f"svc-{index}" for index in range(5))
    runs = Runs(DetectionSettings(allowlist_users=users))

    result = runs.run(runs.burst(0, users=users))

    assert sorted((f.rule_id, f.allowlisted) for f in result.findings) == [("R1", True), ("R4", False)]


def test_r4_is_exempted_by_cidr() -> None:
    runs = Runs(DetectionSettings(allowlist_cidrs=("192.0.2.0/24",)))
    users = tuple(f"user{index}" for index in range(5))

    result = runs.run(runs.burst(0, ip="192.0.2.9", users=users))

    assert sorted((f.rule_id, f.allowlisted) for f in result.findings) == [("R1", True), ("R4", True)]


def test_allowlisted_episode_publishes_again_when_it_stops_being_allowlisted() -> None:
    """R2 on an exempt user fired allow-listed; a failure of that user from outside the CIDR makes it
    a real finding again, inside the cooldown."""
    runs = Runs(DetectionSettings(allowlist_cidrs=("10.0.0.0/8",)))
    first = runs.run([runs.log.failure(index * 10, ip=f"10.0.0.{index}", user="eve") for index in range(5)])
    second = runs.run([runs.log.failure(100, ip="198.51.100.1", user="eve")])

    assert [(f.rule_id, f.allowlisted) for f in first.findings] == [("R2", True)]
    assert [(f.rule_id, f.allowlisted) for f in second.findings] == [("R2", False)]
    assert first.findings[0].finding_id == second.findings[0].finding_id


# ------------------------------------------------------------------------------------------ identity
def test_finding_id_is_sha256_of_rule_endpoint_entity_and_window_start() -> None:
    runs = Runs()
    (finding,) = runs.run(runs.burst(0)).findings

    assert finding.finding_id == finding_id(
        "R1", runs.log.endpoint_id, "device_ip:203.0.113.7", runs.log.at(0)
    )
    assert len(finding.finding_id) == 64
    assert finding.finding_id == finding_id(
        "R1", runs.log.endpoint_id, "device_ip:203.0.113.7", runs.log.at(0) + timedelta(microseconds=400)
    )  # milliseconds, as the log gives them


def test_same_events_in_one_run_or_three_give_the_same_id() -> None:
    one = Runs()
    events = one.burst(0, failures=7)
    (single,) = one.run(events).findings

    three = Runs()
    three.log = one.log
    found = [f for chunk in (events[:2], events[2:5], events[5:]) for f in three.run(chunk).findings]

    assert {f.finding_id for f in found} == {single.finding_id}


_OTHER_PROCESS = """
import json, sys
from datetime import timedelta
from cvpn_shared.monitoring.detection.detector import DetectionSettings, Detector, InMemoryDetectionState
from cvpn_shared.monitoring.attempts import parse_events
attempts, _ = parse_events(json.load(sys.stdin))
result = Detector(DetectionSettings(), InMemoryDetectionState()).observe(
    attempts, now=max(a.timestamp for a in attempts) + timedelta(minutes=1))
print(json.dumps(sorted(f.finding_id for f in result.findings)))
"""


def test_finding_ids_are_stable_across_processes() -> None:
    """Another interpreter (its own hash seed) computes the same ids for the same events."""
    runs = Runs()
    events = [
        *runs.burst(0, users=tuple(f"u{index}" for index in range(5))),
        runs.log.success(400, user="u1"),
    ]
    here = sorted(f.finding_id for f in runs.run(events).findings)

    answer = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "layers/shared/python"), "PYTHONHASHSEED": "12345"},
    )

    assert json.loads(answer.stdout) == here
    assert len(here) == 3  # R1, R4, R6


# ------------------------------------------------------------------------------------------ state
def test_records_expire_and_are_then_forgotten() -> None:
    """Each write sets the record's expiry; an expired record is not read (a new episode starts)."""
    runs = Runs()
    runs.run(runs.burst(0, failures=4))
    key = f"{runs.log.endpoint_id}#device_ip#203.0.113.7"
    _, _, expires_at, _ = runs.store.records[key]
    ttl = runs.settings.state_ttl_seconds
    assert expires_at == int(runs.log.at(60 + 90).timestamp()) + ttl  # now = last failure + 1 min

    later = runs.log.at(0) + timedelta(seconds=ttl + 3600)
    attempts = runs.log.attempts([runs.log.failure((later - runs.log.start).total_seconds(), user="a")])
    result = Detector(runs.settings, runs.store).observe(attempts, now=later)

    assert result.findings == []
    record = runs.store.snapshot(key)
    assert record is not None
    assert record["seen"] != {}  # rewritten from scratch over the expired record
    assert len(record["recent"]) == 1


def test_writes_grow_with_entities_not_events() -> None:
    runs = Runs()
    events = [
        runs.log.failure(index, ip=f"198.51.100.{index % 7}", user=f"user{index % 3}") for index in range(300)
    ]

    result = runs.run(events)

    assert result.stats.entities == 7 + 3
    assert runs.store.writes == 10
    assert result.stats.records_written == 10


@pytest.mark.parametrize("interleaved_runs", [1, 2])
def test_concurrent_runs_on_one_store_lose_nothing(interleaved_runs: int) -> None:
    """Other runs write between run A's read and write (once, or again during A's retry): A's write
    conflicts, A reads again and re-applies its events; every failure is counted once."""
    log = ConnectionLog()
    store = InMemoryDetectionState()
    settings = DetectionSettings()
    events_a = [log.failure(index * 20, user="a") for index in range(3)]
    others = [log.attempts([log.failure(100 + run * 20, user="b")]) for run in range(interleaved_runs)]
    now = log.at(600)

    class Interleaving:
        """The store, with another run slipped in right after each of A's reads."""

        def load(self, keys: Any, *, now_epoch: int) -> Any:
            found = store.load(keys, now_epoch=now_epoch)
            if others:
                Detector(settings, store).observe(others.pop(0), now=now)
            return found

        def save(self, writes: Any, *, now_epoch: int) -> list[str]:
            return store.save(writes, now_epoch=now_epoch)

        def advance_generation(self) -> tuple[str | None, str]:
            return store.advance_generation()

    result_a = Detector(settings, Interleaving()).observe(log.attempts(events_a), now=now)

    record = store.snapshot(f"{log.endpoint_id}#device_ip#203.0.113.7")
    assert record is not None and len(record["seen"]) == 3 + interleaved_runs
    assert len(record["recent"]) == 3 + interleaved_runs
    assert result_a.stats.write_conflicts == interleaved_runs  # only the shared source's record
    if interleaved_runs == 2:
        # A applied its three failures last, on top of the other two: A's run completes R1.
        assert [f.rule_id for f in result_a.findings] == ["R1"]
        assert result_a.findings[0].counts.failures == 5


def test_records_stay_bounded() -> None:
    """A flood from one source keeps its record small: newest attempts, the window's failures."""
    runs = Runs(DetectionSettings(max_seen_attempts=10, max_window_events=12, dedup_horizon_seconds=600))
    runs.run([runs.log.failure(index * 5, user=f"u{index % 40}") for index in range(200)])

    record = runs.store.snapshot(f"{runs.log.endpoint_id}#device_ip#203.0.113.7")
    assert record is not None
    assert len(record["seen"]) == 10
    assert min(record["seen"].values()) == int(runs.log.at(190 * 5).timestamp() * 1000)
    assert len(record["recent"]) == 12
    assert len(record["distinct"]) == 10  # as many users as R4/R5 need
    assert len(record["episodes"]["R1"]["samples"]) == 20
