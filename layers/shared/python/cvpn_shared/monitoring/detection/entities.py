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

Speed: the hot loop only decides where rules fire; counting the failures into open episodes is done
per run in bulk (``Episode.count`` over slices). A rule that holds again inside its open episode (the
usual case under attack) takes one call (``_again``); a distinct-value rule sorts the values only when
one of them may be outside its window or an episode opens. ``_source_failures`` and
``_user_failures`` are twins on purpose, each keeping in-order failures inline: they run once per
failure and entity. ``tests/monitoring/unit/detection/test_detection_golden.py`` digests what they decide over
random workloads, so a change to them must leave the digests as they are. Times are integer epoch
milliseconds throughout.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from operator import itemgetter
from typing import Any

from cvpn_shared.monitoring.detection.config import DetectionSettings
from cvpn_shared.monitoring.detection.episodes import MAX_SAMPLES, Episode
from cvpn_shared.monitoring.detection.rules import ATTACK_RULES, RULES, EntityKind, escalate
from cvpn_shared.monitoring.findings import (
    CLIENT_CONNECT_FAILED,
    Finding,
    FindingCounts,
    FindingEntity,
    FindingWindow,
    finding_id,
)

__all__ = ["EntityRecord", "FailureEvent", "RunCounters", "SuccessEvent", "entity_key"]

RECORD_FORMAT = 2

# The events are plain tuples (the detector builds one per failure and entity, a named tuple would
# cost its construction there); the loops unpack them into these names, in this order.
#
# A failure as one entity sees it:
#   moment          int         the log event's time (epoch ms)
#   connection_id   str
#   other           str | None  the user, for a source; the source, for a user
#   reason          str | None  connection-attempt-failure-reason
#   source_allowed  bool        the source is in an allow-listed CIDR (every rule)
#   user_exempt     bool        the user is allow-listed (R1, R2 and R3)
#   username        str | None
#   common_name     str | None
#   notable         bool        the reason is one of R7's
FailureEvent = tuple[int, str, str | None, str | None, bool, bool, str | None, str | None, bool]
# A success: moment (the connection's start time, epoch ms), connection_id, other, username,
# common_name, as in a failure.
SuccessEvent = tuple[int, str, str | None, str | None, str | None]
# A failure the record keeps (``recent``, stored as a JSON array): the first six fields of its
# ``FailureEvent``: moment, connection_id, other, reason, source_allowed, user_exempt.
RecentFailure = tuple[int, str, str | None, str | None, bool, bool]
# When an attack rule last fired for the entity (``armed``, R6): (moment, rule_id).
Armed = tuple[int, str]

_row_time = itemgetter(0)  # a RecentFailure's moment
_item_time = itemgetter(1)  # (key, time) pairs
_NEVER = 1 << 62  # a time after every event
_UNARMED: Armed = (-_NEVER, "")  # as if armed before every event, by no rule
_DEFERRED_RULES: dict[EntityKind, tuple[str, ...]] = {"device_ip": ("R1", "R4", "R5"), "user": ("R2", "R3")}


@dataclass(slots=True)
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


def _time(moment_ms: int) -> datetime:
    return datetime.fromtimestamp(moment_ms / 1000, UTC)


class EntityRecord:
    """The detection state of one entity, loaded from its stored record and applied a run's events.

    A plain class with slots: the detector builds one per entity and run (the hot path).
    """

    __slots__ = (
        "_arms",
        "_track_arms",
        "armed",
        "changed",
        "common_name",
        "distinct",
        "endpoint_id",
        "episodes",
        "kind",
        "latest",
        "recent",
        "recent_times",
        "seen",
        "settings",
        "username",
        "value",
    )

    def __init__(self, settings: DetectionSettings, endpoint_id: str, kind: EntityKind, value: str) -> None:
        self.settings = settings
        self.endpoint_id = endpoint_id
        self.kind = kind
        self.value = value
        self.seen: dict[str, int] = {}
        self.recent: list[RecentFailure] = []  # in time order; rows of equal time in any order
        self.recent_times: list[int] = []  # the times of ``recent``, position by position
        self.distinct: dict[str, int] = {}
        self.episodes: dict[str, Episode] = {}
        self.armed: Armed | None = None
        self.username: str | None = None
        self.common_name: str | None = None
        self.latest = 0
        self.changed = False
        self._arms: list[Armed] = []
        self._track_arms = False

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
        if not data or data.get("format") != RECORD_FORMAT:
            return record
        record.seen = data["seen"]
        # Rows as written (in time order; flags as JSON booleans, or 0/1 in older records: the same
        # to the rules).
        recent: list[RecentFailure] = list(map(tuple, data["recent"]))  # type: ignore[arg-type]
        times = list(map(_row_time, recent))
        if times != sorted(times):  # written in time order; anything else is put back in order
            recent.sort(key=_row_time)
            times = list(map(_row_time, recent))
        record.recent = recent
        record.recent_times = times
        record.distinct = data["distinct"]
        record.episodes = {rule: Episode.from_record(item) for rule, item in data["episodes"].items()}
        armed = data.get("armed")
        if armed:
            armed_moment, armed_rule = armed
            record.armed = (int(armed_moment), str(armed_rule))
        record.username = data.get("username")
        record.common_name = data.get("common_name")
        record.latest = int(data.get("latest", 0))
        return record

    @property
    def armed_at(self) -> int | None:
        """When an attack rule last fired for the entity (epoch ms), or None."""
        if self.armed is None:
            return None
        armed_moment, _ = self.armed
        return armed_moment

    def to_record(self) -> dict[str, Any]:
        """The JSON-friendly stored form (pruned first)."""
        self._prune()
        return {
            "format": RECORD_FORMAT,
            "seen": self.seen,
            "recent": self.recent,  # tuples are written as JSON arrays
            "distinct": self.distinct,
            "episodes": {rule: self.episodes[rule].to_record() for rule in sorted(self.episodes)}
            if self.episodes
            else {},
            "armed": list(self.armed) if self.armed else None,
            "username": self.username,
            "common_name": self.common_name,
            "latest": self.latest,
        }

    # ----- applying a run ------------------------------------------------------------------------

    def apply(
        self, failures: Sequence[FailureEvent], successes: Sequence[SuccessEvent], counters: RunCounters
    ) -> list[Finding]:
        """Count the run's failures and successes (each in time order); the findings to publish."""
        findings: list[Finding] = []
        for episode in self.episodes.values():
            episode.published = False
            episode.pending_from = None
        self._arms = []
        # Arming times within the run matter only to this run's successes (R6).
        self._track_arms = bool(successes)
        seen = self.seen
        fresh: list[FailureEvent] = []
        newest = 0  # the run's failures come in time order: the last one counted is the newest
        for event in failures:
            moment, connection_id, _, _, _, _, _, _, _ = event
            if connection_id in seen:
                counters.duplicates_skipped += 1
                continue
            seen[connection_id] = moment
            fresh.append(event)
            newest = moment
        if fresh:
            self.changed = True
            counters.failures_counted += len(fresh)
            if newest > self.latest:
                self.latest = newest
            if self.kind == "user":
                for _, _, _, _, _, _, username, common_name, _ in reversed(fresh):
                    if username or common_name:
                        self.username, self.common_name = username, common_name
                        break
            if self._quiet(fresh, successes):
                self._remember_quietly(fresh)
            elif self.kind == "device_ip":
                self._source_failures(fresh, counters, findings)
            else:
                self._user_failures(fresh, counters, findings)
            for rule_id in _DEFERRED_RULES[self.kind] if self.episodes else ():
                pending = self.episodes.get(rule_id)
                if pending is not None and pending.pending_from is not None:
                    self._count_run(rule_id, pending, fresh[pending.pending_from :])
                    pending.pending_from = None
        if successes and self.settings.enabled("R6"):
            self._successes(successes, counters, findings)
        for rule_id, episode in sorted(self.episodes.items()) if self.episodes else ():
            if not episode.published and episode.alerted_allowlisted and not episode.allowlisted:
                # An allow-listed episode that now counts a failure from outside: publish it again.
                episode.published = True
                episode.alerted = episode.last
                counters.published += 1
            self._flush_finding(rule_id, episode, findings)
        return findings

    def _quiet(self, fresh: list[FailureEvent], successes: Sequence[SuccessEvent]) -> bool:
        """Whether no rule can fire in this run: an entity with nothing on record (no failure in a
        window, no distinct value, no episode, not armed), fewer failures than any threshold of its
        rules can be met with, none notable. The common case (a typo) then skips the rules. Its
        successes, if any, do not matter: R6 needs an attack rule to have fired (armed, or in this
        run), and none has or can."""
        if self.recent or self.distinct or self.episodes or self.armed is not None:
            return False
        if len(fresh) >= self.settings.quiet_below(self.kind):
            return False
        return not (self.settings.enabled("R7") and any(notable for _, _, _, _, _, _, _, _, notable in fresh))

    def _remember_quietly(self, fresh: list[FailureEvent]) -> None:
        """What the rules' loop records of failures that cannot make a rule fire (``_quiet``): each
        failure in the window (in time order: the run's failures are) and the latest time of each
        other value."""
        settings = self.settings
        # The same bounds as the rules' loop keeps on the way (the distinct values).
        keep = (
            max(settings.r4_distinct_users, settings.r5_distinct_users)
            if self.kind == "device_ip"
            else settings.r3_distinct_ips
        )
        for moment, connection_id, other, reason, source_allowed, user_exempt, _, _, _ in fresh:
            self._remember((moment, connection_id, other, reason, source_allowed, user_exempt), keep)

    def _begin_run(self, fresh: list[FailureEvent], index: int, moment: int) -> None:
        """Close the deferred episodes the entity has been quiet long enough for, before ``index``."""
        if not self.episodes:
            return
        settings = self.settings
        for rule_id in _DEFERRED_RULES[self.kind]:
            episode = self.episodes.get(rule_id)
            if episode is None or not episode.open:
                continue
            if episode.pending_from is None and index == 0:
                if moment - episode.last > settings.episode_gap_ms(rule_id):
                    episode.open = False
                else:
                    episode.pending_from = 0
            elif episode.pending_from is not None:
                previous_moment, *_ = fresh[index - 1]
                if moment - previous_moment > settings.episode_gap_ms(rule_id):
                    self._count_run(rule_id, episode, fresh[episode.pending_from : index])
                    episode.pending_from = None
                    episode.open = False

    def _remembered(
        self, fresh: list[FailureEvent], *, keep: int
    ) -> Iterator[tuple[int, RecentFailure, bool, bool]]:
        """The rules' loop over the run's failures: each one's index, its row once remembered
        (``_remember``), whether it came in time order, and whether it is notable. Deferred episodes
        the entity has been quiet long enough for are closed before the failure that ends the quiet."""
        smallest_gap = self.settings.smallest_episode_gap_ms
        previous = -1
        for index, event in enumerate(fresh):
            moment, connection_id, other, reason, source_allowed, user_exempt, _, _, notable = event
            if index == 0 or moment - previous > smallest_gap:
                self._begin_run(fresh, index, moment)
            if moment > previous:
                previous = moment
            row = (moment, connection_id, other, reason, source_allowed, user_exempt)
            yield index, row, self._remember(row, keep), notable

    def _source_failures(
        self, fresh: list[FailureEvent], counters: RunCounters, findings: list[Finding]
    ) -> None:
        settings = self.settings
        r1, r4, r5, r7, n1, w1, n4, w4, n5, w5 = settings.source_rules
        distinct_needed = min(n4 if r4 else n5, n5 if r5 else n4)
        # No distinct value is older than ``floor`` (a lower bound, lowered as values come): while it
        # is inside a rule's window, every value is, and the rule holds without sorting them.
        floor = min(self.distinct.values(), default=_NEVER)
        for index, row, in_order, notable in self._remembered(fresh, keep=max(n4, n5)):
            moment, _, user, _, source_allowed, _ = row
            if user is not None and moment < floor:
                floor = moment
            distinct = self.distinct
            if r1:
                start = self._window_start(moment, w1, n1, in_order)
                if start is not None:
                    self._fire("R1", fresh, index, moment, start, counters, findings)
            if (r4 or r5) and len(distinct) >= distinct_needed:
                values = len(distinct)
                check4 = r4 and values >= n4
                check5 = r5 and values >= n5
                latest_first: list[int] | None = None  # None: every value is inside both windows
                if (check4 and floor <= moment - w4) or (check5 and floor <= moment - w5):
                    latest_first = sorted(distinct.values(), reverse=True)
                    floor = latest_first[-1]
                if check4 and (latest_first is None or latest_first[n4 - 1] > moment - w4):
                    latest_first = self._distinct_held(
                        "R4", n4, latest_first, fresh, index, moment, counters, findings
                    )
                if check5 and (latest_first is None or latest_first[n5 - 1] > moment - w5):
                    self._distinct_held("R5", n5, latest_first, fresh, index, moment, counters, findings)
            if r7 and notable:
                self._single(row, source_allowed, counters, findings)

    def _user_failures(
        self, fresh: list[FailureEvent], counters: RunCounters, findings: list[Finding]
    ) -> None:
        settings = self.settings
        r2, r3, r7, n2, w2, n3, n3_ips, w3 = settings.user_rules
        episodes = self.episodes
        floor = min(self.distinct.values(), default=_NEVER)  # as in ``_source_failures``
        for index, row, in_order, notable in self._remembered(fresh, keep=n3_ips):
            moment, _, source, _, source_allowed, _ = row
            if source is not None and moment < floor:
                floor = moment
            distinct = self.distinct
            if r2:
                start = self._window_start(moment, w2, n2, in_order)
                if start is not None:
                    self._fire("R2", fresh, index, moment, start, counters, findings)
            if r3 and len(distinct) >= n3_ips:
                by_count = self._window_start(moment, w3, n3, in_order)
                if by_count is not None:
                    latest_first: list[int] | None = None  # None: every source is inside the window
                    if floor <= moment - w3:
                        latest_first = sorted(distinct.values(), reverse=True)
                        floor = latest_first[-1]
                    if latest_first is None or latest_first[n3_ips - 1] > moment - w3:
                        episode = episodes.get("R3")
                        if episode is not None and episode.open:
                            self._again("R3", episode, moment, counters)
                        else:
                            if latest_first is None:
                                latest_first = sorted(distinct.values(), reverse=True)
                            start = min(by_count, latest_first[n3_ips - 1])
                            self._fire("R3", fresh, index, moment, start, counters, findings)
            if r7 and notable and source is None:
                # R7 is the source's rule; the user carries it only for records without a device-ip.
                self._single(row, source_allowed, counters, findings)

    def _distinct_held(
        self,
        rule_id: str,
        threshold: int,
        latest_first: list[int] | None,
        fresh: list[FailureEvent],
        index: int,
        moment: int,
        counters: RunCounters,
        findings: list[Finding],
    ) -> list[int] | None:
        """R4 or R5 held at ``fresh[index]``, whose time is ``moment`` (the distinct values' times,
        latest first, sorted only when needed: to open an episode); the sorted times, if sorted."""
        episode = self.episodes.get(rule_id)
        if episode is not None and episode.open:
            self._again(rule_id, episode, moment, counters)
            return latest_first
        if latest_first is None:
            latest_first = sorted(self.distinct.values(), reverse=True)
        self._fire(rule_id, fresh, index, moment, latest_first[threshold - 1], counters, findings)
        return latest_first

    # ----- windows ---------------------------------------------------------------------------------

    def _remember(self, row: RecentFailure, keep: int) -> bool:
        """Keep the failure ``row`` in the window and the latest time of its other value (the ``keep``
        latest values at least); whether it came in time order (newest so far)."""
        moment, _, other, *_ = row
        times = self.recent_times
        in_order = not times or moment >= times[-1]
        if in_order:  # the usual case, inline (``_remember_late`` takes the others)
            times.append(moment)
            self.recent.append(row)
            limit = self.settings.max_window_events
            if len(times) > 2 * limit:
                del times[:-limit]
                del self.recent[:-limit]
        else:
            self._remember_late(row)
        if other is not None:
            distinct = self.distinct
            last = distinct.get(other)
            if last is None or moment > last:
                distinct[other] = moment
                if len(distinct) > 2 * keep + 4:
                    self.distinct = _most_recent(distinct, keep)
        return in_order

    def _window_start(self, moment: int, window: int, threshold: int, in_order: bool) -> int | None:
        """Start of a window with >= ``threshold`` failures that holds ``moment`` (``_count_fire``),
        else None. In order, the window ending at ``moment`` is the only one it can complete."""
        if not in_order:
            return self._count_fire(moment, window, threshold)
        times = self.recent_times
        count = len(times)
        return (
            times[count - threshold]
            if count >= threshold and times[count - threshold] > moment - window
            else None
        )

    def _remember_late(self, row: RecentFailure) -> None:
        """Keep a failure older than the newest one kept, in its place (the loops append the others)."""
        moment, *_ = row
        times = self.recent_times
        position = bisect_right(times, moment)
        times.insert(position, moment)
        self.recent.insert(position, row)
        limit = self.settings.max_window_events
        if len(times) > 2 * limit:
            del times[:-limit]
            del self.recent[:-limit]

    def _count_fire(self, moment: int, window: int, threshold: int) -> int | None:
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

    def _fire(
        self,
        rule_id: str,
        fresh: list[FailureEvent],
        index: int,
        moment: int,
        start: int,
        counters: RunCounters,
        findings: list[Finding],
    ) -> None:
        """R1-R5 held at ``fresh[index]``: refresh the open episode, or open one (counting its window)."""
        episode = self.episodes.get(rule_id)
        if episode is not None and episode.open:
            self._again(rule_id, episode, moment, counters)
            return
        counters.fires += 1
        self._arm(rule_id, moment)
        episode = self._open(rule_id, episode, start, moment, counters, findings)
        self._seed(rule_id, episode, start)
        episode.pending_from = index + 1

    def _single(
        self, row: RecentFailure, allowed: bool, counters: RunCounters, findings: list[Finding]
    ) -> None:
        """R7 fires on each notable failure; its episode counts the notable failures only."""
        moment, connection_id, other, reason, _, _ = row
        episode, _ = self._fire_each("R7", moment, counters, findings)
        self._count_one(episode, moment, connection_id, other, reason, allowed, failure=True)

    def _successes(
        self, successes: Sequence[SuccessEvent], counters: RunCounters, findings: list[Finding]
    ) -> None:
        """R6: a success within the window after an attack rule fired for the entity."""
        arms = sorted(([self.armed] if self.armed else []) + self._arms)
        if not arms:
            return
        # A success is known to the second (its connection-start-time), a failure to the millisecond
        # (no start time: the log event's time), so a success in the same second as the failure that
        # armed the entity could read as up to 999 ms before it: arms are compared by their second.
        arm_times = [armed_moment - armed_moment % 1000 for armed_moment, _ in arms]
        window = self.settings.r6_window_seconds * 1000
        for moment, connection_id, other, username, common_name in successes:
            position = bisect_right(arm_times, moment)
            if position == 0 or moment - arm_times[position - 1] > window:
                continue
            attempt_key = f"{connection_id}|successful"
            if attempt_key in self.seen:
                counters.duplicates_skipped += 1
                continue
            self.seen[attempt_key] = moment
            self.changed = True
            if moment > self.latest:
                self.latest = moment
            _, attack_rule = arms[position - 1]
            attack = self.episodes.get(attack_rule)
            allowed = attack.allowlisted if attack is not None else False
            episode, opened = self._fire_each("R6", moment, counters, findings)
            self._count_one(episode, moment, connection_id, other, None, allowed, failure=False)
            if opened and attack is not None:
                _report_attack(episode, attack)
            source = self.value if self.kind == "device_ip" else other
            episode.identity = (source, username, common_name)
            # Whom a response may hold responsible: a source's attack came from the source itself;
            # a user's, from the addresses its failures came from (the success's address among them
            # only when it failed too).
            if self.kind == "device_ip":
                episode.attack_sources = (self.value,)
            else:
                episode.attack_sources = tuple(sorted(attack.ips)) if attack is not None else ()

    def _open(
        self,
        rule_id: str,
        previous: Episode | None,
        start: int,
        moment: int,
        counters: RunCounters,
        findings: list[Finding],
    ) -> Episode:
        if previous is not None:
            self._flush_finding(rule_id, previous, findings)  # closed in this run, after publishing
        occurrence = 1
        if previous is not None and start - previous.last <= self.settings.recurrence_window_seconds * 1000:
            occurrence = previous.occurrence + 1
        episode = Episode(start, occurrence)
        episode.fired = moment
        episode.alerted = moment
        episode.published = True
        self.episodes[rule_id] = episode
        counters.published += 1
        return episode

    def _fire_each(
        self, rule_id: str, moment: int, counters: RunCounters, findings: list[Finding]
    ) -> tuple[Episode, bool]:
        """R6 or R7 fired at ``moment``: close its episode if the entity was quiet longer than the
        rule's gap, then refresh the open episode or open one; the episode, and whether it is new."""
        counters.fires += 1
        episode = self.episodes.get(rule_id)
        if (
            episode is not None
            and episode.open
            and moment - episode.last > self.settings.episode_gap_ms(rule_id)
        ):
            self._close(rule_id, episode, findings)
        if episode is not None and episode.open:
            self._refire(episode, moment, counters)
            return episode, False
        return self._open(rule_id, episode, moment, moment, counters, findings), True

    def _again(self, rule_id: str, episode: Episode, moment: int, counters: RunCounters) -> None:
        """An attack rule (R1-R5, of the entity's kind) held again inside its open episode: what
        ``_arm`` and ``_refire`` do, in one call (the hot path of a long attack)."""
        counters.fires += 1
        armed_moment, armed_rule = self.armed or _UNARMED
        if armed_moment != moment or armed_rule != rule_id:
            if self._track_arms:
                self._arms.append((moment, rule_id))
            if moment >= armed_moment:
                self.armed = (moment, rule_id)
        if episode.publish_fire(moment, self.settings.cooldown_ms):
            counters.published += 1
        else:
            counters.suppressed += 1

    def _refire(self, episode: Episode, moment: int, counters: RunCounters) -> None:
        """The rule fired again within its open episode: published, unless inside the cooldown."""
        if episode.publish_fire(moment, self.settings.cooldown_ms):
            counters.published += 1
        else:
            counters.suppressed += 1

    def _close(self, rule_id: str, episode: Episode, findings: list[Finding]) -> None:
        episode.open = False
        self._flush_finding(rule_id, episode, findings)

    def _flush_finding(self, rule_id: str, episode: Episode, findings: list[Finding]) -> None:
        """Add the episode's finding to ``findings`` if it has something to publish (once)."""
        if episode.published:
            episode.alerted_allowlisted = episode.allowlisted
            findings.append(self._finding(rule_id, episode))
            episode.published = False

    def _seed(self, rule_id: str, episode: Episode, start: int) -> None:
        """Count the retained failures of the window that made the rule fire (and any after it)."""
        rows = self.recent[bisect_left(self.recent_times, start) :]
        self._count_rows(rule_id, episode, rows)
        if rule_id in ("R3", "R4", "R5"):
            # Distinct-value rules may fire on values older than the retained failures (R5: a day).
            others = [other for other, last in self.distinct.items() if last >= start]
            users, ips = (others, []) if self.kind == "device_ip" else ([], others)
            episode.count(start, (), users, ips, (), failures=0, not_allowed=0, max_values=self._max_values)
        if episode.first > start:
            episode.first = start

    def _count_run(self, rule_id: str, episode: Episode, events: Sequence[FailureEvent]) -> None:
        """Count a slice of the run's failures into an open episode (the bulk path)."""
        if events:
            self._count_rows(rule_id, episode, events)

    def _count_rows(
        self, rule_id: str, episode: Episode, rows: Sequence[RecentFailure | FailureEvent]
    ) -> None:
        if not rows:
            return
        # The rows by field (a FailureEvent's fields past those of a RecentFailure are not needed).
        moments, connection_ids, others, reasons, sources_allowed, users_exempt, *_ = zip(*rows, strict=False)
        if rule_id in ("R1", "R2", "R3"):  # a user exemption: the rules about one user's failures
            flags = zip(sources_allowed, users_exempt, strict=True)
            not_allowed = sum(1 for allowed, exempt in flags if not (allowed or exempt))
        else:
            not_allowed = sum(1 for allowed in sources_allowed if not allowed)
        mine = (self.value,)
        users, ips = (others, mine) if self.kind == "device_ip" else (mine, others)
        episode.count(
            max(moments),
            connection_ids[:MAX_SAMPLES],
            users,
            ips,
            reasons,
            failures=len(rows),
            not_allowed=not_allowed,
            max_values=self._max_values,
        )
        if moments[0] < episode.first:
            episode.first = min(moments)

    def _count_one(
        self,
        episode: Episode,
        moment: int,
        connection_id: str,
        other: str | None,
        reason: str | None,
        allowed: bool,
        *,
        failure: bool,
    ) -> None:
        mine = (self.value,)
        users, ips = ((other,), mine) if self.kind == "device_ip" else (mine, (other,))
        episode.count(
            moment,
            (connection_id,),
            users,
            ips,
            (reason,),
            failures=1 if failure else 0,
            not_allowed=0 if allowed else 1,
            max_values=self._max_values,
        )

    @property
    def _max_values(self) -> int:
        return self.settings.max_tracked_values

    def _arm(self, rule_id: str, moment: int) -> None:
        armed_moment, armed_rule = self.armed or _UNARMED
        if armed_moment == moment and armed_rule == rule_id:
            return
        if rule_id in ATTACK_RULES[self.kind]:
            if self._track_arms:
                self._arms.append((moment, rule_id))
            if moment >= armed_moment:
                self.armed = (moment, rule_id)

    # ----- findings ----------------------------------------------------------------------------

    def _finding(self, rule_id: str, episode: Episode) -> Finding:
        """The episode's finding. Built without validation (``model_construct``): every value comes
        from the rules' own state and is of its field's type (the golden test validates each finding it
        sees again); validating thousands of findings of a flood cost several percent of detection."""
        spec = RULES[rule_id]
        settings = self.settings
        key = f"{self.kind}:{self.value}"
        escalation = min(episode.occurrence - 1, settings.max_escalation_steps)
        if episode.identity is not None:
            device_ip, username, common_name = episode.identity
            entity = FindingEntity.model_construct(
                device_ip=device_ip, username=username, common_name=common_name
            )
        elif self.kind == "device_ip":
            single_user = next(iter(episode.users)) if len(episode.users) == 1 else None
            entity = FindingEntity.model_construct(device_ip=self.value, username=single_user)
        else:
            single_ip = next(iter(episode.ips)) if len(episode.ips) == 1 else None
            named = self.username is not None or self.common_name is not None
            entity = FindingEntity.model_construct(
                device_ip=single_ip,
                username=self.username if named else self.value,
                common_name=self.common_name,
            )
        if rule_id == "R6":
            attack_sources = list(
                episode.attack_sources or ((self.value,) if self.kind == "device_ip" else ())
            )
        elif self.kind == "device_ip":
            attack_sources = [self.value]
        else:
            attack_sources = sorted(episode.ips - self._refused_only())
        start = _time(episode.start)
        return Finding.model_construct(
            finding_id=finding_id(rule_id, self.endpoint_id, key, start),
            rule_id=spec.rule_id,
            title=f"{spec.title}: {self.value}",
            severity=escalate(spec.severity, escalation),
            mitre=list(spec.mitre),
            entity=entity,
            entity_key=key,
            endpoint_id=self.endpoint_id,
            window=FindingWindow.model_construct(start=start, end=_time(max(episode.last, episode.fired))),
            first_seen=_time(episode.first),
            last_seen=_time(episode.last),
            counts=FindingCounts.model_construct(
                failures=episode.failures, distinct_users=len(episode.users), distinct_ips=len(episode.ips)
            ),
            failure_reasons=list(episode.reasons),
            sample_connection_ids=list(episode.samples),
            allowlisted=episode.allowlisted,
            runbook_url=settings.runbook_url,
            attack_sources=attack_sources,
            escalated=escalation > 0,
            occurrence=episode.occurrence,
        )

    def _refused_only(self) -> set[str]:
        """The sources whose failures the record keeps are all the client-connect handler's refusals
        (the address, or the user, was already blocked; a certificate failed its posture check):
        no evidence of an attack from there. Without this, a user blocked outright who tries again
        from the office would make the office an attacking address."""
        refused: set[str] = set()
        failed: set[str] = set()
        for _, _, source, reason, _, _ in self.recent:
            if source is not None:
                (refused if reason == CLIENT_CONNECT_FAILED else failed).add(source)
        return refused - failed

    # ----- bounds ------------------------------------------------------------------------------

    def _prune(self) -> None:
        """Drop what no rule can need any more (each part rebuilt only when something goes)."""
        settings = self.settings
        latest = self.latest
        horizon_ms, max_seen, recent_ms, distinct_ms, distinct_keep, max_window = settings.bounds(self.kind)
        horizon = latest - horizon_ms
        seen = self.seen
        if seen and min(seen.values()) < horizon:
            seen = {key: moment for key, moment in seen.items() if moment >= horizon}
        if len(seen) > max_seen:  # keep the newest attempts
            moments = list(seen.values())
            if moments == sorted(moments):  # counted in time order, the usual case: no sort of the items
                seen = dict(islice(seen.items(), len(seen) - max_seen, None))
            else:
                seen = dict(sorted(seen.items(), key=_item_time)[-max_seen:])
        self.seen = seen
        times = self.recent_times
        if times and (times[0] <= latest - recent_ms or len(times) > max_window):
            cut = bisect_right(times, latest - recent_ms)
            keep_from = max(cut, len(times) - max_window)
            del times[:keep_from]
            del self.recent[:keep_from]
        floor = latest - distinct_ms
        distinct = self.distinct
        if distinct and (len(distinct) > distinct_keep or min(distinct.values()) <= floor):
            self.distinct = _most_recent(
                {key: moment for key, moment in distinct.items() if moment > floor}, distinct_keep
            )
        episodes = self.episodes
        if episodes:
            memory_ms = settings.recurrence_window_seconds * 1000
            if any(
                latest - episode.last > memory_ms + settings.episode_gap_ms(rule)
                for rule, episode in episodes.items()
            ):
                self.episodes = {
                    rule: episode
                    for rule, episode in episodes.items()
                    if latest - episode.last <= memory_ms + settings.episode_gap_ms(rule)
                }
        if self.armed is not None:
            armed_moment, _ = self.armed
            if latest - armed_moment > settings.r6_window_seconds * 1000:
                self.armed = None


def _most_recent(values: dict[str, int], keep: int) -> dict[str, int]:
    if len(values) <= keep:
        return values
    return dict(sorted(values.items(), key=_item_time, reverse=True)[:keep])


def _report_attack(episode: Episode, attack: Episode) -> None:
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
