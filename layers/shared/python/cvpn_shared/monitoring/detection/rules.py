"""The detection rules R1-R7: what each is called, how severe it is, what it maps to (MITRE ATT&CK, ASFF).

Thresholds live in ``DetectionSettings``; this module holds what does not change with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ATTACK_RULES",
    "RULES",
    "SEVERITIES",
    "EntityKind",
    "RuleId",
    "RuleSpec",
    "Severity",
    "escalate",
]

RuleId = Literal["R1", "R2", "R3", "R4", "R5", "R6", "R7"]
Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
EntityKind = Literal["device_ip", "user"]

SEVERITIES: tuple[Severity, ...] = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


@dataclass(frozen=True)
class RuleSpec:
    """What a rule is: its title, base severity, the entity it watches and its mappings."""

    rule_id: RuleId
    title: str
    severity: Severity
    entity: EntityKind
    mitre: tuple[str, ...]
    asff_types: tuple[str, ...]
    description: str


_BRUTE_FORCE = "TTPs/Credential Access/Brute Force"
_SPRAY = "TTPs/Credential Access/Password Spraying"

RULES: dict[str, RuleSpec] = {
    spec.rule_id: spec
    for spec in (
        RuleSpec(
            "R1",
            "Brute force from one source",
            "MEDIUM",
            "device_ip",
            ("T1110.001",),
            (_BRUTE_FORCE,),
            "Repeated failed Client VPN connection attempts from one source address.",
        ),
        RuleSpec(
            "R2",
            "Brute force against one user",
            "MEDIUM",
            "user",
            ("T1110.001",),
            (_BRUTE_FORCE,),
            "Repeated failed Client VPN connection attempts for one user.",
        ),
        RuleSpec(
            "R3",
            "Distributed attack on one user",
            "HIGH",
            "user",
            ("T1110.001", "T1110.004"),
            (_BRUTE_FORCE,),
            "Failed Client VPN connection attempts for one user from many source addresses.",
        ),
        RuleSpec(
            "R4",
            "Password spray from one source",
            "HIGH",
            "device_ip",
            ("T1110.003",),
            (_SPRAY,),
            "Failed Client VPN connection attempts for many users from one source address.",
        ),
        RuleSpec(
            "R5",
            "Slow password spray from one source",
            "MEDIUM",
            "device_ip",
            ("T1110.003",),
            (_SPRAY,),
            "Failed Client VPN connection attempts for many users from one source address over a day.",
        ),
        RuleSpec(
            "R6",
            "Successful connection after an attack",
            "CRITICAL",
            "device_ip",  # or user: R6 follows the entity whose attack it follows
            ("T1110", "T1078"),
            ("TTPs/Initial Access/Valid Accounts", _BRUTE_FORCE),
            "A Client VPN connection succeeded for a source or user shortly after an attack on it.",
        ),
        RuleSpec(
            "R7",
            "Notable connection failure",
            "LOW",
            "device_ip",  # user when the record has no device-ip
            (),
            ("Unusual Behaviors/User/Denied Client VPN Connection",),
            "A Client VPN connection was refused for a reason worth a look on its own "
            "(authorization policy, client-connect handler, device token).",
        ),
    )
}

# The rules whose firing arms R6 (success after attack), by the entity they watch.
ATTACK_RULES: dict[EntityKind, tuple[RuleId, ...]] = {
    "device_ip": ("R1", "R4", "R5"),
    "user": ("R2", "R3"),
}


def escalate(severity: Severity, steps: int) -> Severity:
    """``severity`` raised ``steps`` steps, capped at CRITICAL."""
    index = SEVERITIES.index(severity) + max(steps, 0)
    return SEVERITIES[min(index, len(SEVERITIES) - 1)]
