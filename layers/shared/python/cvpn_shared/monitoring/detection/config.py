"""The detector's thresholds, windows, cooldown and allow-list, with the detection spec's defaults.

Every threshold is configurable. The settings come from JSON (``from_json``) or from flat
environment-style values (``from_env``: ``DETECTION_R1_FAILURES=5``, lists as JSON or
comma-separated). Nothing here reads the environment by itself.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DEFAULT_NOTABLE_REASONS", "DetectionSettings"]

DEFAULT_NOTABLE_REASONS = (
    "authorization-policy-deny",
    "client-connect-failed",
    "signature-invalid",
    "tenant-mismatch",
)
_ALL_RULES = ("R1", "R2", "R3", "R4", "R5", "R6", "R7")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class DetectionSettings(BaseModel):
    """Thresholds (counts) and windows (seconds) of R1-R7, and what is allow-listed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # R1 source brute force: >= r1_failures failures from one device-ip within r1_window_seconds.
    r1_failures: int = Field(default=5, ge=1, le=1000)
    r1_window_seconds: int = Field(default=600, ge=1, le=7 * 86400)
    # R2 user brute force: >= r2_failures failures for one user within r2_window_seconds.
    r2_failures: int = Field(default=5, ge=1, le=1000)
    r2_window_seconds: int = Field(default=600, ge=1, le=7 * 86400)
    # R3 distributed attack on a user: >= r3_distinct_ips sources and >= r3_failures failures.
    r3_distinct_ips: int = Field(default=5, ge=1, le=1000)
    r3_failures: int = Field(default=10, ge=1, le=1000)
    r3_window_seconds: int = Field(default=1800, ge=1, le=7 * 86400)
    # R4 password spray: >= r4_distinct_users users failing from one device-ip within the window.
    r4_distinct_users: int = Field(default=5, ge=1, le=1000)
    r4_window_seconds: int = Field(default=600, ge=1, le=7 * 86400)
    # R5 slow spray: >= r5_distinct_users users failing from one device-ip within the window.
    r5_distinct_users: int = Field(default=10, ge=1, le=1000)
    r5_window_seconds: int = Field(default=86400, ge=1, le=7 * 86400)
    # R6 success after attack: a success within r6_window_seconds after R1-R5 fired for the entity.
    r6_window_seconds: int = Field(default=1800, ge=1, le=7 * 86400)
    # R7 single notable: a failure with one of these reasons.
    r7_reasons: tuple[str, ...] = DEFAULT_NOTABLE_REASONS

    enabled_rules: tuple[str, ...] = _ALL_RULES
    cooldown_seconds: int = Field(default=3600, ge=0, le=7 * 86400)
    recurrence_window_seconds: int = Field(default=86400, ge=0, le=30 * 86400)
    # How many steps a recurrence may raise the severity (the spec: one), capped at CRITICAL anyway.
    max_escalation_steps: int = Field(default=1, ge=0, le=3)

    allowlist_cidrs: tuple[str, ...] = ()
    allowlist_users: tuple[str, ...] = ()
    runbook_url: str = ""

    # Bounds of what one entity's record holds (DynamoDB items stay far below 400 KB).
    dedup_horizon_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    max_seen_attempts: int = Field(default=500, ge=10, le=5000)
    max_window_events: int = Field(default=64, ge=1, le=1000)
    max_tracked_values: int = Field(default=100, ge=1, le=2000)

    @field_validator("allowlist_cidrs")
    @classmethod
    def _cidrs_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @field_validator("enabled_rules")
    @classmethod
    def _rules_known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(_ALL_RULES))
        if unknown:
            raise ValueError(f"unknown rules: {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _bounds_hold_thresholds(self) -> DetectionSettings:
        if self.max_window_events < max(self.r1_failures, self.r2_failures, self.r3_failures):
            raise ValueError("max_window_events must be at least the largest failure threshold")
        return self

    @classmethod
    def from_json(cls, text: str) -> DetectionSettings:
        """Settings from a JSON object (missing keys keep their defaults)."""
        return cls.model_validate(json.loads(text) if text.strip() else {})

    @classmethod
    def from_env(cls, values: Mapping[str, str], prefix: str = "DETECTION_") -> DetectionSettings:
        """Settings from flat string values, e.g. ``os.environ``: ``DETECTION_R1_FAILURES=5``.

        ``DETECTION_SETTINGS`` (JSON) is read first; single variables override it. List values are
        JSON arrays or comma-separated text.
        """
        merged: dict[str, Any] = {}
        document = values.get(f"{prefix}SETTINGS", "")
        if document.strip():
            merged.update(json.loads(document))
        for name, info in cls.model_fields.items():
            text = values.get(f"{prefix}{name.upper()}")
            if text is None:
                continue
            if info.annotation is not None and "tuple" in str(info.annotation):
                merged[name] = _list_value(text)
            else:
                merged[name] = text
        return cls.model_validate(merged)

    def enabled(self, rule_id: str) -> bool:
        """Whether ``rule_id`` runs."""
        return rule_id in self._enabled

    @cached_property
    def _enabled(self) -> frozenset[str]:
        return frozenset(self.enabled_rules)

    @cached_property
    def notable_reasons(self) -> frozenset[str]:
        """R7's reasons as a set."""
        return frozenset(self.r7_reasons)

    @cached_property
    def exempt_users(self) -> frozenset[str]:
        """Users exempted from the rules about one user's failures (R1, R2, R3); an allow-listed
        user is never blocked by any rule's response (``alerting.blocks_for``)."""
        return frozenset(self.allowlist_users)

    @cached_property
    def allowlist_networks(self) -> tuple[IpNetwork, ...]:
        """The allow-listed CIDRs, parsed."""
        return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in self.allowlist_cidrs)

    def window_seconds(self, rule_id: str) -> int:
        """The rule's window (R7, a single event, has none: 0)."""
        return {
            "R1": self.r1_window_seconds,
            "R2": self.r2_window_seconds,
            "R3": self.r3_window_seconds,
            "R4": self.r4_window_seconds,
            "R5": self.r5_window_seconds,
            "R6": self.r6_window_seconds,
        }.get(rule_id, 0)

    def episode_gap_seconds(self, rule_id: str) -> int:
        """How long an entity may stay quiet before the rule's episode closes: the cooldown, or the
        rule's window when longer (a slow spray over a day is one episode, not one per hour)."""
        return self._episode_gaps[rule_id]

    @cached_property
    def _episode_gaps(self) -> dict[str, int]:
        return {rule: max(self.cooldown_seconds, self.window_seconds(rule)) for rule in _ALL_RULES}

    def episode_gap_ms(self, rule_id: str) -> int:
        """``episode_gap_seconds`` in milliseconds."""
        return self._episode_gaps_ms[rule_id]

    @cached_property
    def _episode_gaps_ms(self) -> dict[str, int]:
        return {rule: gap * 1000 for rule, gap in self._episode_gaps.items()}

    @cached_property
    def smallest_episode_gap_ms(self) -> int:
        """The shortest quiet gap that closes an episode of any rule, in milliseconds."""
        return min(self._episode_gaps_ms.values())

    @cached_property
    def source_rules(self) -> tuple[bool, bool, bool, bool, int, int, int, int, int, int]:
        """What the source rules need per failure, worked out once: whether R1, R4, R5, R7 run, then
        R1's count and window (ms), R4's distinct users and window (ms), R5's."""
        return (
            self.enabled("R1"),
            self.enabled("R4"),
            self.enabled("R5"),
            self.enabled("R7"),
            self.r1_failures,
            self.r1_window_seconds * 1000,
            self.r4_distinct_users,
            self.r4_window_seconds * 1000,
            self.r5_distinct_users,
            self.r5_window_seconds * 1000,
        )

    @cached_property
    def user_rules(self) -> tuple[bool, bool, bool, int, int, int, int, int]:
        """What the user rules need per failure, worked out once: whether R2, R3, R7 run, then R2's
        count and window (ms), R3's failures, distinct sources and window (ms)."""
        return (
            self.enabled("R2"),
            self.enabled("R3"),
            self.enabled("R7"),
            self.r2_failures,
            self.r2_window_seconds * 1000,
            self.r3_failures,
            self.r3_distinct_ips,
            self.r3_window_seconds * 1000,
        )

    def quiet_below(self, kind: str) -> int | float:
        """Failures of an entity with nothing on record below which none of its rules can fire in a
        run: a source's R1 count and R4/R5 distinct users (each failure adds one user at most), a
        user's R2 count, and R3 (it needs both its failures and its distinct sources)."""
        return self._quiet_below[kind]

    @cached_property
    def _quiet_below(self) -> dict[str, int | float]:
        never = float("inf")
        source = [
            threshold
            for rule, threshold in (
                ("R1", self.r1_failures),
                ("R4", self.r4_distinct_users),
                ("R5", self.r5_distinct_users),
            )
            if self.enabled(rule)
        ]
        user = [self.r2_failures] if self.enabled("R2") else []
        if self.enabled("R3"):
            user.append(max(self.r3_failures, self.r3_distinct_ips))
        return {"device_ip": min(source, default=never), "user": min(user, default=never)}

    def bounds(self, kind: str) -> tuple[int, int, int, int, int, int]:
        """What an entity record of ``kind`` keeps (``device_ip`` or ``user``), worked out once: the
        dedup horizon (ms), attempts remembered, the failure window (ms), the distinct-value window
        (ms) and how many values it needs, the failures a window holds at most."""
        return self._bounds[kind]

    @cached_property
    def _bounds(self) -> dict[str, tuple[int, int, int, int, int, int]]:
        common = (self.dedup_horizon_seconds * 1000, self.max_seen_attempts)
        return {
            "device_ip": (
                *common,
                max(self.r1_window_seconds, self.r4_window_seconds) * 1000,
                max(self.r4_window_seconds, self.r5_window_seconds) * 1000,
                max(self.r4_distinct_users, self.r5_distinct_users),
                self.max_window_events,
            ),
            "user": (
                *common,
                max(self.r2_window_seconds, self.r3_window_seconds) * 1000,
                self.r3_window_seconds * 1000,
                self.r3_distinct_ips,
                self.max_window_events,
            ),
        }

    @cached_property
    def cooldown_ms(self) -> int:
        """``cooldown_seconds`` in milliseconds."""
        return self.cooldown_seconds * 1000

    @property
    def state_ttl_seconds(self) -> int:
        """How long an entity's record must outlive its last event: the longest memory any rule needs
        (a window or the dedup horizon, then an episode's gap and the recurrence window)."""
        longest = max(max(self.window_seconds(rule) for rule in _ALL_RULES), self.dedup_horizon_seconds)
        return longest + max(self.cooldown_seconds, longest) + self.recurrence_window_seconds


def _list_value(text: str) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        loaded = json.loads(stripped)
        return [str(item) for item in loaded]
    return [item.strip() for item in stripped.split(",") if item.strip()]
