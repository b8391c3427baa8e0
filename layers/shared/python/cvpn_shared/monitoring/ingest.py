"""Reading the endpoints' connection logs on a schedule, without losing or repeating events.

One run (``ConnectionLogIngest.run``) takes each connection log group in turn:

1. **Claim** the log group's checkpoint (a lease until the invocation's deadline). Another
   invocation holding it makes this one skip the group: two overlapping runs never read the same
   group at once, and every later checkpoint write is conditional on the version and the lease.
2. **Read** with FilterLogEvents from the checkpoint minus an overlap (default 15 minutes, for
   events that arrive late: CloudWatch selects on the event's own timestamp), or from where a
   previous scan stopped (its page token), page after page until no next token comes back.
3. **Drop** what was already processed: event ids processed recently are kept with the checkpoint
   as 8-byte digests with their timestamps. The set is bounded (``seen_capacity``); when a burst
   overflows it, the oldest digests go and the *floor* rises past them: events below the floor are
   never read again (no repeats), at the price of a shorter late-arrival window during that burst.
4. **Parse** tolerantly (bad lines counted and skipped), **detect**, **publish** the findings (and the
   client-connect handler malfunctions, as health events for operations), and only
   then **advance** the checkpoint, after every page: a failure re-reads at most one page.
5. **Stop in time**: before the invocation's remaining time runs short, the checkpoint keeps the
   scan's start and page token; the next run resumes there without a gap.

``now`` (the detector's clock, the first-run look-back) comes from the caller: the schedule's time.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from cvpn_shared.dal.checkpoints import Checkpoint, CheckpointConflict, LeaseHeld
from cvpn_shared.dal.connection_logs import InvalidPageToken, LogEventPage, LogGroupMissing
from cvpn_shared.dal.findings_bus import BusEntry
from cvpn_shared.monitoring.findings import DETAIL_TYPE, HEALTH_DETAIL_TYPE

__all__ = [
    "DETAIL_TYPE",
    "HEALTH_DETAIL_TYPE",
    "CheckpointStore",
    "ConnectionLogIngest",
    "EndpointArns",
    "FindingPublisher",
    "IngestReport",
    "IngestSettings",
    "LogGroupReport",
    "SeenEvents",
    "finding_entry",
    "health_entry",
    "log_groups_to_read",
    "record_ingest_metrics",
]

_DIGEST_BYTES = 8
_TIMESTAMP_BYTES = 6
_ENTRY_BYTES = _DIGEST_BYTES + _TIMESTAMP_BYTES


# ------------------------------------------------------------------------------------------ ports
class LogReader(Protocol):
    def read_page(
        self,
        log_group_name: str,
        *,
        start_time_ms: int,
        next_token: str | None = None,
        limit: int | None = None,
    ) -> LogEventPage: ...


class CheckpointStore(Protocol):
    def claim(self, log_group_name: str, *, owner: str, now_ms: int, lease_until_ms: int) -> Checkpoint: ...

    def save(self, checkpoint: Checkpoint, *, expected_version: int) -> Checkpoint: ...

    def release(self, checkpoint: Checkpoint) -> Checkpoint: ...


class FindingPublisher(Protocol):
    def publish(self, entries: Sequence[BusEntry]) -> int: ...


class Finding(Protocol):
    def event_detail(self) -> dict[str, Any]: ...


class DetectionOutcome(Protocol):
    """What the detector returns for a run (``cvpn_shared.monitoring.detection.DetectionResult``)."""

    @property
    def findings(self) -> Sequence[Finding]: ...

    @property
    def health(self) -> Sequence[Finding]: ...


class Detector(Protocol):
    def observe(self, attempts: Sequence[Any], *, now: datetime) -> DetectionOutcome: ...


ParseEvents = Callable[[Sequence[Mapping[str, Any]]], tuple[Sequence[Any], Any]]


# ------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class IngestSettings:
    """How far back to read, how much to remember, when to stop."""

    overlap: timedelta = timedelta(minutes=15)
    initial_lookback: timedelta = timedelta(hours=1)
    seen_capacity: int = 16_000
    stop_margin_ms: int = 20_000
    page_limit: int | None = None


@dataclass(frozen=True)
class EndpointArns:
    """Builds Client VPN endpoint ARNs (the Resources of a finding event)."""

    partition: str
    region: str
    account_id: str

    @classmethod
    def from_function_arn(cls, function_arn: str) -> EndpointArns:
        parts = function_arn.split(":")
        return cls(partition=parts[1], region=parts[3], account_id=parts[4])

    def endpoint(self, endpoint_id: str) -> str:
        return f"arn:{self.partition}:ec2:{self.region}:{self.account_id}:client-vpn-endpoint/{endpoint_id}"


@dataclass
class LogGroupReport:
    """What one run did with one log group."""

    log_group_name: str
    pages: int = 0
    events_read: int = 0
    duplicates: int = 0
    events_processed: int = 0
    bad_lines: int = 0
    findings_published: int = 0
    complete: bool = False
    skipped: str | None = None


@dataclass
class IngestReport:
    """What one run did: per log group, failed attempts by (endpoint, reason), findings."""

    log_groups: list[LogGroupReport] = field(default_factory=list)
    failed_attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    findings: list[dict[str, Any]] = field(default_factory=list)
    health: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "log_groups": [vars(report) for report in self.log_groups],
            "events_processed": sum(report.events_processed for report in self.log_groups),
            "duplicates": sum(report.duplicates for report in self.log_groups),
            "bad_lines": sum(report.bad_lines for report in self.log_groups),
            "findings_published": len(self.findings),
            "failed_attempts": {
                f"{endpoint}/{reason}": n for (endpoint, reason), n in self.failed_attempts.items()
            },
        }


class SeenEvents:
    """Digests of processed event ids with their timestamps (what an overlapping re-read drops)."""

    def __init__(self, entries: dict[bytes, int] | None = None) -> None:
        self._entries: dict[bytes, int] = dict(entries or {})

    @staticmethod
    def digest(event_id: str) -> bytes:
        return hashlib.blake2b(event_id.encode(), digest_size=_DIGEST_BYTES).digest()

    @classmethod
    def from_bytes(cls, blob: bytes) -> SeenEvents:
        entries: dict[bytes, int] = {}
        for offset in range(0, len(blob) - len(blob) % _ENTRY_BYTES, _ENTRY_BYTES):
            timestamp = int.from_bytes(blob[offset : offset + _TIMESTAMP_BYTES], "big")
            entries[blob[offset + _TIMESTAMP_BYTES : offset + _ENTRY_BYTES]] = timestamp
        return cls(entries)

    def to_bytes(self) -> bytes:
        ordered = sorted(self._entries.items(), key=lambda item: (item[1], item[0]))
        return b"".join(timestamp.to_bytes(_TIMESTAMP_BYTES, "big") + digest for digest, timestamp in ordered)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, str) and self.digest(event_id) in self._entries

    def add(self, event_id: str, timestamp_ms: int) -> None:
        self._entries[self.digest(event_id)] = timestamp_ms

    def trim(self, *, keep_from_ms: int, capacity: int, floor_ms: int) -> int:
        """Forget digests older than ``keep_from_ms``; beyond ``capacity``, forget the oldest whole
        milliseconds and raise the floor above them. Returns the new floor."""
        self._entries = {d: t for d, t in self._entries.items() if t >= keep_from_ms}
        if len(self._entries) <= capacity:
            return floor_ms
        timestamps = sorted(self._entries.values(), reverse=True)
        cut = timestamps[capacity]  # the newest timestamp that cannot be kept whole
        self._entries = {d: t for d, t in self._entries.items() if t > cut}
        return max(floor_ms, cut + 1)


# ------------------------------------------------------------------------------------------ logic
def log_groups_to_read(*sources: Iterable[str]) -> list[str]:
    """Every log group named by any source, once, in a stable order."""
    return sorted({name.strip() for source in sources for name in source if name and name.strip()})


def finding_entry(finding: Finding, *, source: str, arns: EndpointArns) -> BusEntry:
    """The bus event of a finding: the spec's Source, DetailType, Resources and Detail."""
    return _bus_entry(finding, DETAIL_TYPE, source=source, arns=arns)


def health_entry(issue: Finding, *, source: str, arns: EndpointArns) -> BusEntry:
    """The bus event of a client-connect handler malfunction (for operations, not security)."""
    return _bus_entry(issue, HEALTH_DETAIL_TYPE, source=source, arns=arns)


def _bus_entry(finding: Finding, detail_type: str, *, source: str, arns: EndpointArns) -> BusEntry:
    """The bus event carrying ``finding``'s detail, its resource the finding's endpoint (if any)."""
    detail = finding.event_detail()
    endpoint_id = str(detail.get("endpoint_id") or "")
    return BusEntry(
        source=source,
        detail_type=detail_type,
        detail=detail,
        resources=(arns.endpoint(endpoint_id),) if endpoint_id else (),
    )


class ConnectionLogIngest:
    """One scheduled run over the connection log groups (see the module docstring)."""

    def __init__(
        self,
        *,
        reader: LogReader,
        checkpoints: CheckpointStore,
        publisher: FindingPublisher,
        detector: Detector,
        parse_events: ParseEvents,
        source: str,
        arns: EndpointArns,
        owner: str,
        settings: IngestSettings | None = None,
        wall_clock_ms: Callable[[], int],
    ) -> None:
        self._reader = reader
        self._checkpoints = checkpoints
        self._publisher = publisher
        self._detector = detector
        self._parse = parse_events
        self._source = source
        self._arns = arns
        self._owner = owner
        self._settings = settings or IngestSettings()
        self._wall_clock_ms = wall_clock_ms

    def run(
        self, log_groups: Sequence[str], *, now: datetime, remaining_ms: Callable[[], int]
    ) -> IngestReport:
        """Read every log group in turn until done or until the time left runs short."""
        report = IngestReport()
        for name in log_groups:
            if remaining_ms() < self._settings.stop_margin_ms:
                report.log_groups.append(LogGroupReport(name, skipped="no time left in this invocation"))
                continue
            report.log_groups.append(self._read_log_group(name, now, remaining_ms, report))
        return report

    def _read_log_group(
        self, name: str, now: datetime, remaining_ms: Callable[[], int], report: IngestReport
    ) -> LogGroupReport:
        group = LogGroupReport(name)
        wall_now = self._wall_clock_ms()
        try:
            checkpoint = self._checkpoints.claim(
                name, owner=self._owner, now_ms=wall_now, lease_until_ms=wall_now + max(0, remaining_ms())
            )
        except LeaseHeld:
            group.skipped = "another invocation holds this log group"
            return group
        seen = SeenEvents.from_bytes(checkpoint.seen_event_digests)
        if checkpoint.page_token and checkpoint.scan_start_ms is not None:
            start, token = checkpoint.scan_start_ms, checkpoint.page_token
        else:
            start, token = self._scan_start(checkpoint, now), None
        restarted = False
        try:
            while True:
                if remaining_ms() < self._settings.stop_margin_ms:
                    checkpoint = self._checkpoints.release(checkpoint)
                    group.skipped = "stopped before the invocation's deadline; the next run resumes"
                    return group
                try:
                    page = self._reader.read_page(
                        name, start_time_ms=start, next_token=token, limit=self._settings.page_limit
                    )
                except InvalidPageToken:
                    if restarted:
                        raise
                    restarted, token = True, None  # start the scan over: what was processed is dropped by id
                    continue
                group.pages += 1
                checkpoint = self._process_page(checkpoint, page, seen, start, now, group, report)
                token = page.next_token
                if token is None:
                    group.complete = True
                    self._checkpoints.release(checkpoint)
                    return group
        except LogGroupMissing:
            group.skipped = "log group does not exist"
            self._checkpoints.release(checkpoint)
            return group
        except CheckpointConflict:
            group.skipped = "checkpoint changed under this invocation (lease lost); nothing more written"
            return group
        except Exception:
            # Publishing or reading failed: the checkpoint stays where it was (this page is read again),
            # and the lease goes back at once so the next scheduled run need not wait for it to expire.
            with contextlib.suppress(Exception):
                self._checkpoints.release(checkpoint)
            raise

    def _scan_start(self, checkpoint: Checkpoint, now: datetime) -> int:
        if checkpoint.position_ms is None:
            start = int((now - self._settings.initial_lookback).timestamp() * 1000)
        else:
            start = checkpoint.position_ms - int(self._settings.overlap.total_seconds() * 1000)
        return max(start, checkpoint.floor_ms)

    def _process_page(
        self,
        checkpoint: Checkpoint,
        page: LogEventPage,
        seen: SeenEvents,
        scan_start: int,
        now: datetime,
        group: LogGroupReport,
        report: IngestReport,
    ) -> Checkpoint:
        fresh: list[dict[str, Any]] = []
        batch_ids: set[str] = set()
        for event in page.events:
            event_id = str(event["eventId"])
            if event_id in seen or event_id in batch_ids or int(event["timestamp"]) < checkpoint.floor_ms:
                group.duplicates += 1
                continue
            batch_ids.add(event_id)
            fresh.append(event)
        group.events_read += len(page.events)
        if fresh:
            fresh.sort(key=lambda event: (int(event["timestamp"]), str(event["eventId"])))
            attempts, stats = self._parse(fresh)
            group.bad_lines += _bad_lines(stats)
            outcome = self._detector.observe(attempts, now=now)
            findings = [finding_entry(f, source=self._source, arns=self._arns) for f in outcome.findings]
            health = [health_entry(issue, source=self._source, arns=self._arns) for issue in outcome.health]
            if findings or health:
                self._publisher.publish(findings + health)
            group.findings_published += len(findings)
            report.findings.extend(entry.detail for entry in findings)
            report.health.extend(entry.detail for entry in health)
            report.failed_attempts.update(_failed_attempts(getattr(outcome, "failures", attempts)))
            group.events_processed += len(fresh)
        elif page.next_token is not None:
            return checkpoint  # nothing new on this page: no write needed until the scan ends
        for event in fresh:
            seen.add(str(event["eventId"]), int(event["timestamp"]))
        newest = max((int(event["timestamp"]) for event in page.events), default=None)
        position = checkpoint.position_ms
        if newest is not None:
            position = newest if position is None else max(position, newest)
        keep_from = (position or 0) - int(self._settings.overlap.total_seconds() * 1000)
        floor = seen.trim(
            keep_from_ms=keep_from, capacity=self._settings.seen_capacity, floor_ms=checkpoint.floor_ms
        )
        advanced = checkpoint.advanced(
            position_ms=position,
            floor_ms=floor,
            seen_event_digests=seen.to_bytes(),
            scan_start_ms=scan_start if page.next_token else None,
            page_token=page.next_token,
            events_processed=checkpoint.events_processed + len(fresh),
            updated_at_ms=self._wall_clock_ms(),
        )
        return self._checkpoints.save(advanced, expected_version=checkpoint.version)


def record_ingest_metrics(metrics: Any, report: IngestReport) -> None:
    """CloudWatch metrics of a run: totals on the function's metrics, and one metric per failed-attempt
    (endpoint, reason) pair with those two dimensions."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    summary = report.summary()
    metrics.add_metric(
        name="ConnectionLogEventsProcessed", unit=MetricUnit.Count, value=summary["events_processed"]
    )
    metrics.add_metric(
        name="ConnectionLogDuplicatesDropped", unit=MetricUnit.Count, value=summary["duplicates"]
    )
    metrics.add_metric(name="ConnectionLogBadLines", unit=MetricUnit.Count, value=summary["bad_lines"])
    metrics.add_metric(name="FindingsPublished", unit=MetricUnit.Count, value=summary["findings_published"])
    for (endpoint_id, reason), count in sorted(report.failed_attempts.items()):
        with single_metric(
            name="FailedConnectionAttempts",
            unit=MetricUnit.Count,
            value=count,
            namespace=getattr(metrics, "namespace", None),
        ) as metric:
            metric.add_dimension(name="Endpoint", value=endpoint_id)
            metric.add_dimension(name="FailureReason", value=reason[:250] or "NA")


def _bad_lines(stats: Any) -> int:
    """Lines the parser skipped (not JSON, not an object, not a connection record)."""
    for name in ("bad_lines", "skipped", "invalid", "malformed"):
        value = getattr(stats, name, None)
        if isinstance(value, int):
            return value
    return 0


def _failed_attempts(attempts: Sequence[Any]) -> Counter[tuple[str, str]]:
    """Failed connection attempts counted by (endpoint, failure reason)."""
    counts: Counter[tuple[str, str]] = Counter()
    for attempt in attempts:
        if getattr(attempt, "is_failure", False) is True or getattr(attempt, "status", None) == "failed":
            endpoint = str(getattr(attempt, "endpoint_id", "") or "unknown")
            reason = str(getattr(attempt, "failure_reason", "") or "NA")
            counts[(endpoint, reason)] += 1
    return counts
