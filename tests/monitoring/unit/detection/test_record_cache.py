"""The detector's warm record cache: same findings and records as without it, fewer reads, and never
believed after another process wrote (``cvpn_shared.monitoring.detection.record_cache``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cvpn_shared.monitoring.detection.detector import DetectionResult, DetectionSettings, Detector
from cvpn_shared.monitoring.detection.entity_store import InMemoryDetectionState
from cvpn_shared.monitoring.detection.record_cache import RecordCache
from tests.fixtures.connection_logs import ConnectionLog, mixed_runs

SOURCE = "203.0.113.7"


def run(
    log: ConnectionLog,
    store: Any,
    events: list[dict[str, Any]],
    cache: RecordCache | None = None,
    settings: DetectionSettings | None = None,
) -> DetectionResult:
    attempts = log.attempts(events)
    now = max(attempt.timestamp for attempt in attempts) + timedelta(minutes=1)
    return Detector(settings or DetectionSettings(), store, cache=cache).observe(attempts, now=now)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_findings_and_records_are_those_of_a_detector_without_cache(seed: int) -> None:
    log = ConnectionLog()
    plain, cached = InMemoryDetectionState(), InMemoryDetectionState()
    cache = RecordCache()
    findings = 0
    for events in mixed_runs(seed):
        expected = run(log, plain, events)
        got = run(log, cached, events, cache)
        assert [f.event_detail() for f in got.findings] == [f.event_detail() for f in expected.findings]
        findings += len(got.findings)
    assert findings > 0
    assert {key: cached.snapshot(key) for key in cached.records} == {
        key: plain.snapshot(key) for key in plain.records
    }
    assert {key: record[1:] for key, record in cached.records.items()} == {
        key: record[1:] for key, record in plain.records.items()
    }  # versions, expiries, armed_at
    assert cached.reads < plain.reads / 3


def test_a_warm_run_reads_only_entities_it_has_not_seen() -> None:
    log = ConnectionLog()
    store, cache = InMemoryDetectionState(), RecordCache()

    first = run(log, store, [log.failure(0, user="a"), log.success(10, ip="198.51.100.9", user="b")], cache)
    second = run(log, store, [log.failure(60, user="a"), log.failure(70, ip="198.51.100.3", user="c")], cache)

    assert first.stats.records_read == 4  # cold: the source and user of each attempt
    assert second.stats.records_read == 2  # 198.51.100.3 and c; the source 203.0.113.7 and a are known
    assert store.reads == 6


def test_successes_of_entities_known_never_armed_are_not_looked_at() -> None:
    log = ConnectionLog()
    store, cache = InMemoryDetectionState(), RecordCache()
    run(log, store, [log.success(0, ip="198.51.100.9", user="b")], cache)

    again = run(log, store, [log.success(300, ip="198.51.100.9", user="b")], cache)

    assert again.stats.entities == 0
    assert again.stats.records_read == 0


def test_a_success_after_an_attack_is_still_found_from_the_cache() -> None:
    log = ConnectionLog()
    store, cache = InMemoryDetectionState(), RecordCache()
    run(log, store, log.failures(0, 5, ip=SOURCE, user="mallory"), cache)  # R1 and R2: armed

    after = run(log, store, [log.success(120, ip=SOURCE, user="mallory")], cache)

    assert after.stats.records_read == 0
    assert [f.rule_id for f in after.findings] == ["R6"]


def test_another_writer_makes_the_cache_unbelieved_and_nothing_is_lost() -> None:
    """Given a warm process, when another process (no cache) writes between two of its runs, the next
    run reads every entity again, and the failures of all three runs count together (R1)."""
    log = ConnectionLog()
    store, cache = InMemoryDetectionState(), RecordCache()
    run(log, store, log.failures(0, 2, ip=SOURCE, user="a"), cache)
    run(log, store, log.failures(30, 2, ip=SOURCE, user="b"))  # another process

    third = run(log, store, [log.failure(60, ip=SOURCE, user="c")], cache)

    assert not cache.trusted
    assert third.stats.records_read == third.stats.entities == 2
    assert [f.rule_id for f in third.findings] == ["R1"]
    assert third.findings[0].counts.failures == 5


def test_a_record_changed_behind_the_cache_costs_a_conflict_not_a_count() -> None:
    """Given a cache entry gone stale without the generation moving (two runs on one entity at once,
    which the ingest's leases prevent), the write conflicts, the record is read again, and every
    failure counts once."""
    log = ConnectionLog()
    store, cache = InMemoryDetectionState(), RecordCache()
    run(log, store, log.failures(0, 2, ip=SOURCE, user="a"), cache)
    generation = store.generation
    run(log, store, log.failures(30, 2, ip=SOURCE, user="b"))  # another process ...
    store.generation = generation  # ... that left no trace in the generation

    third = run(log, store, [log.failure(60, ip=SOURCE, user="c")], cache)

    assert cache.trusted
    assert third.stats.write_conflicts == 1  # the source's record; c is new
    assert [f.rule_id for f in third.findings] == ["R1"]
    record = store.snapshot(f"{log.endpoint_id}#device_ip#{SOURCE}")
    assert record is not None and len(record["seen"]) == 5


def test_a_run_that_fails_empties_the_cache() -> None:
    log = ConnectionLog()
    store, cache = InMemoryDetectionState(), RecordCache()
    run(log, store, log.failures(0, 2, ip=SOURCE, user="a"), cache)
    assert len(cache) > 0

    class Failing(InMemoryDetectionState):
        def save(self, writes: Any, *, now_epoch: int) -> list[str]:
            raise RuntimeError("DynamoDB is down")

    failing = Failing(records=store.records, generation=store.generation)
    with pytest.raises(RuntimeError):
        run(log, failing, [log.failure(30, ip=SOURCE, user="b")], cache)

    assert len(cache) == 0
    again = run(log, store, [log.failure(30, ip=SOURCE, user="b")], cache)
    assert again.stats.records_read == again.stats.entities


def test_other_settings_empty_the_cache() -> None:
    log = ConnectionLog()
    store, cache = InMemoryDetectionState(), RecordCache()
    run(log, store, log.failures(0, 2, ip=SOURCE, user="a"), cache)

    changed = run(log, store, [log.failure(30, ip=SOURCE)], cache, DetectionSettings(r1_failures=3))

    assert changed.stats.records_read == changed.stats.entities
    assert [f.rule_id for f in changed.findings] == ["R1"]


def test_a_full_cache_starts_over_and_stays_right() -> None:
    log = ConnectionLog()
    plain, store, cache = InMemoryDetectionState(), InMemoryDetectionState(), RecordCache(capacity_bytes=4000)
    runs = [[log.failure(index * 20, ip=SOURCE, user=f"u{index}")] for index in range(6)]
    fired = []
    for events in runs:
        expected = run(log, plain, events)
        got = run(log, store, events, cache)
        assert cache.estimated_bytes <= 4000
        assert [f.event_detail() for f in got.findings] == [f.event_detail() for f in expected.findings]
        fired += [f.rule_id for f in got.findings]

    assert sorted(fired) == ["R1", "R4"]  # the fifth failure, the fifth user: both fire, once
