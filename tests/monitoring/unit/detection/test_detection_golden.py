"""What the detector decides over random workloads stays what it was when the digests were taken.

A regression oracle for work on the rules' hot loops (which are written for speed, not for reading):
each case runs a random workload through ``Detector.observe`` run by run, with and without the warm
record cache, and digests every finding (all its fields), every health issue, every run's stats and,
at the end, every stored entity record. The digests in ``golden_detection.json`` were taken from
the code before such a change; a change of behaviour on purpose takes new ones:

    CVPN_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/monitoring/unit/detection/test_detection_golden.py

The workloads: ``mixed_runs`` (typos, brute force, sprays, successes and re-logs, notable reasons,
events delivered again) and ``flood_runs`` below (every event a failure from sources spraying many
users, late events older than what earlier runs counted, gaps long enough to close episodes and to
pass the cooldown, successes after the attack), under settings that change thresholds, windows,
cooldown, allow-lists and bounds.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cvpn_shared.monitoring.detection.detector import DetectionSettings, Detector
from cvpn_shared.monitoring.detection.entity_store import InMemoryDetectionState
from cvpn_shared.monitoring.detection.record_cache import RecordCache
from cvpn_shared.monitoring.findings import Finding
from tests.fixtures.connection_logs import ConnectionLog, mixed_runs

GOLDEN = Path(__file__).with_name("golden_detection.json")

SETTINGS: dict[str, DetectionSettings] = {
    "defaults": DetectionSettings(),
    "short-cooldown": DetectionSettings(cooldown_seconds=300, recurrence_window_seconds=7200),
    "allow-lists": DetectionSettings(
        allowlist_cidrs=("198.51.100.0/29",), allowlist_users=("user1", "user2")
    ),
    "small-bounds": DetectionSettings(
        max_window_events=10, r3_failures=10, r3_distinct_ips=2, r5_distinct_users=3, max_tracked_values=4
    ),
    "low-thresholds": DetectionSettings(
        r1_failures=2,
        r2_failures=2,
        r4_distinct_users=2,
        r5_distinct_users=3,
        r3_distinct_ips=2,
        r3_failures=3,
    ),
    "some-rules": DetectionSettings(enabled_rules=("R2", "R3", "R5", "R6")),
    "short-windows": DetectionSettings(
        r1_window_seconds=120,
        r2_window_seconds=120,
        r3_window_seconds=300,
        r4_window_seconds=120,
        r5_window_seconds=600,
        r6_window_seconds=300,
        cooldown_seconds=600,
    ),
}


def flood_runs(seed: int) -> list[list[dict[str, Any]]]:
    """Runs in which nearly every event is a failure: sources spraying users, late events, gaps."""
    rng = random.Random(seed)
    log = ConnectionLog()
    sources = [f"198.51.100.{index}" for index in range(1, 40)]
    users = [f"user{index}" for index in range(30)]
    runs: list[list[dict[str, Any]]] = []
    clock = 0.0
    for _ in range(16):
        clock += rng.choice((60.0, 60.0, 300.0, 900.0, 4000.0))
        events: list[dict[str, Any]] = []
        for _ in range(rng.randrange(50, 400)):
            at = clock + rng.uniform(0, 120)
            if rng.random() < 0.1:
                at -= rng.uniform(120, 1500)  # late: older than what an earlier run counted
            roll = rng.random()
            ip = rng.choice(sources[:8] if roll < 0.5 else sources)
            user = rng.choice(users[:5] if roll < 0.3 else users)
            if roll < 0.93:
                reason = "authentication-failed" if rng.random() < 0.97 else "client-connect-failed"
                events.append(log.failure(max(at, 0.0), ip=ip, user=user, reason=reason))
            else:
                events.append(log.success(max(at, 0.0), ip=ip, user=user))
        runs.append(events)
    return runs


WORKLOADS = {"mixed": mixed_runs, "flood": flood_runs}


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _outcome(settings: DetectionSettings, runs: list[list[dict[str, Any]]], *, warm: bool) -> dict[str, str]:
    log = ConnectionLog()
    store = InMemoryDetectionState()
    cache = RecordCache() if warm else None
    decided = []
    for events in runs:
        attempts = log.attempts(events)
        now = max(attempt.timestamp for attempt in attempts) + timedelta(minutes=1)
        result = Detector(settings, store, cache=cache).observe(attempts, now=now)
        stats = asdict(result.stats)
        # The only figures the cache may change: it saves reads, and skips success-only entities
        # it holds as not armed (``entities`` counts the entities a run looked at).
        stats.pop("records_read")
        stats.pop("entities")
        for finding in result.findings:  # built without validation: each must be valid
            assert Finding.model_validate(finding.model_dump()) == finding
        decided.append(
            {
                "findings": [finding.model_dump(mode="json") for finding in result.findings],
                "health": [issue.event_detail() for issue in result.health],
                "stats": stats,
            }
        )
    records = {key: store.snapshot(key) for key in sorted(store.records)}
    return {"runs": _digest(decided), "records": _digest(records)}


CASES = [(workload, name, seed) for workload in WORKLOADS for name in SETTINGS for seed in (1, 2)]


def _case_id(workload: str, name: str, seed: int) -> str:
    return f"{workload}/{name}/{seed}"


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    if os.environ.get("CVPN_UPDATE_GOLDEN") == "1":
        taken = {
            _case_id(*case): _outcome(SETTINGS[case[1]], WORKLOADS[case[0]](case[2]), warm=False)
            for case in CASES
        }
        GOLDEN.write_text(json.dumps(taken, indent=1, sort_keys=True) + "\n")
    return json.loads(GOLDEN.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(("workload", "name", "seed"), CASES, ids=[_case_id(*case) for case in CASES])
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_detection_decides_as_the_digests_say(
    golden: dict[str, Any], workload: str, name: str, seed: int, warm: bool
) -> None:
    runs = WORKLOADS[workload](seed)
    assert _outcome(SETTINGS[name], runs, warm=warm) == golden[_case_id(workload, name, seed)]


def test_the_flood_workload_makes_every_rule_fire() -> None:
    """The oracle is only as good as its workloads: the flood must exercise R1-R7 and late events."""
    log = ConnectionLog()
    store = InMemoryDetectionState()
    fired: set[str] = set()
    for events in flood_runs(1):
        attempts = log.attempts(events)
        now = max(attempt.timestamp for attempt in attempts) + timedelta(minutes=1)
        result = Detector(DetectionSettings(), store).observe(attempts, now=now)
        fired |= {finding.rule_id for finding in result.findings}
    assert fired == {"R1", "R2", "R3", "R4", "R5", "R6", "R7"}
