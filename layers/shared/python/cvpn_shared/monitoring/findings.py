"""Findings (security) and health issues (operations): the one schema that detection emits, the bus
carries, alerting delivers and Security Hub imports (``to_asff``).

Identity: ``finding_id`` is the sha256 of ``rule | endpoint | entity | window start`` (detection spec).
The window start is the start of the *episode*: the time of the earliest failure of the set that
first met the rule's threshold (R6: the first success after the attack; R7: the first notable
failure). An episode stays open while the entity keeps producing events the rule counts no more than
``DetectionSettings.episode_gap_seconds(rule)`` apart (the cooldown, or the rule's window when longer),
so every re-fire in it keeps the same id and updates the finding (a newer ``UpdatedAt`` with the same
``Id`` updates it in Security Hub). After a longer quiet gap, the next fire opens a new episode, hence
a new id.

Health: client-connect handler malfunctions (``client-connect-handler-*`` except
``client-connect-failed``) say the handler is broken, not that someone attacks: they go to operations
as ``HealthIssue`` and never count as failures for the security rules.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cvpn_shared.monitoring.attempts import bounded_text
from cvpn_shared.monitoring.detection.rules import RULES, RuleId, Severity

__all__ = [
    "DETAIL_TYPE",
    "HEALTH_DETAIL_TYPE",
    "HEALTH_REASONS",
    "SCHEMA_VERSION",
    "Finding",
    "FindingCounts",
    "FindingEntity",
    "FindingWindow",
    "HealthIssue",
    "finding_id",
    "format_time",
    "is_health_reason",
]

SCHEMA_VERSION = "1.0"
DETAIL_TYPE = "Client VPN Suspicious Connection Attempts"
HEALTH_DETAIL_TYPE = "Client VPN Connection Handler Health"
ASFF_SCHEMA_VERSION = "2018-10-08"
MAX_SAMPLE_CONNECTION_IDS = 20
MAX_ATTACK_SOURCES = 2000  # DetectionSettings.max_tracked_values at most

CLIENT_CONNECT_FAILED = "client-connect-failed"
HANDLER_REASON_PREFIX = "client-connect-handler-"
HEALTH_REASONS: frozenset[str] = frozenset(
    {
        "client-connect-handler-timed-out",
        "client-connect-handler-other-execution-error",
        "client-connect-handler-throttled",
        "client-connect-handler-invalid-response",
        "client-connect-handler-service-error",
    }
)


def is_health_reason(reason: str | None) -> bool:
    """A client-connect handler malfunction (documented or a new ``client-connect-handler-*`` one)."""
    return reason is not None and (
        reason in HEALTH_REASONS
        or (reason.startswith(HANDLER_REASON_PREFIX) and reason != CLIENT_CONNECT_FAILED)
    )


_NOT_APPLICABLE = frozenset({"", "NA", "-"})


def _known(value: str | None) -> str | None:
    """``value``, or None for the log's "not applicable" ("NA", "-", empty)."""
    return None if value is None or value in _NOT_APPLICABLE else value


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, as in the event detail and ASFF."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def finding_id(rule_id: str, endpoint_id: str, entity_key: str, window_start: datetime) -> str:
    """sha256 of ``rule | endpoint | entity | window start`` (hex): the same episode, the same id."""
    material = "|".join((rule_id, endpoint_id, entity_key, format_time(window_start)))
    return hashlib.sha256(material.encode()).hexdigest()


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FindingEntity(_Part):
    """Who the finding is about. The watched entity is always set; the others when unambiguous."""

    device_ip: str | None = None
    username: str | None = None
    common_name: str | None = None


class FindingWindow(_Part):
    """The episode: from the earliest failure that made the rule fire to the latest event in it."""

    start: datetime
    end: datetime


class FindingCounts(_Part):
    """Failures, distinct users and distinct source addresses counted in the episode.

    Distinct values are tracked up to ``DetectionSettings.max_tracked_values`` per episode; beyond
    that the figure is a lower bound.
    """

    failures: int = Field(ge=0)
    distinct_users: int = Field(ge=0)
    distinct_ips: int = Field(ge=0)


class Finding(_Part):
    """A rule that fired for an entity: what the bus and Security Hub receive."""

    finding_id: str
    rule_id: RuleId
    title: str
    severity: Severity
    mitre: list[str]
    entity: FindingEntity
    entity_key: str = Field(
        default="", description="What the rule watched: 'device_ip:<address>', 'user:<name>'"
    )
    endpoint_id: str
    window: FindingWindow
    first_seen: datetime
    last_seen: datetime
    counts: FindingCounts
    failure_reasons: list[str]
    sample_connection_ids: list[str] = Field(max_length=MAX_SAMPLE_CONNECTION_IDS)
    allowlisted: bool
    runbook_url: str
    attack_sources: list[str] = Field(
        default_factory=list,
        max_length=MAX_ATTACK_SOURCES,
        description=(
            "The source addresses that took part in the attack the finding reports (as far as they "
            "were tracked): the watched address for R1, R4, R5 and R7; the failing addresses for R2 "
            "and R3; for R6, those of the attack the success followed"
        ),
    )
    escalated: bool = False
    occurrence: int = Field(
        default=1, ge=1, description="Episodes of this rule and entity in a row, recurrences"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_event_detail(cls, data: Any) -> Any:
        """A finding read back from its event detail (as the bus delivers it) is the same finding:
        ``schema_version`` is dropped, ``entity_key`` (not part of the detail) is derived from the
        rule's entity, and a missing ``runbook_url`` becomes empty."""
        if not isinstance(data, dict):
            return data
        values = {key: value for key, value in data.items() if key != "schema_version"}
        if values.get("runbook_url") is None:
            values["runbook_url"] = ""
        if not values.get("entity_key"):
            entity = values.get("entity") or {}
            rule = RULES.get(str(values.get("rule_id")))
            user = _known(entity.get("username")) or _known(entity.get("common_name"))
            if rule is not None and rule.entity == "user" and user:
                values["entity_key"] = f"user:{user}"
            elif _known(entity.get("device_ip")):
                values["entity_key"] = f"device_ip:{entity['device_ip']}"
            elif user:
                values["entity_key"] = f"user:{user}"
        return values

    @classmethod
    def from_event_detail(cls, detail: dict[str, Any]) -> Finding:
        """The finding back from its event detail (as delivered by EventBridge)."""
        return cls.model_validate(detail)

    @property
    def revision(self) -> str:
        """A digest of the whole detail: the same for a retried event, new when the finding is
        re-published with new counts or a later last attempt."""
        canonical = json.dumps(self.event_detail(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def username(self) -> str | None:
        """The Active Directory or SAML user name, when the log gave one."""
        return _known(self.entity.username)

    @property
    def common_name(self) -> str | None:
        """The client certificate's common name, when the log gave one."""
        return _known(self.entity.common_name)

    @property
    def user(self) -> str | None:
        """Who the finding names: the user name, else the certificate's common name."""
        return self.username or self.common_name

    @property
    def source_ip(self) -> str | None:
        """The source address, when the log gave one."""
        return _known(self.entity.device_ip)

    @property
    def period(self) -> str:
        """From the first to the last attempt counted: ``<first> .. <last>``."""
        return f"{format_time(self.first_seen)} .. {format_time(self.last_seen)}"

    @property
    def counts_text(self) -> str:
        """The counts by name: ``distinct_ips 1, distinct_users 6, failures 12``."""
        return ", ".join(f"{key} {value}" for key, value in sorted(self.counts.model_dump().items()))

    def event_detail(self) -> dict[str, Any]:
        """The EventBridge ``Detail`` of the detection spec, exactly, JSON-serialisable."""
        return {
            "schema_version": SCHEMA_VERSION,
            "finding_id": self.finding_id,
            "rule_id": self.rule_id,
            "title": self.title,
            "severity": self.severity,
            "mitre": list(self.mitre),
            "entity": {
                "device_ip": self.entity.device_ip,
                "username": self.entity.username,
                "common_name": self.entity.common_name,
            },
            "endpoint_id": self.endpoint_id,
            "window": {"start": format_time(self.window.start), "end": format_time(self.window.end)},
            "first_seen": format_time(self.first_seen),
            "last_seen": format_time(self.last_seen),
            "counts": {
                "failures": self.counts.failures,
                "distinct_users": self.counts.distinct_users,
                "distinct_ips": self.counts.distinct_ips,
            },
            "failure_reasons": list(self.failure_reasons),
            "sample_connection_ids": list(self.sample_connection_ids),
            "allowlisted": self.allowlisted,
            "runbook_url": self.runbook_url,
            "attack_sources": list(self.attack_sources),
        }

    @property
    def success_from_attack_source(self) -> bool:
        """R6: the success came from an address that took part in the attack (evidence that the
        attacker, not the person attacked, got in)."""
        return self.rule_id == "R6" and self.source_ip is not None and self.source_ip in self.attack_sources

    def to_asff(
        self, *, account_id: str, region: str, product_arn: str, endpoint_arn: str, now: datetime
    ) -> dict[str, Any]:
        """The finding in the AWS Security Finding Format, for BatchImportFindings.

        Allow-listed findings are imported with ``Severity.Label`` INFORMATIONAL (``Original`` keeps
        the rule's severity). ``UpdatedAt`` is ``now``: importing again with the same ``Id`` and a
        newer ``UpdatedAt`` updates the finding.
        """
        spec = RULES[self.rule_id]
        partition = endpoint_arn.split(":", 2)[1] if endpoint_arn.startswith("arn:") else "aws"
        label = "INFORMATIONAL" if self.allowlisted else self.severity
        finding: dict[str, Any] = {
            "SchemaVersion": ASFF_SCHEMA_VERSION,
            "Id": self.finding_id,
            "ProductArn": product_arn,
            "ProductName": "Client VPN Autopilot",
            "GeneratorId": self.rule_id,
            "AwsAccountId": account_id,
            "Types": list(spec.asff_types),
            "FirstObservedAt": format_time(self.first_seen),
            "LastObservedAt": format_time(self.last_seen),
            "CreatedAt": format_time(self.window.start),
            "UpdatedAt": format_time(now),
            "Severity": {"Label": label, "Original": self.severity},
            "Title": self.title[:256],
            "Description": self._description()[:1024],
            "Resources": [
                {
                    "Type": "AwsEc2ClientVpnEndpoint",
                    "Id": endpoint_arn,
                    "Partition": partition,
                    "Region": region,
                }
            ],
            "ProductFields": {
                "cvpn/rule_id": self.rule_id,
                "cvpn/entity_key": self.entity_key[:1024],
                "cvpn/endpoint_id": self.endpoint_id,
                "cvpn/failures": str(self.counts.failures),
                "cvpn/distinct_users": str(self.counts.distinct_users),
                "cvpn/distinct_ips": str(self.counts.distinct_ips),
                "cvpn/failure_reasons": ",".join(self.failure_reasons)[:1024],
                "cvpn/allowlisted": str(self.allowlisted).lower(),
                "cvpn/occurrence": str(self.occurrence),
                "cvpn/mitre": ",".join(self.mitre),
            },
            "RecordState": "ACTIVE",
        }
        network = _network(self.entity.device_ip)
        if network:
            finding["Network"] = network
        if self.runbook_url:
            finding["Remediation"] = {
                "Recommendation": {"Text": f"Follow the runbook for {self.rule_id}.", "Url": self.runbook_url}
            }
        return finding

    def _description(self) -> str:
        # What a log line carried, escaped and bounded: Security Hub shows the description as text.
        who = bounded_text(
            self.entity_key.split(":", 1)[-1] or self.entity.device_ip or self.entity.username or "?"
        )
        text = (
            f"{RULES[self.rule_id].description} Entity {who} on {self.endpoint_id}: "
            f"{self.counts.failures} failures, {self.counts.distinct_users} users, "
            f"{self.counts.distinct_ips} source addresses between {format_time(self.first_seen)} "
            f"and {format_time(self.last_seen)}."
        )
        if self.escalated:
            text += f" Recurrence {self.occurrence} within the recurrence window: severity raised."
        if self.allowlisted:
            text += " The entity is allow-listed."
        return text


def _network(device_ip: str | None) -> dict[str, str] | None:
    if not device_ip:
        return None
    try:
        address = ipaddress.ip_address(device_ip)
    except ValueError:
        return None
    key = "SourceIpV4" if address.version == 4 else "SourceIpV6"
    return {"Direction": "IN", key: str(address)}


class HealthIssue(_Part):
    """Client-connect handler malfunctions seen in one run, per endpoint and reason (operations)."""

    endpoint_id: str
    reason: str
    count: int = Field(ge=1)
    first_seen: datetime
    last_seen: datetime
    sample_connection_ids: list[str] = Field(max_length=MAX_SAMPLE_CONNECTION_IDS)
    kind: Literal["client-connect-handler"] = "client-connect-handler"

    @model_validator(mode="before")
    @classmethod
    def _from_event_detail(cls, data: Any) -> Any:
        """A health issue read back from its event detail: ``schema_version`` is dropped."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if key != "schema_version"}
        return data

    def event_detail(self) -> dict[str, Any]:
        """JSON-serialisable detail for an operations event."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": self.kind,
            "endpoint_id": self.endpoint_id,
            "reason": self.reason,
            "count": self.count,
            "first_seen": format_time(self.first_seen),
            "last_seen": format_time(self.last_seen),
            "sample_connection_ids": list(self.sample_connection_ids),
        }
