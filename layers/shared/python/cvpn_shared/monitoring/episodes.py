"""An episode: one rule firing for one entity, from the first fire until the entity goes quiet.

An episode opens when the rule's condition first holds; its ``start`` (the earliest failure of the
set that met the threshold) names the finding. Every later event of the entity that the rule counts
updates it. It closes when the entity has been quiet for longer than the episode gap (the cooldown,
or the rule's window when longer: ``DetectionSettings.episode_gap_seconds``); the next fire
opens a new episode, which is a *recurrence* when it starts within the recurrence window of the
previous one's last event (its severity is then raised).

Alerting: the opening fire publishes; a later fire publishes again (same finding id, updated counts)
only once the cooldown has passed since the last publication, or when an allow-listed episode stops
being allow-listed. Every other fire is suppressed, but its counts are kept.

Times are epoch seconds (float) here and epoch milliseconds (int) in the stored record.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Episode"]

MAX_SAMPLES = 20
MAX_REASONS = 16


def to_ms(seconds: float) -> int:
    """Epoch seconds to the integer milliseconds the stored record uses."""
    return round(seconds * 1000)


class Episode:
    """The running state of one (rule, entity) episode; ``published`` is for the current run only."""

    __slots__ = (
        "alerted",
        "alerted_allowlisted",
        "failures",
        "fired",
        "first",
        "identity",
        "ips",
        "last",
        "not_allowed",
        "occurrence",
        "open",
        "published",
        "reasons",
        "samples",
        "start",
        "users",
    )

    def __init__(self, start: float, occurrence: int) -> None:
        self.start = start
        self.first = start
        self.last = start
        self.fired = start
        self.alerted: float | None = None
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
        # (device_ip, username, common_name) of the event that set it (R6: the successful connection).
        self.identity: tuple[str | None, str | None, str | None] | None = None

    @property
    def allowlisted(self) -> bool:
        """Every event counted in the episode was allow-listed for its rule."""
        return self.not_allowed == 0

    def count(
        self,
        moment: float,
        connection_id: str,
        user: str | None,
        device_ip: str | None,
        reason: str | None,
        allowed: bool,
        max_values: int,
        *,
        is_failure: bool = True,
    ) -> None:
        """Add one counted event (a failure; R6: a success) to the episode."""
        if is_failure:
            self.failures += 1
        if moment > self.last:
            self.last = moment
        if moment < self.first:
            self.first = moment
        if user is not None and len(self.users) < max_values:
            self.users.add(user)
        if device_ip is not None and len(self.ips) < max_values:
            self.ips.add(device_ip)
        if reason is not None and reason not in self.reasons and len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(connection_id)
        if not allowed:
            self.not_allowed += 1

    def should_publish(self, moment: float, cooldown: float) -> bool:
        """Whether a fire at ``moment`` is published (else it is suppressed by the cooldown)."""
        if self.alerted is None or moment - self.alerted >= cooldown:
            return True
        return self.alerted_allowlisted and not self.allowlisted

    def mark_published(self, moment: float) -> None:
        self.alerted = moment
        self.alerted_allowlisted = self.allowlisted
        self.published = True

    def to_record(self) -> dict[str, Any]:
        """The JSON-friendly stored form."""
        return {
            "start": to_ms(self.start),
            "first": to_ms(self.first),
            "last": to_ms(self.last),
            "fired": to_ms(self.fired),
            "alerted": None if self.alerted is None else to_ms(self.alerted),
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
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Episode:
        episode = cls(record["start"] / 1000, int(record.get("occurrence", 1)))
        episode.first = record.get("first", record["start"]) / 1000
        episode.last = record.get("last", record["start"]) / 1000
        episode.fired = record.get("fired", record["start"]) / 1000
        alerted = record.get("alerted")
        episode.alerted = None if alerted is None else alerted / 1000
        episode.alerted_allowlisted = bool(record.get("alerted_allowlisted", False))
        episode.failures = int(record.get("failures", 0))
        episode.users = set(record.get("users", ()))
        episode.ips = set(record.get("ips", ()))
        episode.reasons = list(record.get("reasons", ()))
        episode.samples = list(record.get("samples", ()))
        episode.not_allowed = int(record.get("not_allowed", 0))
        episode.open = bool(record.get("open", True))
        identity = record.get("identity")
        episode.identity = (identity[0], identity[1], identity[2]) if identity else None
        return episode
