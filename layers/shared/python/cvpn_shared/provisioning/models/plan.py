"""A plan: the changes that take a live endpoint to its desired state, in the order they are made.

``cvpn plan`` prints one, the update state machine executes one change per task (the same list,
in the same order), the audit trail records it and drift reports it. Each change carries the API
call that makes it and the call that undoes it, so a failed update can restore what it changed.

Order of execution (``PHASE_ORDER``): what adds comes before what removes, so that no user loses a
path that the new state keeps: endpoint options, the endpoint's own tags, certificate, client
certificate revocation list, security groups, new associations (then a wait until they are
associated), new rules, new routes, revoked rules, deleted routes, disassociations last. The last
association is never removed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "PHASE_ORDER",
    "ApiCall",
    "Change",
    "ChangeAction",
    "ChangeGroup",
    "Plan",
    "PlanFinding",
    "Refusal",
]

# How a plan is shown: one heading per group, in this order.
ChangeGroup = Literal[
    "endpoint-options",
    "associations",
    "authorization-rules",
    "routes",
    "security-groups",
    "certificate",
]

ChangeAction = Literal[
    "modify-endpoint",
    "replace-certificate",
    "apply-security-groups",
    "associate-subnet",
    "authorize-rule",
    "create-route",
    "revoke-rule",
    "delete-route",
    "disassociate-subnet",
    "update-tags",
    "import-revocation-list",
]

# How a plan is executed: the changes sorted by their action's position here (stable within one).
PHASE_ORDER: tuple[ChangeAction, ...] = (
    "modify-endpoint",
    "update-tags",
    "replace-certificate",
    "import-revocation-list",
    "apply-security-groups",
    "associate-subnet",
    "authorize-rule",
    "create-route",
    "revoke-rule",
    "delete-route",
    "disassociate-subnet",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiCall(_Model):
    """One EC2 call: its operation name as the API spells it and its parameters.

    ``ClientVpnEndpointId`` is left out: the executor adds the endpoint's id. ``ClientToken``s are
    left out too: the executor derives them from the request, the revision and the change.
    """

    operation: str = Field(pattern=r"^[A-Z][A-Za-z]+$")
    parameters: dict[str, Any] = {}


class Change(_Model):
    """One change to the endpoint, as a person reads it and as the workflow makes it."""

    group: ChangeGroup
    action: ChangeAction
    summary: str = Field(min_length=1, description="one line a person reads, e.g. 'add route 10.2.0.0/16'")
    field: str = Field(description="the request document's field this change comes from, e.g. 'routes[2]'")
    disruptive: bool = False
    disruption: str = Field(
        default="",
        description="whom it disrupts and how, e.g. 'drops the sessions placed in subnet-0a1b'",
    )
    new_configuration_needed: bool = Field(
        default=False, description="every user must download a new client configuration"
    )
    forward: ApiCall
    undo: ApiCall | None = Field(default=None, description="the call that restores the previous state")
    undo_then: list[ApiCall] = Field(
        default=[],
        description="calls that complete the undo once it has settled: the routes AWS deleted "
        "together with a removed association, re-created once the subnet is associated again",
    )


class Refusal(_Model):
    """A difference that cannot be made in place: why, and what to do instead."""

    field: str
    reason: str
    instead: str


class PlanFinding(_Model):
    """A check across rules and routes: an error where AWS would fail, a warning where it surprises."""

    severity: Literal["error", "warning"]
    field: str
    message: str


class Plan(_Model):
    """What ``cvpn plan`` shows and ``cvpn apply`` does."""

    request_id: str
    endpoint_id: str
    revision: int = Field(ge=1, description="the revision of the desired state this plan reaches")
    changes: list[Change] = []
    refusals: list[Refusal] = []
    findings: list[PlanFinding] = []
    live_connections: int = Field(default=0, ge=0, description="connections live when the plan was made")

    @property
    def no_changes(self) -> bool:
        return not self.changes and not self.refusals

    @property
    def can_apply_in_place(self) -> bool:
        return not self.refusals and not any(item.severity == "error" for item in self.findings)

    def in_execution_order(self) -> list[Change]:
        return sorted(self.changes, key=lambda change: PHASE_ORDER.index(change.action))
