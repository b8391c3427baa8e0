"""The shortcut for runs in which no rule can fire (``EntityRecord._quiet``) leaves every record and
finding exactly as the rules' loop does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cvpn_shared.monitoring.detection.detector import DetectionResult, DetectionSettings, Detector
from cvpn_shared.monitoring.detection.entities import EntityRecord
from cvpn_shared.monitoring.detection.entity_store import InMemoryDetectionState
from tests.fixtures.connection_logs import ConnectionLog, mixed_runs

SETTINGS = [
    DetectionSettings(),
    DetectionSettings(max_window_events=10, r3_failures=10, r3_distinct_ips=2, r5_distinct_users=3),
    DetectionSettings(enabled_rules=("R2", "R4", "R6")),
    DetectionSettings(r1_failures=2, r2_failures=2, r4_distinct_users=2, r5_distinct_users=3),
]


def run(
    log: ConnectionLog, store: InMemoryDetectionState, settings: DetectionSettings, events: Any
) -> DetectionResult:
    attempts = log.attempts(events)
    now = max(attempt.timestamp for attempt in attempts) + timedelta(minutes=1)
    return Detector(settings, store).observe(attempts, now=now)


@pytest.mark.parametrize(
    "settings", SETTINGS, ids=["defaults", "small-bounds", "some-rules", "low-thresholds"]
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quiet_runs_end_as_the_rules_loop_ends_them(
    settings: DetectionSettings, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = ConnectionLog()
    runs = mixed_runs(seed)
    shortcut = InMemoryDetectionState()
    found = [[f.event_detail() for f in run(log, shortcut, settings, events).findings] for events in runs]
    quiet_runs = 0
    original = EntityRecord._quiet

    def never_quiet(record: EntityRecord, fresh: Any, successes: Any) -> bool:
        nonlocal quiet_runs
        quiet_runs += original(record, fresh, successes)
        return False

    monkeypatch.setattr(EntityRecord, "_quiet", never_quiet)
    rules = InMemoryDetectionState()
    expected = [[f.event_detail() for f in run(log, rules, settings, events).findings] for events in runs]

    assert found == expected
    assert {key: shortcut.snapshot(key) for key in shortcut.records} == {
        key: rules.snapshot(key) for key in rules.records
    }
    assert quiet_runs > 0  # the shortcut was taken


def test_a_notable_failure_is_never_quiet() -> None:
    log = ConnectionLog()
    result = run(
        log,
        InMemoryDetectionState(),
        DetectionSettings(),
        [log.failure(0, reason="authorization-policy-deny")],
    )
    assert [finding.rule_id for finding in result.findings] == ["R7"]
