"""The ingest reads every connection-log event exactly once, across runs, pages, late arrivals and
overlapping invocations; it detects once per batch of pages (not once per page) and advances its
checkpoint only after publishing.

Given/When/Then in each docstring. The checkpoints live in (moto's) DynamoDB, so the conditional
writes are real; the log group, parser, detector and bus are small fakes.
"""

from __future__ import annotations

import threading
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from cvpn_shared.monitoring.dal.checkpoints import Checkpoint, CheckpointConflict, DynamoDbCheckpoints
from cvpn_shared.monitoring.dal.connection_logs import LogEventPage
from cvpn_shared.monitoring.ingest import DETAIL_TYPE, IngestReport, SeenEvents, failure_reason_dimension
from tests.monitoring.unit.ingest.conftest import (
    ENDPOINT_ID,
    LOG_GROUP,
    NOW,
    Clock,
    FakeAttempt,
    FakeDetectionResult,
    FakeLogGroup,
    RecordingBus,
    RecordingDetector,
    RemainingTime,
    make_ingest,
    millis,
    minutes,
    record,
)


@dataclass
class PassCountingDetector(RecordingDetector):
    """A RecordingDetector that also keeps the event ids of each detection pass (``observe`` call)."""

    passes: list[list[str]] = field(default_factory=list)

    def observe(self, attempts: Sequence[FakeAttempt], *, now: datetime) -> FakeDetectionResult:
        self.passes.append([attempt.event_id for attempt in attempts])
        return super().observe(attempts, now=now)

    @property
    def pass_sizes(self) -> list[int]:
        return [len(ids) for ids in self.passes]


def finding_ids(bus: RecordingBus) -> list[str]:
    """The findings published, in order (not the health issues)."""
    return [entry.detail["finding_id"] for entry in bus.published if entry.detail_type == DETAIL_TYPE]


def failing_on_read(logs: FakeLogGroup, read: int, error: Exception) -> None:
    """``logs`` raises ``error`` on its ``read``-th page read (counted from now), once."""
    original_read = logs.read_page
    reads = 0

    def read_page(*args, **kwargs) -> LogEventPage:  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        if reads == read:
            raise error
        return original_read(*args, **kwargs)

    logs.read_page = read_page  # type: ignore[method-assign]


def test_first_run_reads_the_lookback_and_publishes_findings(checkpoints: DynamoDbCheckpoints) -> None:
    """Given events before and within the first run's look-back, when the ingest runs, then only the
    recent ones are observed, findings go to the bus with the spec's shape, and the checkpoint sits
    at the newest event."""
    logs = FakeLogGroup()
    logs.put(NOW - minutes(90), record("old"))
    recent = [logs.put(NOW - minutes(10 - i), record(f"attacker{i}")) for i in range(3)]
    detector, bus = RecordingDetector(), RecordingBus()

    report = make_ingest(logs, checkpoints, detector=detector, bus=bus).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )

    assert detector.observed_ids == recent
    assert [entry.detail["finding_id"] for entry in bus.published] == [f"finding-{i}" for i in recent]
    entry = bus.published[0]
    assert entry.source == "example.clientvpn.monitor" and entry.detail_type == DETAIL_TYPE
    assert entry.resources == (f"arn:aws:ec2:us-east-1:123456789012:client-vpn-endpoint/{ENDPOINT_ID}",)
    assert report.log_groups[0].complete
    assert report.failed_attempts == Counter({(ENDPOINT_ID, "auth-failed"): 3})
    stored = checkpoints.load(LOG_GROUP)
    assert stored.position_ms == millis(NOW - minutes(8))
    assert stored.page_token is None and stored.lease_until_ms == 0


def test_overlap_rereads_drop_duplicates_and_catch_late_events(checkpoints: DynamoDbCheckpoints) -> None:
    """Given a processed log group, when events arrive (one on time, one late but within the overlap,
    one later than the overlap allows), then the next run processes the on-time and late ones once,
    drops every re-read event by id, and (documented limit) never sees the one older than the overlap."""
    logs = FakeLogGroup()
    first = [logs.put(NOW - minutes(5 - i), record(f"user{i}")) for i in range(5)]
    make_ingest(logs, checkpoints).run([LOG_GROUP], now=NOW, remaining_ms=RemainingTime())

    on_time = logs.put(NOW + minutes(1), record("ontime"))
    late = logs.put(NOW - minutes(12), record("late"))
    logs.put(NOW - minutes(30), record("too-late"))
    detector = RecordingDetector()
    report = make_ingest(logs, checkpoints, detector=detector).run(
        [LOG_GROUP], now=NOW + minutes(2), remaining_ms=RemainingTime()
    )

    assert sorted(detector.observed_ids) == sorted([on_time, late])
    assert report.log_groups[0].duplicates == len(first)

    third = RecordingDetector()
    make_ingest(logs, checkpoints, detector=third).run(
        [LOG_GROUP], now=NOW + minutes(3), remaining_ms=RemainingTime()
    )
    assert third.observed_ids == []


def test_events_sharing_a_millisecond_are_all_read(checkpoints: DynamoDbCheckpoints) -> None:
    """Given several events in the checkpoint's millisecond, when more arrive in that millisecond, then
    the next run reads the new ones (no resume at last timestamp + 1 ms) and only them."""
    logs = FakeLogGroup()
    moment = NOW - minutes(1)
    for i in range(3):
        logs.put(moment, record(f"a{i}"))
    make_ingest(logs, checkpoints).run([LOG_GROUP], now=NOW, remaining_ms=RemainingTime())
    newcomer = logs.put(moment, record("b"))

    detector = RecordingDetector()
    make_ingest(logs, checkpoints, detector=detector).run([LOG_GROUP], now=NOW, remaining_ms=RemainingTime())

    assert detector.observed_ids == [newcomer]


def test_pages_until_no_next_token_and_detects_once_over_them(checkpoints: DynamoDbCheckpoints) -> None:
    """Given 25 events and pages of 10, when the ingest runs, then it reads every page until no token
    comes back, detects once over the three pages (each event once, in log order) and writes the
    checkpoint once (claim, one save, release)."""
    logs = FakeLogGroup(page_size=10)
    ids = [logs.put(NOW - minutes(30) + minutes(i), record(f"u{i}")) for i in range(25)]
    detector = PassCountingDetector()

    report = make_ingest(logs, checkpoints, detector=detector).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )

    assert detector.passes == [ids]
    assert report.log_groups[0].pages == 3 and report.log_groups[0].complete
    stored = checkpoints.load(LOG_GROUP)
    assert stored.events_processed == 25 and stored.version == 3
    assert stored.position_ms == millis(NOW - minutes(6)) and stored.page_token is None


@pytest.mark.parametrize(
    ("batch_events", "pass_sizes"),
    [(50_000, [25]), (25, [25]), (15, [20, 5]), (10, [10, 10, 5]), (1, [10, 10, 5])],
)
def test_the_batch_bound_splits_detection_at_page_boundaries(
    checkpoints: DynamoDbCheckpoints, batch_events: int, pass_sizes: list[int]
) -> None:
    """Given 25 events in pages of 10, when the batch bound is ``batch_events``, then a batch is
    detected as soon as it holds at least that many fresh events (whole pages), the rest at the scan's
    end, and the checkpoint is written once per batch."""
    logs = FakeLogGroup(page_size=10)
    ids = [logs.put(NOW - minutes(30) + minutes(i), record(f"u{i}")) for i in range(25)]
    detector = PassCountingDetector()

    make_ingest(logs, checkpoints, detector=detector, detect_batch_events=batch_events).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )

    assert detector.pass_sizes == pass_sizes
    assert detector.observed_ids == ids
    assert checkpoints.load(LOG_GROUP).version == 2 + len(pass_sizes)  # claim, a save per batch, release


def test_time_running_short_flushes_the_pages_read_and_keeps_the_token(
    checkpoints: DynamoDbCheckpoints,
) -> None:
    """Given a backlog of 95 events in pages of 10 and an invocation whose time runs short after three
    pages, when it stops, then the three pages are detected and published in one pass and the
    checkpoint keeps the next page's token; the next run resumes there and reads nothing twice."""
    logs = FakeLogGroup(page_size=10)
    ids = [logs.put(NOW - minutes(50) + minutes(i / 2), record(f"attacker{i}")) for i in range(95)]
    detector, bus = PassCountingDetector(), RecordingBus()

    report = make_ingest(logs, checkpoints, detector=detector, bus=bus).run(
        [LOG_GROUP], now=NOW, remaining_ms=lambda: 300_000 if logs.reads < 3 else 1_000
    )

    assert report.log_groups[0].skipped and "resumes" in report.log_groups[0].skipped
    assert logs.reads == 3 and detector.passes == [ids[:30]]
    assert len(bus.published) == 30
    stored = checkpoints.load(LOG_GROUP)
    assert stored.page_token == "0:30" and stored.scan_start_ms is not None
    assert stored.events_processed == 30 and stored.lease_until_ms == 0

    resumed = make_ingest(logs, checkpoints, detector=detector, bus=bus, owner="invocation-2").run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )

    assert detector.passes == [ids[:30], ids[30:]]
    assert resumed.log_groups[0].complete and resumed.log_groups[0].duplicates == 0
    assert len(bus.published) == 95 and checkpoints.load(LOG_GROUP).page_token is None


def test_a_crash_before_the_flush_rereads_the_batch_next_run(checkpoints: DynamoDbCheckpoints) -> None:
    """Given pages read into a batch, when reading the next page fails, then nothing was detected nor
    checkpointed (the batch's events are not remembered as seen), and the next run reads them again:
    every event is detected once."""
    logs = FakeLogGroup(page_size=10)
    ids = [logs.put(NOW - minutes(30) + minutes(i), record(f"u{i}")) for i in range(25)]
    failing_on_read(logs, 3, RuntimeError("throttled"))
    detector = PassCountingDetector()

    report = make_ingest(logs, checkpoints, detector=detector).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )
    assert report.log_groups[0].failed == "RuntimeError: throttled"
    stored = checkpoints.load(LOG_GROUP)
    assert detector.passes == [] and stored.events_processed == 0 and stored.seen_event_digests == b""
    assert stored.lease_until_ms == 0

    make_ingest(logs, checkpoints, detector=detector, owner="invocation-2").run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )
    assert detector.passes == [ids]


def test_a_backlog_resumes_on_the_next_run_without_gap_or_repeat(checkpoints: DynamoDbCheckpoints) -> None:
    """Given a backlog of 95 events in pages of 10 and an invocation that runs short of time after a
    few pages, when it stops, then the checkpoint keeps the scan's page token, and the next runs
    resume there: every event is processed exactly once."""
    logs = FakeLogGroup(page_size=10)
    ids = [logs.put(NOW - minutes(50) + minutes(i / 2), record(f"u{i}")) for i in range(95)]
    detector = RecordingDetector()

    short = RemainingTime(budget_ms=100_000, cost_ms=20_000)  # time left: 80 s, 60 s, 40 s, 20 s...
    report = make_ingest(logs, checkpoints, detector=detector, stop_margin_ms=30_000).run(
        [LOG_GROUP], now=NOW, remaining_ms=short
    )
    group = report.log_groups[0]
    assert not group.complete and group.skipped and "resumes" in group.skipped
    stored = checkpoints.load(LOG_GROUP)
    assert stored.page_token is not None and stored.scan_start_ms is not None
    assert 0 < len(detector.observed_ids) < 95

    for _ in range(10):
        if checkpoints.load(LOG_GROUP).page_token is None and len(detector.observed_ids) == 95:
            break
        make_ingest(logs, checkpoints, detector=detector, stop_margin_ms=30_000).run(
            [LOG_GROUP], now=NOW, remaining_ms=RemainingTime(budget_ms=100_000, cost_ms=20_000)
        )
    assert detector.observed_ids == ids


def test_an_expired_page_token_restarts_the_scan_without_repeats(checkpoints: DynamoDbCheckpoints) -> None:
    """Given a scan stopped half way, when CloudWatch refuses its page token (expired), then the next run
    starts that scan over and processes only what it had not processed."""
    logs = FakeLogGroup(page_size=10)
    ids = [logs.put(NOW - minutes(40) + minutes(i / 2), record(f"u{i}")) for i in range(40)]
    detector = RecordingDetector()
    make_ingest(logs, checkpoints, detector=detector, stop_margin_ms=30_000).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime(budget_ms=100_000, cost_ms=20_000)
    )
    assert checkpoints.load(LOG_GROUP).page_token is not None

    logs.expire_tokens()
    make_ingest(logs, checkpoints, detector=detector).run([LOG_GROUP], now=NOW, remaining_ms=RemainingTime())

    assert detector.observed_ids == ids


def test_a_token_refused_in_the_middle_of_a_batch_restarts_the_scan_once(
    checkpoints: DynamoDbCheckpoints,
) -> None:
    """Given a scan two pages into its batch, when CloudWatch refuses the next page token, then the
    scan starts over, the unflushed batch is read again with it, and every event is detected once."""
    logs = FakeLogGroup(page_size=10)
    ids = [logs.put(NOW - minutes(30) + minutes(i), record(f"u{i}")) for i in range(25)]
    original_read = logs.read_page

    def read_then_expire(*args, **kwargs) -> LogEventPage:  # type: ignore[no-untyped-def]
        page = original_read(*args, **kwargs)
        if logs.reads == 2:
            logs.expire_tokens()
        return page

    logs.read_page = read_then_expire  # type: ignore[method-assign]
    detector = PassCountingDetector()

    report = make_ingest(logs, checkpoints, detector=detector).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )

    assert detector.passes == [ids]
    assert report.log_groups[0].complete and logs.reads == 6  # 2 pages, the refused read, 3 pages
    assert checkpoints.load(LOG_GROUP).events_processed == 25


def test_a_failed_publish_leaves_the_checkpoint_where_it_was(checkpoints: DynamoDbCheckpoints) -> None:
    """Given findings the bus refuses, when the run fails, then the checkpoint has not advanced, its lease
    is free at once, and the next run publishes the same findings."""
    logs = FakeLogGroup()
    attacker = logs.put(NOW - minutes(2), record("attacker"))
    bus = RecordingBus(fail_next=1)

    report = make_ingest(logs, checkpoints, bus=bus).run([LOG_GROUP], now=NOW, remaining_ms=RemainingTime())
    assert report.log_groups[0].failed == "RuntimeError: bus unavailable"
    stored = checkpoints.load(LOG_GROUP)
    assert stored.position_ms is None and stored.lease_until_ms == 0  # not advanced, lease given back

    make_ingest(logs, checkpoints, bus=bus, owner="invocation-2").run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )
    assert finding_ids(bus) == [f"finding-{attacker}"]


def test_a_failed_publish_after_a_flushed_batch_resumes_after_that_batch(
    checkpoints: DynamoDbCheckpoints,
) -> None:
    """Given three pages in batches of one page, an attacker on the second, when the bus refuses the
    second batch's findings, then the checkpoint stays after the first batch (its token), and the next
    run detects the second and third pages once and publishes the finding once."""
    logs = FakeLogGroup(page_size=10)
    users = [f"attacker{i}" if i == 14 else f"u{i}" for i in range(25)]
    ids = [logs.put(NOW - minutes(30) + minutes(i), record(user)) for i, user in enumerate(users)]
    detector, bus = PassCountingDetector(), RecordingBus(fail_next=1)

    report = make_ingest(logs, checkpoints, detector=detector, bus=bus, detect_batch_events=10).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )
    assert report.log_groups[0].failed == "RuntimeError: bus unavailable"
    stored = checkpoints.load(LOG_GROUP)
    assert stored.events_processed == 10 and stored.page_token == "0:10" and stored.lease_until_ms == 0

    make_ingest(logs, checkpoints, detector=detector, bus=bus, detect_batch_events=10).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )
    assert detector.passes == [ids[:10], ids[10:20], ids[10:20], ids[20:]]
    assert finding_ids(bus) == [f"finding-{ids[14]}"]
    assert checkpoints.load(LOG_GROUP).events_processed == 25


def test_bad_lines_are_counted_and_skipped(checkpoints: DynamoDbCheckpoints) -> None:
    """Given a truncated line and a JSON array among good records, when the ingest runs, then the good
    records are observed and the two bad lines counted, without failing the batch."""
    logs = FakeLogGroup()
    good = logs.put(NOW - minutes(3), record("alice"))
    logs.put(NOW - minutes(2), '{"connection-log-type": "connection-att')
    logs.put(NOW - minutes(1), "[1, 2]")
    detector = RecordingDetector()

    report = make_ingest(logs, checkpoints, detector=detector).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )

    assert detector.observed_ids == [good]
    assert report.log_groups[0].bad_lines == 2 and report.summary()["bad_lines"] == 2


def test_a_log_group_leased_by_another_invocation_is_skipped(checkpoints: DynamoDbCheckpoints) -> None:
    """Given a log group another invocation holds, when a second invocation runs, then it reads nothing
    there; once the lease has expired, the log group is claimed again."""
    logs = FakeLogGroup()
    logs.put(NOW - minutes(1), record("alice"))
    checkpoints.claim(LOG_GROUP, owner="other", now_ms=millis(NOW), lease_until_ms=millis(NOW) + 60_000)
    detector = RecordingDetector()

    report = make_ingest(logs, checkpoints, detector=detector).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )
    assert report.log_groups[0].skipped == "another invocation holds this log group"
    assert detector.observed_ids == [] and logs.reads == 0

    later = Clock(wall_ms=millis(NOW) + 61_000)
    make_ingest(logs, checkpoints, detector=detector, clock=later).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )
    assert len(detector.observed_ids) == 1


def test_a_checkpoint_write_with_a_stale_version_is_refused(checkpoints: DynamoDbCheckpoints) -> None:
    """Given a checkpoint advanced by its lease holder, when a writer with the old version (or without
    the lease) saves, then DynamoDB refuses the write and nothing changes."""
    claimed = checkpoints.claim(LOG_GROUP, owner="a", now_ms=1, lease_until_ms=10_000)
    checkpoints.save(claimed.advanced(position_ms=5), expected_version=claimed.version)

    with pytest.raises(CheckpointConflict):
        checkpoints.save(claimed.advanced(position_ms=99), expected_version=claimed.version)
    intruder = Checkpoint(LOG_GROUP, version=claimed.version + 1, position_ms=42, lease_owner="b")
    with pytest.raises(CheckpointConflict):
        checkpoints.save(intruder.advanced(), expected_version=intruder.version)
    assert checkpoints.load(LOG_GROUP).position_ms == 5


@pytest.mark.parametrize(("batch_events", "reads_made", "processed_before"), [(5, 2, 5), (50_000, 4, 0)])
def test_a_lost_lease_stops_the_run_without_writing(
    checkpoints: DynamoDbCheckpoints, batch_events: int, reads_made: int, processed_before: int
) -> None:
    """Given an invocation whose lease is taken over while it reads its second page (it outlived its
    deadline), when it tries to advance (after that page with batches of a page, after the last page
    with one batch), then its write is refused and it stops reading that log group; the checkpoint
    holds what it advanced before (its first batch of a page, or nothing)."""
    logs = FakeLogGroup(page_size=5)
    for i in range(20):
        logs.put(NOW - minutes(20) + minutes(i), record(f"u{i}"))
    original_read = logs.read_page
    reads = 0

    def read_then_lose_the_lease(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        if reads == 2:
            checkpoints.claim(LOG_GROUP, owner="successor", now_ms=millis(NOW) + 10**9, lease_until_ms=10**15)
        return original_read(*args, **kwargs)

    logs.read_page = read_then_lose_the_lease  # type: ignore[method-assign]
    report = make_ingest(logs, checkpoints, detect_batch_events=batch_events).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )

    assert report.log_groups[0].skipped and "lease lost" in report.log_groups[0].skipped
    assert reads == reads_made
    stored = checkpoints.load(LOG_GROUP)
    assert stored.lease_owner == "successor" and stored.events_processed == processed_before


def test_two_concurrent_runs_neither_lose_nor_repeat(checkpoints: DynamoDbCheckpoints) -> None:
    """Given two invocations started at once over the same log groups, when both run to the end, then
    across both every event is observed exactly once."""
    groups = [f"{LOG_GROUP}-{n}" for n in range(4)]
    logs = FakeLogGroup(page_size=7)
    ids = [logs.put(NOW - minutes(30) + minutes(i / 4), record(f"u{i}")) for i in range(60)]
    detectors = [RecordingDetector(), RecordingDetector()]
    barrier = threading.Barrier(2)

    def run(index: int) -> None:
        barrier.wait()
        make_ingest(logs, checkpoints, detector=detectors[index], owner=f"invocation-{index}").run(
            groups, now=NOW, remaining_ms=RemainingTime()
        )

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    observed = Counter(detectors[0].observed_ids + detectors[1].observed_ids)
    # The same fake log group backs the four names: each event must be seen once per log group.
    assert observed == Counter({event_id: len(groups) for event_id in ids})


@pytest.mark.parametrize(("page_size", "batch_events"), [(10_000, 50_000), (7, 50_000), (7, 10)])
def test_a_burst_beyond_the_remembered_ids_raises_the_floor_never_repeats(
    checkpoints: DynamoDbCheckpoints, page_size: int, batch_events: int
) -> None:
    """Given more events in the overlap window than the checkpoint remembers (read in one page, in one
    batch of many pages, or in several batches), when the next run re-reads the overlap, then nothing
    is repeated (the floor rose past the forgotten ids)."""
    logs = FakeLogGroup(page_size=page_size)
    ids = [logs.put(NOW - minutes(5) + minutes(i / 20), record(f"u{i}")) for i in range(50)]
    detector = RecordingDetector()
    make_ingest(logs, checkpoints, detector=detector, seen_capacity=20, detect_batch_events=batch_events).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )
    stored = checkpoints.load(LOG_GROUP)
    assert len(SeenEvents.from_bytes(stored.seen_event_digests)) <= 20
    assert stored.floor_ms > millis(NOW - minutes(5))

    make_ingest(logs, checkpoints, detector=detector, seen_capacity=20, detect_batch_events=batch_events).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime()
    )
    assert detector.observed_ids == ids


def test_seen_events_round_trip_and_trim() -> None:
    """Digests survive the checkpoint's binary form; trimming keeps whole milliseconds."""
    seen = SeenEvents()
    for i in range(10):
        seen.add(f"event-{i}", 1000 + i // 2)
    restored = SeenEvents.from_bytes(seen.to_bytes())
    assert len(restored) == 10 and "event-3" in restored and "event-x" not in restored

    floor = restored.trim(keep_from_ms=0, capacity=5, floor_ms=0)
    assert floor == 1003  # 1002 held more than fit: all of 1002 forgotten, floor above it
    assert len(restored) == 4 and "event-9" in restored and "event-5" not in restored


def test_no_time_left_skips_log_groups_without_claiming(checkpoints: DynamoDbCheckpoints) -> None:
    """Given an invocation with less time left than the margin, when it runs, then it claims nothing."""
    logs = FakeLogGroup()
    logs.put(NOW, record("alice"))
    report = make_ingest(logs, checkpoints).run(
        [LOG_GROUP], now=NOW, remaining_ms=RemainingTime(budget_ms=1000)
    )
    assert report.log_groups[0].skipped == "no time left in this invocation"
    assert checkpoints.load(LOG_GROUP).version == 0


def test_failed_attempts_become_metrics_by_endpoint_and_reason(capsys: pytest.CaptureFixture[str]) -> None:
    """Given a run that saw failures for documented reasons and for free-text (credential) reasons,
    when its metrics are recorded, then one FailedConnectionAttempts metric per (endpoint, reason) is
    emitted with Endpoint and FailureReason, every undocumented reason counted under "other" (a bounded
    set of dimension values), while the run's report keeps each reason as logged."""
    import json

    from aws_lambda_powertools import Metrics

    from cvpn_shared.monitoring.ingest import IngestReport, record_ingest_metrics

    report = IngestReport(
        failed_attempts=Counter(
            {
                (ENDPOINT_ID, "auth-failed"): 4,
                (ENDPOINT_ID, "Authentication failed for user alice@example.com"): 2,
                (ENDPOINT_ID, "token-expired"): 3,
                (ENDPOINT_ID, "client-connect-handler-timed-out"): 1,
                (ENDPOINT_ID, "NA"): 1,
            }
        )
    )
    metrics = Metrics(namespace="ClientVpnAutopilotTest", service="test")
    record_ingest_metrics(metrics, report)
    metrics.flush_metrics()

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    failures = {
        blob["FailureReason"]: blob["FailedConnectionAttempts"]
        for blob in blobs
        if "FailedConnectionAttempts" in blob
    }
    assert failures == {
        "other": [6.0],
        "token-expired": [3.0],
        "client-connect-handler-timed-out": [1.0],
        "NA": [1.0],
    }
    assert all(blob["Endpoint"] == ENDPOINT_ID for blob in blobs if "FailedConnectionAttempts" in blob)
    assert (
        f"{ENDPOINT_ID}/Authentication failed for user alice@example.com"
        in report.summary()["failed_attempts"]
    )


def _published_metrics(capsys: pytest.CaptureFixture[str], report: IngestReport) -> dict[str, list[float]]:
    """Every metric value the run's EMF blobs carry, by metric name."""
    import json

    from aws_lambda_powertools import Metrics

    from cvpn_shared.monitoring.ingest import record_ingest_metrics

    metrics = Metrics(namespace="ClientVpnAutopilotTest", service="test")
    record_ingest_metrics(metrics, report)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty flush warns "No application metrics to publish"
        metrics.flush_metrics()
    published: dict[str, list[float]] = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{"):
            blob = json.loads(line)
            for definition in blob["_aws"]["CloudWatchMetrics"]:
                for metric in definition["Metrics"]:
                    published.setdefault(metric["Name"], []).extend(blob[metric["Name"]])
    return published


def test_an_idle_run_publishes_no_metric(capsys: pytest.CaptureFixture[str]) -> None:
    """Given a run that read nothing (no endpoint, or nobody connecting), when its metrics are recorded,
    then no metric is published: CloudWatch bills each custom metric for every hour it receives a value,
    and the schedule runs every minute of the month."""
    from cvpn_shared.monitoring.ingest import IngestReport, LogGroupReport

    report = IngestReport(log_groups=[LogGroupReport(LOG_GROUP, complete=True)])
    assert _published_metrics(capsys, report) == {}


def test_a_run_publishes_only_its_non_zero_totals(capsys: pytest.CaptureFixture[str]) -> None:
    """Given a run that processed events, dropped duplicates and published a finding but saw no bad line,
    when its metrics are recorded, then exactly those three totals are published with their values."""
    from cvpn_shared.monitoring.ingest import IngestReport, LogGroupReport

    report = IngestReport(
        log_groups=[LogGroupReport(LOG_GROUP, events_processed=7, duplicates=2, complete=True)],
        findings=[{"rule": "R1"}],
    )
    assert _published_metrics(capsys, report) == {
        "ConnectionLogEventsProcessed": [7.0],
        "ConnectionLogDuplicatesDropped": [2.0],
        "FindingsPublished": [1.0],
    }


@pytest.mark.parametrize(
    ("reason", "dimension"),
    [
        ("authorization-policy-deny", "authorization-policy-deny"),
        ("client-connect-failed", "client-connect-failed"),
        ("client-connect-handler-throttled", "client-connect-handler-throttled"),
        ("tenant-mismatch", "tenant-mismatch"),
        ("NA", "NA"),
        ("client-connect-handler-new-kind", "other"),
        ("Authentication failed", "other"),
        ("", "other"),
        ("x" * 5000, "other"),
    ],
)
def test_the_failure_reason_dimension_is_a_documented_reason_or_other(reason: str, dimension: str) -> None:
    """The connection-log spec's documented reasons are dimension values as they are; anything else is
    "other"."""
    assert failure_reason_dimension(reason) == dimension
