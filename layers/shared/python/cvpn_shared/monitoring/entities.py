"""One watched entity (a source address or a user on one endpoint) and the rules that watch it.

A source address (``device_ip``) is watched by R1 (failures), R4 and R5 (distinct users), R7
(notable failures) and R6 (a success after R1/R4/R5 fired for it). A user is watched by R2
(failures), R3 (distinct sources and failures) and R6 (a success after R2/R3 fired for it); R7
watches a user only for records without a device-ip.

``EntityRecord.apply`` takes the run's events of the entity, in time order, and updates the record
the store returned (or a new one). It is deterministic and idempotent: a connection attempt the
record already counted (same connection-id and status) is skipped, so applying a run again to a
fresher record after a lost write race counts nothing twice.

What the record keeps, each bounded (see ``DetectionSettings``):
- ``seen``: the attempts counted, for ``dedup_horizon_seconds`` (at most ``max_seen_attempts``);
- ``recent``: the failures inside the longest failure-count window of the entity's rules (at most
  ``max_window_events``, which is at least every failure threshold, so the thresholds stay exact);
- ``distinct``: the last failure time of each user (source) or source (user), the most recent only,
  as many as the distinct-value thresholds need, inside the longest distinct-value window;
- ``episodes`` per rule and ``armed`` (when an attack rule last fired, for R6).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from cvpn_shared.monitoring.detection_settings import DetectionSettings
from cvpn_shared.monitoring.episodes import MAX_SAMPLES, Episode, to_ms
from cvpn_shared.monitoring.findings import Finding, FindingCounts, FindingEntity, FindingWindow, finding_id
from cvpn_shared.monitoring.rules import ATTACK_RULES, RULES, EntityKind, escalate

__all__ = ["EntityEvent", "EntityRecord", "RunCounters", "entity_key"]

RECORD_FORMAT = 1


class EntityEvent(NamedTuple):
    """A counted attempt as the entity sees it. ``other`` is the user (source) or the source (user)."""

    moment: float  # epoch seconds: failure -> log time; success -> connection start time
    is_failure: bool
    connection_id: str
    other: str | None
    reason: str | None
    source_allowlisted: bool  # device-ip inside an allow-listed CIDR
    user_exempt: bool  # user exempted (R1/R2 only)
    username: str | None
    common_name: str | None
    notable: bool  # R7 reason


@dataclass
class RunCounters:
    """What the entities of one run did, for the detection stats."""

    failures_counted: int = 0
    duplicates_skipped: int = 0
    fires: int = 0
    suppressed: int = 0
    published: int = 0


def entity_key(endpoint_id: str, kind: EntityKind, value: str) -> str:
    """The record's key (DynamoDB ``pk``): ``<endpoint>#<kind>#<value>``."""
    return f"{endpoint_id}#{kind}#{value}"


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class EntityRecord:
    """The detection state of one entity, loaded from its stored record and applied a run's events."""

    settings: DetectionSettings
    endpoint_id: str
    kind: EntityKind
    value: str
    seen: dict[str, float] = field(default_factory=dict)
    recent: list[tuple[float, str, str | None, str | None, bool, bool]] = field(default_factory=list)
    recent_times: list[float] = field(default_factory=list)
    distinct: dict[str, float] = field(default_factory=dict)
    episodes: dict[str, Episode] = field(default_factory=dict)
    armed: dict[str, Any] | None = None
    username: str | None = None
    common_name: str | None = None
    latest: float = 0.0
    changed: bool = False

    # ----- stored form ---------------------------------------------------------------------------

    @classmethod
    def from_record(
        cls,
        settings: DetectionSettings,
        endpoint_id: str,
        kind: EntityKind,
        value: str,
        data: dict[str, Any] | None,
    ) -> EntityRecord:
        """The entity as stored (``data``), or a new one when ``data`` is ``None``."""
        record = cls(settings, endpoint_id, kind, value)
        if not data:
            return record
        record.seen = {key: moment / 1000 for key, moment in data.get("seen", {}).items()}
        recent = sorted(
            (row[0] / 1000, row[1], row[2], row[3], bool(row[4]), bool(row[5]))
            for row in data.get("recent", ())
        )
        record.recent = recent
        record.recent_times = [row[0] for row in recent]
        record.distinct = {key: moment / 1000 for key, moment in data.get("distinct", {}).items()}
        record.episodes = {rule: Episode.from_record(item) for rule, item in data.get("episodes", {}).items()}
        armed = data.get("armed")
        record.armed = {"t": armed["t"] / 1000, "rule": armed["rule"]} if armed else None
        record.username = data.get("username")
        record.common_name = data.get("common_name")
        record.latest = data.get("latest", 0) / 1000
        return record

    def to_record(self) -> dict[str, Any]:
        """The JSON-friendly stored form (pruned first)."""
        self._prune()
        return {
            "format": RECORD_FORMAT,
            "endpoint": self.endpoint_id,
            "kind": self.kind,
            "value": self.value,
            "seen": {key: to_ms(moment) for key, moment in self.seen.items()},
            "recent": [
                [to_ms(row[0]), row[1], row[2], row[3], int(row[4]), int(row[5])] for row in self.recent
            ],
            "distinct": {key: to_ms(moment) for key, moment in self.distinct.items()},
            "episodes": {rule: episode.to_record() for rule, episode in sorted(self.episodes.items())},
            "armed": {"t": to_ms(self.armed["t"]), "rule": self.armed["rule"]} if self.armed else None,
            "username": self.username,
            "common_name": self.common_name,
            "latest": to_ms(self.latest),
        }

    @property
    def exists(self) -> bool:
        """Whether the entity has anything recorded (a new entity with only successes has not)."""
        return bool(self.seen or self.episodes or self.recent or self.distinct)

    # ----- applying a run ------------------------------------------------------------------------

    def apply(self, events: Sequence[EntityEvent], counters: RunCounters) -> list[Finding]:
        """Count the run's events (time order) and return the findings to publish."""
        findings: list[Finding] = []
        for rule in self.episodes.values():
            rule.published = False
        on_failure = self._on_source_failure if self.kind == "device_ip" else self._on_user_failure
        for event in events:
            if event.is_failure:
                attempt_key = event.connection_id
                if attempt_key in self.seen:
                    counters.duplicates_skipped += 1
                    continue
                self.seen[attempt_key] = event.moment
                self.changed = True
                counters.failures_counted += 1
                if event.moment > self.latest:
                    self.latest = event.moment
                if self.kind == "user" and (event.username or event.common_name):
                    self.username, self.common_name = event.username, event.common_name
                on_failure(event, counters, findings)
            else:
                self._on_success(event, counters, findings)
        for rule_id, episode in sorted(self.episodes.items()):
            if episode.published:
                findings.append(self._finding(rule_id, episode))
                episode.published = False
        return findings

    def _on_source_failure(self, event: EntityEvent, counters: RunCounters, findings: list[Finding]) -> None:
        settings = self.settings
        moment = event.moment
        source_allowed = event.source_allowlisted
        self._remember_failure(event)
        if event.other is not None:
            self._remember_distinct(
                event.other, moment, max(settings.r4_distinct_users, settings.r5_distinct_users)
            )
        if settings.enabled("R1"):
            start = self._count_fire(moment, settings.r1_window_seconds, settings.r1_failures)
            self._advance("R1", event, start, source_allowed or event.user_exempt, counters, findings)
        if settings.enabled("R4") or settings.enabled("R5"):
            latest_first = sorted(self.distinct.values(), reverse=True)
            if settings.enabled("R4"):
                start = _distinct_fire(
                    latest_first, moment, settings.r4_window_seconds, settings.r4_distinct_users
                )
                self._advance("R4", event, start, source_allowed, counters, findings, seed_distinct=True)
            if settings.enabled("R5"):
                start = _distinct_fire(
                    latest_first, moment, settings.r5_window_seconds, settings.r5_distinct_users
                )
                self._advance("R5", event, start, source_allowed, counters, findings, seed_distinct=True)
        if settings.enabled("R7") and event.notable:
            self._advance("R7", event, moment, source_allowed, counters, findings, seed_window=False)

    def _on_user_failure(self, event: EntityEvent, counters: RunCounters, findings: list[Finding]) -> None:
        settings = self.settings
        moment = event.moment
        self._remember_failure(event)
        if event.other is not None:
            self._remember_distinct(event.other, moment, settings.r3_distinct_ips)
        if settings.enabled("R2"):
            start = self._count_fire(moment, settings.r2_window_seconds, settings.r2_failures)
            allowed = event.source_allowlisted or event.user_exempt
            self._advance("R2", event, start, allowed, counters, findings)
        if settings.enabled("R3"):
            start = None
            by_count = self._count_fire(moment, settings.r3_window_seconds, settings.r3_failures)
            if by_count is not None:
                latest_first = sorted(self.distinct.values(), reverse=True)
                by_ips = _distinct_fire(
                    latest_first, moment, settings.r3_window_seconds, settings.r3_distinct_ips
                )
                if by_ips is not None:
                    start = min(by_count, by_ips)
            self._advance(
                "R3", event, start, event.source_allowlisted, counters, findings, seed_distinct=True
            )
        if settings.enabled("R7") and event.notable and event.other is None:
            # R7 is the source's rule; the user carries it only for records without a device-ip.
            self._advance(
                "R7", event, moment, event.source_allowlisted, counters, findings, seed_window=False
            )

    def _on_success(self, event: EntityEvent, counters: RunCounters, findings: list[Finding]) -> None:
        armed = self.armed
        if armed is None or not self.settings.enabled("R6"):
            return
        since = event.moment - armed["t"]
        if since < 0 or since > self.settings.r6_window_seconds:
            return
        attempt_key = f"{event.connection_id}|successful"
        if attempt_key in self.seen:
            counters.duplicates_skipped += 1
            return
        self.seen[attempt_key] = event.moment
        self.changed = True
        if event.moment > self.latest:
            self.latest = event.moment
        attack = self.episodes.get(armed["rule"])
        allowed = attack.allowlisted if attack is not None else False
        self._advance(
            "R6", event, event.moment, allowed, counters, findings, seed_window=False, attack=attack
        )
        episode = self.episodes.get("R6")
        if episode is not None and episode.open:
            device_ip = self.value if self.kind == "device_ip" else event.other
            episode.identity = (device_ip, event.username, event.common_name)

    # ----- windows ---------------------------------------------------------------------------------

    def _remember_failure(self, event: EntityEvent) -> None:
        row = (
            event.moment,
            event.connection_id,
            event.other,
            event.reason,
            event.source_allowlisted,
            event.user_exempt,
        )
        times = self.recent_times
        if not times or event.moment >= times[-1]:
            times.append(event.moment)
            self.recent.append(row)
        else:
            position = bisect_right(times, event.moment)
            times.insert(position, event.moment)
            insort(self.recent, row, lo=max(position - 1, 0))
        if len(times) > 2 * self.settings.max_window_events:
            keep = self.settings.max_window_events
            del times[:-keep]
            del self.recent[:-keep]

    def _remember_distinct(self, value: str, moment: float, keep: int) -> None:
        distinct = self.distinct
        previous = distinct.get(value)
        if previous is None or moment > previous:
            distinct[value] = moment
        if len(distinct) > 2 * keep + 8:
            newest = sorted(distinct.items(), key=lambda item: item[1], reverse=True)[:keep]
            self.distinct = dict(newest)

    def _count_fire(self, moment: float, window: float, threshold: int) -> float | None:
        """Start of a window with >= ``threshold`` failures that holds ``moment``, else None.

        Normally ``moment`` is the newest failure and the window ends there. A late failure (older
        than some already counted) may complete a window that ends at a later failure: those
        windows, ending at most ``window`` after it, are checked too.
        """
        times = self.recent_times
        upto = bisect_right(times, moment)
        end = len(times) if upto == len(times) else bisect_right(times, moment + window, lo=upto)
        for last in range(upto, end + 1):
            if last < threshold:
                continue
            start = times[last - threshold]
            if start > times[last - 1] - window and start <= moment:
                return start
        return None

    # ----- episodes --------------------------------------------------------------------------------

    def _advance(
        self,
        rule_id: str,
        event: EntityEvent,
        start: float | None,
        allowed: bool,
        counters: RunCounters,
        findings: list[Finding],
        *,
        seed_window: bool = True,
        seed_distinct: bool = False,
        attack: Episode | None = None,
    ) -> None:
        """Count ``event`` in the rule's open episode; open one when the rule fires (``start`` set)."""
        settings = self.settings
        moment = event.moment
        episode = self.episodes.get(rule_id)
        if (
            episode is not None
            and episode.open
            and moment - episode.last > settings.episode_gap_seconds(rule_id)
        ):
            episode.open = False
            if episode.published:
                findings.append(self._finding(rule_id, episode))
                episode.published = False
        if episode is not None and episode.open:
            self._count(episode, event, allowed)
            if start is None:
                return
            counters.fires += 1
            if moment > episode.fired:
                episode.fired = moment
            self._arm(rule_id, moment)
            if episode.should_publish(moment, settings.cooldown_seconds):
                episode.mark_published(moment)
                counters.published += 1
            else:
                counters.suppressed += 1
            return
        if start is None:
            return
        counters.fires += 1
        occurrence = 1
        if episode is not None and start - episode.last <= settings.recurrence_window_seconds:
            occurrence = episode.occurrence + 1
        episode = Episode(start, occurrence)
        episode.fired = moment
        self.episodes[rule_id] = episode
        if seed_window:
            self._seed(episode, rule_id, start, moment, event, seed_distinct)
        else:
            self._count(episode, event, allowed)
        if attack is not None:
            _seed_from_attack(episode, attack)
        self._arm(rule_id, moment)
        episode.mark_published(moment)
        counters.published += 1

    def _count(self, episode: Episode, event: EntityEvent, allowed: bool) -> None:
        user, device_ip = (event.other, self.value) if self.kind == "device_ip" else (self.value, event.other)
        episode.count(
            event.moment,
            event.connection_id,
            user,
            device_ip,
            event.reason,
            allowed,
            self.settings.max_tracked_values,
            is_failure=event.is_failure,
        )

    def _seed(
        self,
        episode: Episode,
        rule_id: str,
        start: float,
        moment: float,
        event: EntityEvent,
        seed_distinct: bool,
    ) -> None:
        """Count the failures of the window that made the rule fire (they came before the episode)."""
        times = self.recent_times
        first = bisect_left(times, start)
        # Every retained failure from the start on: a late failure's window may end after it.
        for moment_, connection_id, other, reason, source_allowed, user_exempt in self.recent[first:]:
            allowed = _allowed(rule_id, source_allowed, user_exempt)
            self._count(
                episode,
                EntityEvent(
                    moment_,
                    True,
                    connection_id,
                    other,
                    reason,
                    source_allowed,
                    user_exempt,
                    None,
                    None,
                    False,
                ),
                allowed,
            )
        if seed_distinct:
            # Distinct-value rules may fire on values older than the retained failures (R5: a day).
            for other, last in self.distinct.items():
                if start <= last:
                    target = episode.users if self.kind == "device_ip" else episode.ips
                    if len(target) < self.settings.max_tracked_values:
                        target.add(other)
        if episode.first > start:
            episode.first = start
        if episode.failures == 0:
            self._count(episode, event, _allowed(rule_id, event.source_allowlisted, event.user_exempt))

    def _arm(self, rule_id: str, moment: float) -> None:
        if rule_id in ATTACK_RULES[self.kind] and (self.armed is None or moment >= self.armed["t"]):
            self.armed = {"t": moment, "rule": rule_id}

    # ----- findings ----------------------------------------------------------------------------

    def _finding(self, rule_id: str, episode: Episode) -> Finding:
        spec = RULES[rule_id]
        settings = self.settings
        key = f"{self.kind}:{self.value}"
        escalation = min(episode.occurrence - 1, settings.max_escalation_steps)
        if episode.identity is not None:
            device_ip, username, common_name = episode.identity
            entity = FindingEntity(device_ip=device_ip, username=username, common_name=common_name)
        elif self.kind == "device_ip":
            single_user = next(iter(episode.users)) if len(episode.users) == 1 else None
            entity = FindingEntity(device_ip=self.value, username=single_user)
        else:
            single_ip = next(iter(episode.ips)) if len(episode.ips) == 1 else None
            named = self.username is not None or self.common_name is not None
            entity = FindingEntity(
                device_ip=single_ip,
                username=self.username if named else self.value,
                common_name=self.common_name,
            )
        start = _time(episode.start)
        return Finding(
            finding_id=finding_id(rule_id, self.endpoint_id, key, start),
            rule_id=spec.rule_id,
            title=f"{spec.title}: {self.value}",
            severity=escalate(spec.severity, escalation),
            mitre=list(spec.mitre),
            entity=entity,
            entity_key=key,
            endpoint_id=self.endpoint_id,
            window=FindingWindow(start=start, end=_time(max(episode.last, episode.fired))),
            first_seen=_time(episode.first),
            last_seen=_time(episode.last),
            counts=FindingCounts(
                failures=episode.failures, distinct_users=len(episode.users), distinct_ips=len(episode.ips)
            ),
            failure_reasons=list(episode.reasons),
            sample_connection_ids=list(episode.samples),
            allowlisted=episode.allowlisted,
            runbook_url=settings.runbook_url,
            escalated=escalation > 0,
            occurrence=episode.occurrence,
        )

    # ----- bounds ------------------------------------------------------------------------------

    def _prune(self) -> None:
        settings = self.settings
        latest = self.latest
        horizon = latest - settings.dedup_horizon_seconds
        seen = {key: moment for key, moment in self.seen.items() if moment >= horizon}
        if len(seen) > settings.max_seen_attempts:
            seen = dict(sorted(seen.items(), key=lambda item: item[1])[-settings.max_seen_attempts :])
        self.seen = seen
        if self.kind == "device_ip":
            recent_window = max(settings.r1_window_seconds, settings.r4_window_seconds)
            distinct_window = max(settings.r4_window_seconds, settings.r5_window_seconds)
            distinct_keep = max(settings.r4_distinct_users, settings.r5_distinct_users)
        else:
            recent_window = max(settings.r2_window_seconds, settings.r3_window_seconds)
            distinct_window = settings.r3_window_seconds
            distinct_keep = settings.r3_distinct_ips
        cut = bisect_right(self.recent_times, latest - recent_window)
        keep_from = max(cut, len(self.recent_times) - settings.max_window_events)
        del self.recent_times[:keep_from]
        del self.recent[:keep_from]
        newest = sorted(
            ((key, moment) for key, moment in self.distinct.items() if moment > latest - distinct_window),
            key=lambda item: item[1],
            reverse=True,
        )[:distinct_keep]
        self.distinct = dict(newest)
        self.episodes = {
            rule: episode
            for rule, episode in self.episodes.items()
            if latest - episode.last
            <= settings.recurrence_window_seconds + settings.episode_gap_seconds(rule)
        }
        if self.armed is not None and latest - self.armed["t"] > settings.r6_window_seconds:
            self.armed = None


def _distinct_fire(latest_first: list[float], moment: float, window: float, threshold: int) -> float | None:
    """Start of the window if >= ``threshold`` distinct values were last seen in it, else None."""
    if len(latest_first) < threshold:
        return None
    start = latest_first[threshold - 1]
    return start if start > moment - window else None


def _seed_from_attack(episode: Episode, attack: Episode) -> None:
    """R6 reports the attack it follows: its failures, users, sources and reasons, then its samples."""
    episode.failures += attack.failures
    episode.users |= attack.users
    episode.ips |= attack.ips
    for reason in attack.reasons:
        if reason not in episode.reasons:
            episode.reasons.append(reason)
    for connection_id in attack.samples:
        if len(episode.samples) >= MAX_SAMPLES:
            break
        if connection_id not in episode.samples:
            episode.samples.append(connection_id)


def _allowed(rule_id: str, source_allowlisted: bool, user_exempt: bool) -> bool:
    """Whether a failure is allow-listed for a rule: CIDR for every rule, user exemption for R1/R2."""
    if rule_id in ("R1", "R2"):
        return source_allowlisted or user_exempt
    return source_allowlisted
