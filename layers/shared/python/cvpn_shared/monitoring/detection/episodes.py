"""An episode: one rule firing for one entity, from the first fire until the entity goes quiet.

An episode opens when the rule's condition first holds; its ``start`` (the earliest failure of the
set that met the threshold) names the finding. Every later event of the entity that the rule counts
updates it. It closes when the entity has been quiet for longer than the episode gap (the cooldown,
or the rule's window when longer: ``DetectionSettings.episode_gap_seconds``); the next fire opens a
new episode, which is a *recurrence* when it starts within the recurrence window of the previous
one's last event (its severity is then raised).

Alerting: the opening fire publishes; a later fire publishes again (same finding id, updated counts)
only once the cooldown has passed since the last publication, or when an allow-listed episode stops
being allow-listed. Every other fire is suppressed, but its counts are kept.

Times are epoch milliseconds (int), as CloudWatch Logs gives them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_REASONS", "MAX_SAMPLES", "Episode"]

MAX_SAMPLES = 20
MAX_REASONS = 16


class Episode:
    """The running state of one (rule, entity) episode.

    ``published`` and ``pending_from`` (index of the run's failures from which counting is due) live
    for the current run only.
    """

    __slots__ = (
        "alerted",
        "alerted_allowlisted",
        "attack_sources",
        "failures",
        "fired",
        "first",
        "identity",
        "ips",
        "last",
        "not_allowed",
        "occurrence",
        "open",
        "pending_from",
        "published",
        "reasons",
        "samples",
        "start",
        "users",
    )

    def __init__(self, start: int, occurrence: int) -> None:
        self.start = start
        self.first = start
        self.last = start
        self.fired = start
        self.alerted: int | None = None
        self.alerted_allowlisted = False
        self.failures = 0
        self.users: set[str] = set()
        self.ips: set[str] = set()
        self.reasons: list[str] = []
        self.samples: list[str] = []
        self.not_allowed = 0
        self.occurrence = occurrence
        self.open = True
        self.published = False
        self.pending_from: int | None = None
        # (device_ip, username, common_name) of the event that set it (R6: the successful connection).
        self.identity: tuple[str | None, str | None, str | None] | None = None
        # R6: the source addresses of the attack the success followed (not the success's own
        # address, unless it took part in the attack).
        self.attack_sources: tuple[str, ...] | None = None

    @property
    def allowlisted(self) -> bool:
        """Every event counted in the episode was allow-listed for its rule."""
        return self.not_allowed == 0

    def count(
        self,
        moment: int,
        connection_ids: Iterable[str],
        users: Iterable[str | None],
        ips: Iterable[str | None],
        reasons: Iterable[str | None],
        *,
        failures: int,
        not_allowed: int,
        max_values: int,
    ) -> None:
        """Add counted events (failures; R6: successes, ``failures`` 0) up to ``moment``."""
        self.failures += failures
        self.not_allowed += not_allowed
        if moment > self.last:
            self.last = moment
        if moment < self.first:
            self.first = moment
        _add_bounded(self.users, users, max_values)
        _add_bounded(self.ips, ips, max_values)
        known = self.reasons
        if len(known) < MAX_REASONS:
            for reason in reasons:
                if reason is not None and reason not in known:
                    known.append(reason)
                    if len(known) >= MAX_REASONS:
                        break
        samples = self.samples
        if len(samples) < MAX_SAMPLES:
            for connection_id in connection_ids:
                if connection_id not in samples:
                    samples.append(connection_id)
                    if len(samples) >= MAX_SAMPLES:
                        break

    def publish_fire(self, moment: int, cooldown_ms: int) -> bool:
        """A fire at ``moment``: published (True) unless inside the cooldown of the last publication."""
        if moment > self.fired:
            self.fired = moment
        if self.alerted is None or moment - self.alerted >= cooldown_ms:
            self.alerted = moment
            self.published = True
            return True
        return False

    def to_record(self) -> dict[str, Any]:
        """The JSON-friendly stored form."""
        return {
            "start": self.start,
            "first": self.first,
            "last": self.last,
            "fired": self.fired,
            "alerted": self.alerted,
            "alerted_allowlisted": self.alerted_allowlisted,
            "failures": self.failures,
            "users": sorted(self.users),
            "ips": sorted(self.ips),
            "reasons": self.reasons,
            "samples": self.samples,
            "not_allowed": self.not_allowed,
            "occurrence": self.occurrence,
            "open": self.open,
            "identity": list(self.identity) if self.identity else None,
            **({"attack_sources": list(self.attack_sources)} if self.attack_sources is not None else {}),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Episode:
        episode = cls(int(record["start"]), int(record.get("occurrence", 1)))
        episode.first = int(record.get("first", episode.start))
        episode.last = int(record.get("last", episode.start))
        episode.fired = int(record.get("fired", episode.start))
        alerted = record.get("alerted")
        episode.alerted = None if alerted is None else int(alerted)
        episode.alerted_allowlisted = bool(record.get("alerted_allowlisted", False))
        episode.failures = int(record.get("failures", 0))
        episode.users = set(record.get("users", ()))
        episode.ips = set(record.get("ips", ()))
        episode.reasons = list(record.get("reasons", ()))
        episode.samples = list(record.get("samples", ()))
        episode.not_allowed = int(record.get("not_allowed", 0))
        episode.open = bool(record.get("open", True))
        identity = record.get("identity")
        if identity:
            device_ip, username, common_name = identity
            episode.identity = (device_ip, username, common_name)
        attack_sources = record.get("attack_sources")
        if attack_sources is not None:
            episode.attack_sources = tuple(str(source) for source in attack_sources)
        return episode


def _add_bounded(target: set[str], values: Iterable[str | None], limit: int) -> None:
    if len(target) >= limit:
        return
    for value in values:
        if value is not None:
            target.add(value)
            if len(target) >= limit:
                return
