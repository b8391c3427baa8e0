"""Payloads of the update state machine's tasks, as it hands them to each Lambda."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cvpn_shared.provisioning.models.plan import Change
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.models.tasks import StepError
from cvpn_shared.provisioning.models.workflow_state import PollState

__all__ = [
    "ApplyChangeTask",
    "CheckSettledTask",
    "PlanUpdateTask",
    "RecordRevisionTask",
    "UndoChangesTask",
    "UpdateInput",
    "ValidateUpdateTask",
    "Validated",
]


class _Task(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class UpdateInput(_Task):
    """The execution's input: the desired document, who applies it, and the revision it was planned
    for (optional: the next one when absent)."""

    request: dict[str, Any]
    applied_by: str = Field(default="unknown", min_length=1, max_length=512)
    revision: int | None = Field(default=None, ge=2)
    users_notice: str = Field(
        default="",
        max_length=1000,
        description="what the success notification tells users instead of the general rule (a rotation "
        "knows whether the new server certificate chains to the same CA)",
    )
    new_configuration_needed: bool | None = Field(
        default=None, description="whether users need a new configuration, when the caller knows"
    )


class ValidateUpdateTask(_Task):
    input: UpdateInput
    execution_id: str = ""


class Validated(_Task):
    """What validation hands on: the parsed document, its endpoint, and the revisions."""

    request: ProvisionRequest
    endpoint_id: str
    revision: int = Field(ge=2)
    previous_revision: int = Field(ge=1)
    previous_document: dict[str, Any] = {}
    applied_by: str = "unknown"
    warnings: list[dict[str, str]] = []


class PlanUpdateTask(_Task):
    validated: Validated


class _Progress(_Task):
    index: int = Field(default=0, ge=0)
    applied: list[dict[str, Any]] = []


class ApplyChangeTask(_Task):
    validated: Validated
    changes: list[Change]
    progress: _Progress


class UndoChangesTask(ApplyChangeTask):
    """Undo the applied changes, or, given ``undo`` (the first pass's answer), complete it."""

    in_flight: bool
    undo: dict[str, Any] | None = None


class CheckSettledTask(_Task):
    endpoint_id: str
    poll: PollState
    strict: bool


class RecordRevisionTask(_Task):
    """Open, close or refuse a revision (``outcome``)."""

    outcome: Literal["started", "succeeded", "failed", "refused", "no-changes"]
    validated: dict[str, Any]
    plan: dict[str, Any] = {}
    summary: list[str] = []
    configuration: dict[str, Any] | None = None
    error: StepError | None = None
    undo: dict[str, Any] | None = None
    rolled_back: bool = False
    execution_id: str = ""
