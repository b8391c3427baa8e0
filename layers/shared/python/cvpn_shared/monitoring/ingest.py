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
4. **Batch** the fresh events of consecutive pages, up to ``detect_batch_events``, so that a
   backlog of many pages is detected in a few passes: the detection state (one record per watched
   entity) is written once per batch, not once per page.
5. **Flush** a batch when it is full, when the scan ends, or before the time runs short: parse it
   tolerantly (bad lines counted and skipped), **detect**, **publish** the findings (and the
   client-connect handler malfunctions, as health events for operations), and only then **advance**
   the checkpoint past it (its page token, seen digests, position and floor). Nothing is written
   between flushes (the lease covers them): a failure or a crash re-reads at most the batch.
6. **Stop in time**: before the invocation's remaining time runs short, the batch read so far is
   flushed and the checkpoint keeps the scan's start and page token; the next run resumes there
   without a gap. ``stop_margin_ms`` must cover reading a page and flushing a full batch.

Trust boundaries:

- **One group's failure stays its own.** Whatever goes wrong with a log group (its read refused,
  DynamoDB or the bus failing while it is processed) is recorded in the run's report
  (``LogGroupReport.failed``), published as an ``IngestHealthIssue`` (detail type
  ``INGEST_HEALTH_DETAIL_TYPE``) and counted in the ``ConnectionLogGroupsFailed`` metric; the run goes
  on with the next group. The failed group's checkpoint stays where it was: the next run reads the
  batch again.
- **A record is judged by the endpoint that owns its log group.** ``run`` takes the owners of each
  log group (the endpoints whose connection logging writes there, from DescribeClientVpnEndpoints).
  A group no endpoint of the account and Region logs to is not read at all. A record naming an
  endpoint that does not own its group is attributed to the group's owner when it has one, and dropped
  when it has several (it cannot be told which); both are counted as foreign records.

``now`` (the detector's clock, the first-run look-back) comes from the caller: the schedule's time.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from cvpn_shared.monitoring.dal.checkpoints import Checkpoint, CheckpointConflict, LeaseHeld
from cvpn_shared.monitoring.dal.connection_logs import InvalidPageToken, LogEventPage, LogGroupMissing
from cvpn_shared.monitoring.dal.findings_bus import BusEntry
from cvpn_shared.monitoring.findings import (
    DETAIL_TYPE,
    HEALTH_DETAIL_TYPE,
    HEALTH_REASONS,
    SCHEMA_VERSION,
    Finding,
    HealthIssue,
    format_time,
)

__all__ = [
    "DETAIL_TYPE",
    "DOCUMENTED_FAILURE_REASONS",
    "HEALTH_DETAIL_TYPE",
    "INGEST_HEALTH_DETAIL_TYPE",
    "OTHER_FAILURE_REASON",
    "CheckpointStore",
    "ConnectionLogIngest",
    "EndpointArns",
    "FindingPublisher",
    "IngestHealthIssue",
    "IngestReport",
    "IngestSettings",
    "LogGroupReport",
    "SeenEvents",
    "attributed",
    "error_text",
    "failure_reason_dimension",
    "finding_entry",
    "health_entry",
    "log_groups_to_read",
    "record_ingest_metrics",
]

_DIGEST_BYTES = 8
_TIMESTAMP_BYTES = 6
_ENTRY_BYTES = _DIGEST_BYTES + _TIMESTAMP_BYTES

# The failure reasons the Client VPN administrator guide documents (connection logging): authorization
# policy, client-connect handler, device token; and "NA" (none given). Active Directory and SAML
# failures have no list: their free text is no metric dimension (see ``failure_reason_dimension``).
DOCUMENTED_FAILURE_REASONS: frozenset[str] = HEALTH_REASONS | {
    "NA",
    "authorization-policy-deny",
    "client-connect-failed",
    "token-expired",
    "signature-invalid",
    "token-malformed",
    "tenant-mismatch",
    "key-resolution-failed",
    "network-error",
    "internal-error",
}
OTHER_FAILURE_REASON = "other"

# The bus event of a log group the ingest could not read or process (for operations).
INGEST_HEALTH_DETAIL_TYPE = "Client VPN Connection Log Ingest Health"
# The longest error text an ``IngestHealthIssue`` carries (EventBridge entries are at most 256 KB).
MAX_ERROR_CHARS = 1000

logger = logging.getLogger(__name__)


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


class DetectionOutcome(Protocol):
    """What the detector returns for a run (``cvpn_shared.monitoring.detection.detector.DetectionResult``)."""

    @property
    def findings(self) -> Sequence[Finding]: ...

    @property
    def health(self) -> Sequence[HealthIssue]: ...


class Detector(Protocol):
    def observe(self, attempts: Sequence[Any], *, now: datetime) -> DetectionOutcome: ...


ParseEvents = Callable[[Sequence[Mapping[str, Any]]], tuple[Sequence[Any], Any]]


# ------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class IngestSettings:
    """How far back to read, how much to remember, how much to detect at once, when to stop.

    ``detect_batch_events``: fresh events held before a detection pass. 50,000 (plus at most one
    page of 10,000) keeps a batch near 200 MB at its peak (about 70 MB of events as CloudWatch returns
    them, 130 MB parsing and detecting them when every event is a failure; 100,000 events take 190 MB),
    a fifth of the function's 1024 MB, and its CPU in seconds, well inside ``stop_margin_ms``. Larger
    batches would save little: a backlog of N events writes each entity ceil(N / 50,000) times.
    """

    overlap: timedelta = timedelta(minutes=15)
    initial_lookback: timedelta = timedelta(hours=1)
    seen_capacity: int = 16_000
    detect_batch_events: int = 50_000
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
    foreign_records: int = 0
    complete: bool = False
    skipped: str | None = None
    failed: str | None = None


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
            "foreign_records": sum(report.foreign_records for report in self.log_groups),
            "log_groups_failed": sum(1 for report in self.log_groups if report.failed),
            "findings_published": len(self.findings),
            "failed_attempts": {
                f"{endpoint}/{reason}": n for (endpoint, reason), n in self.failed_attempts.items()
            },
        }


class IngestHealthIssue(BaseModel):
    """A connection log group one run could not read or process (operations, not security)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    log_group_name: str
    error: str
    failed_at: datetime
    kind: Literal["connection-log-group"] = "connection-log-group"

    def event_detail(self) -> dict[str, Any]:
        """JSON-serialisable detail of the bus event."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": self.kind,
            "log_group_name": self.log_group_name,
            "error": self.error,
            "failed_at": format_time(self.failed_at),
        }


def error_text(error: BaseException) -> str:
    """``Type: message`` of an error, on one line, at most ``MAX_ERROR_CHARS`` characters."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


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
        ordered = sorted((timestamp, digest) for digest, timestamp in self._entries.items())
        return b"".join(timestamp.to_bytes(_TIMESTAMP_BYTES, "big") + digest for timestamp, digest in ordered)

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


@dataclass
class _Batch:
    """The fresh events of consecutive pages of one scan, not yet detected on (nor checkpointed)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)
    pages: int = 0
    newest_ms: int | None = None

    def add_page(self, page: LogEventPage, *, seen: SeenEvents, floor_ms: int) -> int:
        """Keep the page's events not processed yet (nor already in the batch); returns how many
        were dropped as duplicates."""
        self.pages += 1
        dropped = 0
        for event in page.events:
            event_id, timestamp = str(event["eventId"]), int(event["timestamp"])
            if self.newest_ms is None or timestamp > self.newest_ms:
                self.newest_ms = timestamp
            if event_id in seen or event_id in self.event_ids or timestamp < floor_ms:
                dropped += 1
                continue
            self.event_ids.add(event_id)
            self.events.append(event)
        return dropped


@dataclass
class _Scan:
    """Where one claimed log group's scan stands: its checkpoint, what it read since the last flush."""

    log_group_name: str
    checkpoint: Checkpoint
    seen: SeenEvents
    start_ms: int
    token: str | None
    owners: frozenset[str] | None = None
    batch: _Batch = field(default_factory=_Batch)


# ------------------------------------------------------------------------------------------ logic
def log_groups_to_read(*sources: Iterable[str]) -> list[str]:
    """Every log group named by any source, once, in a stable order."""
    return sorted({name.strip() for source in sources for name in source if name and name.strip()})


def finding_entry(finding: Finding, *, source: str, arns: EndpointArns) -> BusEntry:
    """The bus event of a finding: the spec's Source, DetailType, Resources and Detail."""
    return _bus_entry(finding, DETAIL_TYPE, source=source, arns=arns)


def health_entry(issue: HealthIssue, *, source: str, arns: EndpointArns) -> BusEntry:
    """The bus event of a client-connect handler malfunction (for operations, not security)."""
    return _bus_entry(issue, HEALTH_DETAIL_TYPE, source=source, arns=arns)


def _bus_entry(
    finding: Finding | HealthIssue, detail_type: str, *, source: str, arns: EndpointArns
) -> BusEntry:
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
        self,
        log_groups: Sequence[str],
        *,
        now: datetime,
        remaining_ms: Callable[[], int],
        owners: Mapping[str, Collection[str]] | None = None,
    ) -> IngestReport:
        """Read every log group in turn until done or until the time left runs short.

        ``owners``: the endpoints that log to each group (see the module docstring); ``None`` trusts
        the endpoint each record names (for callers that read one endpoint's own group).
        A group that fails is reported, published as a health issue, and the next group is read.
        """
        report = IngestReport()
        for name in log_groups:
            group = LogGroupReport(name)
            report.log_groups.append(group)
            if remaining_ms() < self._settings.stop_margin_ms:
                group.skipped = "no time left in this invocation"
                continue
            group_owners = None if owners is None else frozenset(owners.get(name, ()))
            if group_owners is not None and not group_owners:
                group.skipped = "no Client VPN endpoint of this account and Region logs to it: not read"
                continue
            try:
                self._read_log_group(group, group_owners, now, remaining_ms, report)
            except Exception as error:  # one group's failure must not cost the others their run
                group.failed = error_text(error)
                logger.exception("connection log group %s failed", name)
                self._publish_failure(name, group.failed, report)
        return report

    def _publish_failure(self, name: str, error: str, report: IngestReport) -> None:
        """The failed group's health issue on the bus, best effort (the bus may be what failed)."""
        issue = IngestHealthIssue(
            log_group_name=name,
            error=error,
            failed_at=datetime.fromtimestamp(self._wall_clock_ms() / 1000, UTC),
        )
        entry = BusEntry(
            source=self._source,
            detail_type=INGEST_HEALTH_DETAIL_TYPE,
            detail=issue.event_detail(),
            resources=(),
        )
        try:
            self._publisher.publish([entry])
        except Exception:
            logger.warning("health issue of log group %s not published", name, exc_info=True)
            return
        report.health.append(entry.detail)

    def _read_log_group(
        self,
        group: LogGroupReport,
        owners: frozenset[str] | None,
        now: datetime,
        remaining_ms: Callable[[], int],
        report: IngestReport,
    ) -> None:
        name = group.log_group_name
        try:
            scan = self._claim(name, now, remaining_ms)
        except LeaseHeld:
            group.skipped = "another invocation holds this log group"
            return
        scan.owners = owners
        try:
            self._scan(scan, now, remaining_ms, group, report)
        except LogGroupMissing:
            group.skipped = "log group does not exist"
            self._checkpoints.release(scan.checkpoint)
        except CheckpointConflict:
            group.skipped = "checkpoint changed under this invocation (lease lost); nothing more written"
        except Exception:
            # Publishing or reading failed: the checkpoint stays where it was (the batch is read again),
            # and the lease goes back at once so the next scheduled run need not wait for it to expire.
            with contextlib.suppress(Exception):
                self._checkpoints.release(scan.checkpoint)
            raise

    def _claim(self, name: str, now: datetime, remaining_ms: Callable[[], int]) -> _Scan:
        """The log group's checkpoint, leased until the invocation's deadline, and where to read from."""
        wall_now = self._wall_clock_ms()
        checkpoint = self._checkpoints.claim(
            name, owner=self._owner, now_ms=wall_now, lease_until_ms=wall_now + max(0, remaining_ms())
        )
        seen = SeenEvents.from_bytes(checkpoint.seen_event_digests)
        if checkpoint.page_token and checkpoint.scan_start_ms is not None:
            return _Scan(name, checkpoint, seen, checkpoint.scan_start_ms, checkpoint.page_token)
        return _Scan(name, checkpoint, seen, self._scan_start(checkpoint, now), None)

    def _scan_start(self, checkpoint: Checkpoint, now: datetime) -> int:
        if checkpoint.position_ms is None:
            start = int((now - self._settings.initial_lookback).timestamp() * 1000)
        else:
            start = checkpoint.position_ms - int(self._settings.overlap.total_seconds() * 1000)
        return max(start, checkpoint.floor_ms)

    def _scan(
        self,
        scan: _Scan,
        now: datetime,
        remaining_ms: Callable[[], int],
        group: LogGroupReport,
        report: IngestReport,
    ) -> None:
        """Read page after page into the batch; flush it when full, at the scan's end, or in time."""
        restarted = False
        while True:
            if remaining_ms() < self._settings.stop_margin_ms:
                self._flush(scan, now, group, report)  # with the page token: the next run resumes there
                self._checkpoints.release(scan.checkpoint)
                group.skipped = "stopped before the invocation's deadline; the next run resumes"
                return
            try:
                page = self._reader.read_page(
                    scan.log_group_name,
                    start_time_ms=scan.start_ms,
                    next_token=scan.token,
                    limit=self._settings.page_limit,
                )
            except InvalidPageToken:
                if restarted:
                    raise
                # Start the scan over: the batch is read again with it, what was flushed is dropped by id.
                restarted, scan.token, scan.batch = True, None, _Batch()
                continue
            group.pages += 1
            group.events_read += len(page.events)
            group.duplicates += scan.batch.add_page(page, seen=scan.seen, floor_ms=scan.checkpoint.floor_ms)
            scan.token = page.next_token
            if scan.token is None:
                self._flush(scan, now, group, report)
                group.complete = True
                self._checkpoints.release(scan.checkpoint)
                return
            if len(scan.batch.events) >= self._settings.detect_batch_events:
                self._flush(scan, now, group, report)

    def _flush(self, scan: _Scan, now: datetime, group: LogGroupReport, report: IngestReport) -> None:
        """Detect on the batch and publish, then advance the checkpoint past it; a new batch begins."""
        if not scan.batch.pages:
            return  # nothing read since the last flush
        if scan.batch.events:
            self._detect_and_publish(scan.batch.events, scan.owners, now, group, report)
        scan.checkpoint = self._advance(scan)
        scan.batch = _Batch()

    def _detect_and_publish(
        self,
        events: list[dict[str, Any]],
        owners: frozenset[str] | None,
        now: datetime,
        group: LogGroupReport,
        report: IngestReport,
    ) -> None:
        """One detection pass over ``events`` (in log order) and its findings on the bus."""
        events.sort(key=lambda event: (int(event["timestamp"]), str(event["eventId"])))
        attempts, stats = self._parse(events)
        group.bad_lines += _bad_lines(stats)
        if owners is not None:
            attempts, group_foreign = attributed(attempts, owners)
            group.foreign_records += group_foreign
        outcome = self._detector.observe(attempts, now=now)
        findings = [finding_entry(f, source=self._source, arns=self._arns) for f in outcome.findings]
        health = [health_entry(issue, source=self._source, arns=self._arns) for issue in outcome.health]
        if findings or health:
            self._publisher.publish(findings + health)
        group.findings_published += len(findings)
        group.events_processed += len(events)
        report.findings.extend(entry.detail for entry in findings)
        report.health.extend(entry.detail for entry in health)
        report.failed_attempts.update(_failed_attempts(getattr(outcome, "failures", attempts)))

    def _advance(self, scan: _Scan) -> Checkpoint:
        """The checkpoint past the batch: its events seen, the position at the newest event read, the
        floor raised if the seen set overflowed, and the page token while the scan goes on."""
        checkpoint, batch = scan.checkpoint, scan.batch
        for event in batch.events:
            scan.seen.add(str(event["eventId"]), int(event["timestamp"]))
        position = checkpoint.position_ms
        if batch.newest_ms is not None:
            position = batch.newest_ms if position is None else max(position, batch.newest_ms)
        keep_from = (position or 0) - int(self._settings.overlap.total_seconds() * 1000)
        floor = scan.seen.trim(
            keep_from_ms=keep_from, capacity=self._settings.seen_capacity, floor_ms=checkpoint.floor_ms
        )
        advanced = checkpoint.advanced(
            position_ms=position,
            floor_ms=floor,
            seen_event_digests=scan.seen.to_bytes(),
            scan_start_ms=scan.start_ms if scan.token else None,
            page_token=scan.token,
            events_processed=checkpoint.events_processed + len(batch.events),
            updated_at_ms=self._wall_clock_ms(),
        )
        return self._checkpoints.save(advanced, expected_version=checkpoint.version)


def attributed(attempts: Sequence[Any], owners: frozenset[str]) -> tuple[list[Any], int]:
    """``attempts`` judged by the endpoints that own their log group, and how many named another.

    A record naming an owner stays as it is. One naming any other endpoint is attributed to the
    owner when the group has one (``attempt.on_endpoint``), and dropped when it has several.
    """
    sole_owner = next(iter(owners)) if len(owners) == 1 else None
    kept: list[Any] = []
    foreign = 0
    for attempt in attempts:
        if attempt.endpoint_id in owners:
            kept.append(attempt)
            continue
        foreign += 1
        if sole_owner is not None:
            kept.append(attempt.on_endpoint(sole_owner))
    return kept, foreign


def failure_reason_dimension(reason: str) -> str:
    """The ``FailureReason`` metric dimension of a failure reason: a documented reason as it is,
    anything else (credential failures' free text) ``"other"``, so the metrics stay a bounded set."""
    return reason if reason in DOCUMENTED_FAILURE_REASONS else OTHER_FAILURE_REASON


def record_ingest_metrics(metrics: Any, report: IngestReport) -> None:
    """CloudWatch metrics of a run: totals on the function's metrics, and one metric per failed-attempt
    (endpoint, reason) pair with those two dimensions (the reason as ``failure_reason_dimension``
    names it; the run's report and log keep the reason as logged).

    A total is published only when it is not zero: CloudWatch bills a custom metric for every hour
    it receives a value, and an idle stack runs the ingest every minute of the month. A graph or
    alarm reads a missing value as zero (``FILL(m, 0)``, ``TreatMissingData: notBreaching``); the
    run's log line keeps every total, zeros included."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    summary = report.summary()
    # Fixed dimensions (the function's own): a log group's name would make one billed metric per group.
    totals = {
        "ConnectionLogEventsProcessed": summary["events_processed"],
        "ConnectionLogDuplicatesDropped": summary["duplicates"],
        "ConnectionLogBadLines": summary["bad_lines"],
        "FindingsPublished": summary["findings_published"],
        "ConnectionLogGroupsFailed": summary["log_groups_failed"],
        "ConnectionLogForeignRecords": summary["foreign_records"],
    }
    for name, value in totals.items():
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    failures: Counter[tuple[str, str]] = Counter()
    for (endpoint_id, reason), count in report.failed_attempts.items():
        failures[(endpoint_id, failure_reason_dimension(reason))] += count
    for (endpoint_id, reason), count in sorted(failures.items()):
        with single_metric(
            name="FailedConnectionAttempts",
            unit=MetricUnit.Count,
            value=count,
            namespace=getattr(metrics, "namespace", None),
        ) as metric:
            metric.add_dimension(name="Endpoint", value=endpoint_id)
            metric.add_dimension(name="FailureReason", value=reason)


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
