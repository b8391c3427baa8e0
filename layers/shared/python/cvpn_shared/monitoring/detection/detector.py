"""Detection of suspicious Client VPN connection attempts (rules R1-R7 of the detection spec).

``Detector.observe`` takes one ingestion run's attempts and:

1. keeps each attempt once per (connection-id, status) - the same connection is logged again
   periodically - and sets handler malfunctions aside as health issues;
2. groups the rest by watched entity (source address, user; per endpoint) and reads those entities'
   records from the state store in one go, so windows span runs;
3. applies the run to each entity (``EntityRecord.apply``: thresholds, episodes, cooldown,
   recurrence, allow-list) and writes each changed record once, versioned; records another run
   changed meanwhile are read again and the run re-applied (nothing is counted twice);
4. returns the findings to publish (suppressed fires are not returned; their counts are kept).

Decisions (documented for operators):
- Time is the events' time: failures count at their log timestamp, successes at their connection
  start time (a periodic re-log of a session that began before an attack is not "after" it).
- Allow-list: a failure from an allow-listed CIDR is allow-listed for every rule; a user exemption
  applies to R1, R2 and R3 (never to the sprays R4 and R5: a spray is judged by its source, whoever
  it names; the response never blocks an allow-listed user whatever the rule, see
  ``alerting.blocks_for``). A finding is allow-listed when every failure it
  counts is. Allow-listed findings are still produced and published (``allowlisted: true``,
  Security Hub label INFORMATIONAL) so they are recorded; paging rules filter them out
  (EventBridge pattern ``"allowlisted": [false]``). R6 after an allow-listed attack is allow-listed.
- Escalation: an episode that starts within ``recurrence_window_seconds`` of the previous episode of
  the same rule and entity is a recurrence: ``occurrence`` + 1, ``escalated`` true and severity raised
  by ``min(occurrence - 1, max_escalation_steps)`` steps (default one), capped at CRITICAL.
- R6 is checked for the source and for the user of a success; when both fire for the same
  successful connection in a run, the source's finding is published and the user's is not. A success
  whose connection started more than the R6 window before the run's earliest event is a periodic
  re-log of a connection an earlier run already judged: it is not looked at again (this keeps the
  reads of a run proportional to new connections, not to every live session).
- Failures of client-connect handler malfunctions are neither counted by R1-R7 nor R6's attacks.

Speed (``bench/monitoring_parse_detect.py``): the pass over the attempts reads each
``ConnectionAttempt`` by its named positions (``STATUS``, ``DEVICE_IP``, ...: most attempts need only
a few of its seventeen fields) and groups plain tuples into one list per (endpoint, value) and kind;
successes an earlier run judged are dropped there, before any grouping; records are read and written
once per entity and run, and written only when they changed. ``observe`` runs with the cyclic garbage
collector paused (``gcpause``). What remains is mostly per entity: decoding, applying and encoding its
record (JSON), and one read per entity with a success (R6 needs its ``armed_at``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Final

from cvpn_shared.monitoring.attempts import (
    COMMON_NAME,
    CONNECTION_ID,
    CONNECTION_START_MS,
    DEVICE_IP,
    ENDPOINT_ID,
    FAILURE_REASON,
    LOG_TYPE,
    LOG_TYPE_ATTEMPT,
    STATUS,
    STATUS_FAILED,
    STATUS_SUCCESSFUL,
    TIMESTAMP_MS,
    USERNAME,
    ConnectionAttempt,
)
from cvpn_shared.monitoring.detection.config import DetectionSettings
from cvpn_shared.monitoring.detection.entities import (
    EntityRecord,
    FailureEvent,
    RunCounters,
    SuccessEvent,
    entity_key,
)
from cvpn_shared.monitoring.detection.entity_store import (
    DetectionStateConflict,
    DetectionStateStore,
    InMemoryDetectionState,
    StateWrite,
    StoredState,
)
from cvpn_shared.monitoring.detection.record_cache import CachedEntry, RecordCache
from cvpn_shared.monitoring.detection.rules import EntityKind
from cvpn_shared.monitoring.findings import (
    HANDLER_REASON_PREFIX,
    MAX_SAMPLE_CONNECTION_IDS,
    Finding,
    HealthIssue,
    is_health_reason,
)
from cvpn_shared.monitoring.gcpause import cyclic_gc_paused

__all__ = [
    "DetectionResult",
    "DetectionSettings",
    "DetectionStateConflict",
    "DetectionStateStore",
    "DetectionStats",
    "Detector",
    "InMemoryDetectionState",
]

MAX_SAVE_ATTEMPTS = 5
_SOURCE: Final[EntityKind] = "device_ip"
_USER: Final[EntityKind] = "user"


@dataclass
class DetectionStats:
    """What one ``observe`` call did."""

    attempts: int = 0
    failures: int = 0
    successes: int = 0
    duplicates_in_run: int = 0
    duplicates_across_runs: int = 0
    health_failures: int = 0
    entities: int = 0
    records_read: int = 0
    records_written: int = 0
    write_conflicts: int = 0
    fires: int = 0
    suppressed: int = 0
    findings: int = 0


@dataclass
class DetectionResult:
    """Findings to publish, health issues for operations, the run's failures (each counted once)."""

    findings: list[Finding] = field(default_factory=list)
    health: list[HealthIssue] = field(default_factory=list)
    failures: list[ConnectionAttempt] = field(default_factory=list)
    stats: DetectionStats = field(default_factory=DetectionStats)


@dataclass
class _HealthTally:
    count: int
    first: datetime
    last: datetime
    samples: list[str]


# An entity's share of a run: (endpoint, kind, value, failures, successes), each in time order.
_EntityRun = tuple[str, EntityKind, str, list[FailureEvent], list[SuccessEvent]]
_NEVER = 1 << 62  # a time after every event
_timestamp_ms = itemgetter(TIMESTAMP_MS)


class Detector:
    """Applies the rules to each run's attempts, with state kept in a ``DetectionStateStore``."""

    def __init__(
        self, settings: DetectionSettings, state: DetectionStateStore, *, cache: RecordCache | None = None
    ) -> None:
        self._settings = settings
        self._state = state
        self._cache = cache
        self._trusted = False  # whether this run believes the cache (``RecordCache.begin_run``)
        self._source_allowlisted: dict[str, bool] = {}
        self._run_floor_ms = 0

    @property
    def settings(self) -> DetectionSettings:
        return self._settings

    def observe(self, attempts: Iterable[ConnectionAttempt], *, now: datetime) -> DetectionResult:
        """Detect in one run's attempts; ``now`` (aware) dates the records' expiry.

        The cyclic garbage collector is paused meanwhile (``gcpause``: nothing here makes a cycle).
        """
        with cyclic_gc_paused():
            return self._observe(attempts, now)

    def _observe(self, attempts: Iterable[ConnectionAttempt], now: datetime) -> DetectionResult:
        result = DetectionResult()
        stats = result.stats
        cache = self._cache
        if cache is not None:
            self._trusted = cache.begin_run(self._state, self._settings)
        else:  # a run without a cache still tells the cached processes that it writes
            self._state.advance_generation()
        runs, health = self._group(attempts, result)
        result.health = [
            HealthIssue(
                endpoint_id=endpoint_id,
                reason=reason,
                count=tally.count,
                first_seen=tally.first,
                last_seen=tally.last,
                sample_connection_ids=tally.samples,
            )
            for (endpoint_id, reason), tally in sorted(health.items())
        ]
        if runs:
            result.findings = self._apply(runs, now, stats)
        stats.findings = len(result.findings)
        return result

    # ----- one pass over the attempts ------------------------------------------------------------

    def _group(
        self, attempts: Iterable[ConnectionAttempt], result: DetectionResult
    ) -> tuple[dict[str, _EntityRun], dict[tuple[str, str], _HealthTally]]:
        """One pass: each attempt once, by entity. Reads the tuples by named position (the hot loop).

        A success whose connection started more than R6's window before the run's earliest event was
        first logged (and judged) in an earlier run: a periodic re-log, left out here already.
        """
        settings = self._settings
        stats = result.stats
        failures = result.failures
        notable_reasons = settings.notable_reasons
        exempt_users = settings.exempt_users
        check_allowlist = bool(settings.allowlist_networks)
        allowlisted = self._is_allowlisted
        rows = attempts if isinstance(attempts, list) else list(attempts)
        floor = min(map(_timestamp_ms, rows)) if rows else 0
        self._run_floor_ms = floor
        # R6 off: no success matters (_NEVER is after every event).
        judged_before = floor - settings.r6_window_seconds * 1000 if settings.enabled("R6") else _NEVER
        seen_failed: set[str] = set()
        seen_successful: set[str] = set()
        run_successes: list[ConnectionAttempt] = []
        # (endpoint, value) -> events, per kind; one list per entity, built without per-event objects.
        source_failures: dict[tuple[str, str], list[FailureEvent]] = {}
        user_failures: dict[tuple[str, str], list[FailureEvent]] = {}
        health: dict[tuple[str, str], _HealthTally] = {}
        successes = 0
        duplicates = 0
        health_failures = 0
        for attempt in rows:
            if attempt[LOG_TYPE] != LOG_TYPE_ATTEMPT:
                continue
            status = attempt[STATUS]
            if status == STATUS_SUCCESSFUL:
                connection_id = attempt[CONNECTION_ID]
                if connection_id in seen_successful:
                    duplicates += 1
                    continue
                seen_successful.add(connection_id)
                successes += 1
                moment = attempt[CONNECTION_START_MS]
                if moment is None:
                    moment = attempt[TIMESTAMP_MS]
                if moment >= judged_before:
                    run_successes.append(attempt)
            elif status == STATUS_FAILED:
                connection_id = attempt[CONNECTION_ID]
                if connection_id in seen_failed:
                    duplicates += 1
                    continue
                seen_failed.add(connection_id)
                failures.append(attempt)
                reason = attempt[FAILURE_REASON]
                if (
                    reason is not None
                    and reason.startswith(HANDLER_REASON_PREFIX)
                    and is_health_reason(reason)
                ):
                    _tally(health, attempt, reason)
                    health_failures += 1
                    continue
                device_ip = attempt[DEVICE_IP]
                username = attempt[USERNAME]
                common_name = attempt[COMMON_NAME]
                user = username or common_name
                endpoint_id = attempt[ENDPOINT_ID]
                source_allowed = allowlisted(device_ip) if check_allowlist else False
                user_exempt = user in exempt_users
                notable = reason in notable_reasons
                moment = attempt[TIMESTAMP_MS]
                if device_ip is not None:
                    key = (endpoint_id, device_ip)
                    events = source_failures.get(key)
                    failure: FailureEvent = (
                        moment, connection_id, user, reason, source_allowed, user_exempt, username,
                        common_name, notable,
                    )  # fmt: skip
                    if events is None:
                        source_failures[key] = [failure]
                    else:
                        events.append(failure)
                if user is not None:
                    key = (endpoint_id, user)
                    events = user_failures.get(key)
                    failure = (
                        moment, connection_id, device_ip, reason, source_allowed, user_exempt, username,
                        common_name, notable,
                    )  # fmt: skip
                    if events is None:
                        user_failures[key] = [failure]
                    else:
                        events.append(failure)
        stats.attempts = len(rows)
        stats.successes = successes
        stats.duplicates_in_run += duplicates
        stats.health_failures += health_failures
        stats.failures = len(failures) - stats.health_failures
        source_successes, user_successes = self._successes_to_judge(
            run_successes, source_failures, user_failures
        )
        runs: dict[str, _EntityRun] = {}
        for kind, kind_failures, kind_successes in (
            (_SOURCE, source_failures, source_successes),
            (_USER, user_failures, user_successes),
        ):
            for (endpoint_id, value), events in kind_failures.items():
                if len(events) > 1:
                    events.sort(key=_moment)
                found = kind_successes.pop((endpoint_id, value), None)
                if found is not None and len(found) > 1:
                    found.sort(key=_moment)
                runs[entity_key(endpoint_id, kind, value)] = (endpoint_id, kind, value, events, found or [])
            for (endpoint_id, value), found in kind_successes.items():
                if len(found) > 1:
                    found.sort(key=_moment)
                runs[entity_key(endpoint_id, kind, value)] = (endpoint_id, kind, value, [], found)
        return runs, health

    def _successes_to_judge(
        self,
        run_successes: list[ConnectionAttempt],
        source_failures: dict[tuple[str, str], list[FailureEvent]],
        user_failures: dict[tuple[str, str], list[FailureEvent]],
    ) -> tuple[dict[tuple[str, str], list[SuccessEvent]], dict[tuple[str, str], list[SuccessEvent]]]:
        """The run's successes by source and by user, left out where R6 cannot fire: for an entity
        the believed cache holds as not armed and that has no failure in this run."""
        cache = self._cache
        if cache is not None and self._trusted:
            known_sources, armed_sources = cache.known(_SOURCE), cache.armed(_SOURCE)
            known_users, armed_users = cache.known(_USER), cache.armed(_USER)
        else:  # nothing believed: every entity is unknown
            known_sources = armed_sources = known_users = armed_users = set()
        source_successes: dict[tuple[str, str], list[SuccessEvent]] = {}
        user_successes: dict[tuple[str, str], list[SuccessEvent]] = {}
        for attempt in run_successes:
            endpoint_id = attempt[ENDPOINT_ID]
            device_ip = attempt[DEVICE_IP]
            username = attempt[USERNAME]
            common_name = attempt[COMMON_NAME]
            user = username or common_name
            source_key = (endpoint_id, device_ip)
            user_key = (endpoint_id, user)
            judge_source = device_ip is not None and (
                source_key in source_failures
                or source_key in armed_sources
                or source_key not in known_sources
            )
            judge_user = user is not None and (
                user_key in user_failures or user_key in armed_users or user_key not in known_users
            )
            if not (judge_source or judge_user):
                continue
            moment = attempt[CONNECTION_START_MS]
            if moment is None:
                moment = attempt[TIMESTAMP_MS]
            connection_id = attempt[CONNECTION_ID]
            if judge_source:
                success: SuccessEvent = (moment, connection_id, user, username, common_name)
                found = source_successes.get(source_key)
                if found is None:
                    source_successes[source_key] = [success]
                else:
                    found.append(success)
            if judge_user:
                success = (moment, connection_id, device_ip, username, common_name)
                found = user_successes.get(user_key)
                if found is None:
                    user_successes[user_key] = [success]
                else:
                    found.append(success)
        return source_successes, user_successes

    def _is_allowlisted(self, device_ip: str | None) -> bool:
        networks = self._settings.allowlist_networks
        if device_ip is None or not networks:
            return False
        known = self._source_allowlisted.get(device_ip)
        if known is None:
            try:
                address = ipaddress.ip_address(device_ip)
            except ValueError:
                known = False
            else:
                known = any(address in network for network in networks)
            if len(self._source_allowlisted) > 100_000:
                self._source_allowlisted.clear()
            self._source_allowlisted[device_ip] = known
        return known

    # ----- entities against the store ------------------------------------------------------------

    def _apply(self, runs: dict[str, _EntityRun], now: datetime, stats: DetectionStats) -> list[Finding]:
        try:
            return self._apply_entities(runs, now, stats)
        except BaseException:
            if self._cache is not None:
                self._cache.clear()  # records changed in memory may not have been written
            raise

    def _apply_entities(
        self, runs: dict[str, _EntityRun], now: datetime, stats: DetectionStats
    ) -> list[Finding]:
        settings = self._settings
        cache = self._cache
        now_epoch = int(now.timestamp())
        ttl = settings.state_ttl_seconds
        r6_window_ms = settings.r6_window_seconds * 1000 if settings.enabled("R6") else -1
        stats.entities = len(runs)
        current = self._current(runs, now_epoch, stats)
        outcome: dict[str, tuple[list[Finding], RunCounters]] = {}
        pending = list(runs)
        for _ in range(MAX_SAVE_ATTEMPTS):
            writes: list[StateWrite] = []
            records: dict[str, EntityRecord] = {}
            for key in pending:
                endpoint_id, kind, value, run_failures, run_successes = runs[key]
                version, expires_at, armed_at, held = current[key]
                if not run_failures and not _may_follow_an_attack(armed_at, run_successes, r6_window_ms):
                    continue  # only successes, none soon after an attack on record: nothing to do
                if version and expires_at <= now_epoch:  # expired in the cache: the table has none
                    version, armed_at, held = 0, None, None
                if held.__class__ is EntityRecord:
                    record: EntityRecord = held  # type: ignore[assignment]
                    record.changed = False
                else:
                    data = held.data if held is not None else None  # type: ignore[union-attr]
                    record = EntityRecord.from_record(settings, endpoint_id, kind, value, data)
                counters = RunCounters()
                outcome[key] = (record.apply(run_failures, run_successes, counters), counters)
                if record.changed:
                    expires = max(now_epoch, record.latest // 1000) + ttl
                    writes.append(StateWrite(key, record.to_record(), version, expires, record.armed_at))
                    records[key] = record
            lost = self._state.save(writes, now_epoch=now_epoch) if writes else []
            stats.records_written += len(writes) - len(lost)
            if cache is not None:
                lost_keys = set(lost)
                for write in writes:
                    if write.key not in lost_keys:
                        written = records[write.key]
                        cache.put(
                            write.key,
                            (write.expected_version + 1, write.expires_at, write.armed_at, written),
                            entity=(written.kind, written.endpoint_id, written.value),
                        )
            if not lost:
                break
            stats.write_conflicts += len(lost)
            fresh = self._state.load(lost, now_epoch=now_epoch)
            stats.records_read += len(lost)
            for key in lost:
                current[key] = entry = _entry(fresh.get(key))
                if cache is not None:
                    cache.put(key, entry)
            pending = lost
        else:
            raise DetectionStateConflict(
                f"{len(pending)} entity records kept changing: {sorted(pending)[:5]}"
            )
        with_findings: dict[str, list[Finding]] = {}
        for key, (found, counters) in outcome.items():
            stats.fires += counters.fires
            stats.suppressed += counters.suppressed
            stats.duplicates_across_runs += counters.duplicates_skipped
            if found:
                with_findings[key] = found
        # In entity-key order (deterministic); only the few entities with findings are sorted.
        findings = [finding for key in sorted(with_findings) for finding in with_findings[key]]
        return _one_success_after_attack_per_connection(findings)

    def _current(
        self, runs: dict[str, _EntityRun], now_epoch: int, stats: DetectionStats
    ) -> dict[str, CachedEntry]:
        """Each entity's record as it stands: from the cache when it may be believed, else read."""
        cache = self._cache
        if cache is not None and self._trusted:
            entries = cache.entries
            current = {key: entries[key] for key in runs if key in entries}
            missing = [key for key in runs if key not in current]
        else:
            current = {}
            missing = list(runs)
        if missing:
            stored = self._state.load(missing, now_epoch=now_epoch)
            stats.records_read += len(missing)
            found = {key: _entry(stored.get(key)) for key in missing}
            current.update(found)
            if cache is not None:
                cache.update(found)
        return current


def _entry(stored: StoredState | None) -> CachedEntry:
    """A record as read (or its absence) as a cache entry."""
    if stored is None:
        return _ABSENT
    return (stored.version, stored.expires_at, stored.armed_at, stored)


_ABSENT: Final[CachedEntry] = (0, 0, None, None)


def _may_follow_an_attack(armed_at: int | None, successes: list[SuccessEvent], window_ms: int) -> bool:
    """Whether a success of the run may come within R6's window after the entity's last attack."""
    if armed_at is None or not successes or window_ms < 0:
        return False
    armed_second = armed_at - armed_at % 1000  # see EntityRecord._successes: compared to the second
    return any(0 <= moment - armed_second <= window_ms for moment, _, _, _, _ in successes)


_moment = itemgetter(0)


def _tally(health: dict[tuple[str, str], _HealthTally], attempt: ConnectionAttempt, reason: str) -> None:
    key = (attempt.endpoint_id, reason)
    tally = health.get(key)
    if tally is None:
        health[key] = _HealthTally(1, attempt.timestamp, attempt.timestamp, [attempt.connection_id])
        return
    tally.count += 1
    tally.first = min(tally.first, attempt.timestamp)
    tally.last = max(tally.last, attempt.timestamp)
    if len(tally.samples) < MAX_SAMPLE_CONNECTION_IDS:
        tally.samples.append(attempt.connection_id)


def _one_success_after_attack_per_connection(findings: list[Finding]) -> list[Finding]:
    """Drop a user's R6 finding when the source's R6 finding reports the same successful connection."""
    by_source = {
        finding.sample_connection_ids[0]
        for finding in findings
        if finding.rule_id == "R6"
        and finding.entity_key.startswith("device_ip:")
        and finding.sample_connection_ids
    }
    return [
        finding
        for finding in findings
        if not (
            finding.rule_id == "R6"
            and finding.entity_key.startswith("user:")
            and finding.sample_connection_ids
            and finding.sample_connection_ids[0] in by_source
        )
    ]
