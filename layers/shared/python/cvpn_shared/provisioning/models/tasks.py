"""Payloads of the provisioning tasks, as the state machine hands them to each Lambda."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cvpn_shared.provisioning.models.request import AuthorizationRule, ProvisionRequest
from cvpn_shared.provisioning.models.workflow_state import PollState

__all__ = [
    "AssociateSubnetTask",
    "AuthorizeRuleTask",
    "CheckTask",
    "CreateEndpointTask",
    "CreateRouteTask",
    "EndpointTask",
    "RecordDecommissionFailureTask",
    "RecordDecommissionTask",
    "RecordFailureTask",
    "RecordOutcomeTask",
    "RecordSuccessTask",
    "ResolveEndpointTask",
    "TeardownTask",
    "ValidateTask",
]


class _Task(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ValidateTask(_Task):
    """The raw request as it arrived; validation turns it into a ProvisionRequest."""

    request: dict[str, Any]


class EndpointTask(_Task):
    request: ProvisionRequest
    endpoint_id: str = ""


class CreateEndpointTask(_Task):
    """Create the request's endpoint, or adopt the live one validation found tagged with its request id."""

    request: ProvisionRequest
    execution_id: str
    existing_endpoint_id: str | None = None


class AssociateSubnetTask(_Task):
    request: ProvisionRequest
    endpoint_id: str
    subnet_id: str


class CheckTask(_Task):
    endpoint_id: str
    poll: PollState


class AuthorizeRuleTask(_Task):
    request: ProvisionRequest
    endpoint_id: str
    rule: AuthorizationRule


class CreateRouteTask(_Task):
    request: ProvisionRequest
    endpoint_id: str
    destination_cidr: str
    subnet_id: str
    description: str = ""


class TeardownTask(_Task):
    endpoint_id: str
    poll: PollState
    absent_checks: int = 0


class ResolveEndpointTask(_Task):
    """Decommission by request id or endpoint id (exactly one): the decommission execution's input."""

    request_id: str | None = None
    endpoint_id: str | None = None


class _ExecutionInfo(_Task):
    execution_id: str
    started_at: str


class RecordSuccessTask(_ExecutionInfo):
    outcome: Literal["succeeded"]
    request: ProvisionRequest
    result: dict[str, Any]
    warnings: list[dict[str, str]] = []  # the checks across rules and routes: [{field, message}]


class StepError(_Task):
    """What a Catch puts in the state: the error name and its cause."""

    Error: str = "States.Runtime"
    Cause: str = ""


class RecordFailureTask(_ExecutionInfo):
    """A failed execution. ``request`` is whatever is known of the request (raw when it was invalid)."""

    outcome: Literal["failed"]
    request: dict[str, Any] = {}
    error: StepError
    endpoint_id: str | None = None
    rolled_back: bool = False

    @property
    def request_id(self) -> str:
        return str(self.request.get("request_id") or "unknown")

    @property
    def requester(self) -> str:
        return str(self.request.get("requester") or "unknown")


class RecordDecommissionTask(_ExecutionInfo):
    outcome: Literal["decommissioned"]
    request_id: str
    requester: str = ""
    endpoint_id: str


class RecordDecommissionFailureTask(_ExecutionInfo):
    """A failed decommission. ``target`` is the execution's state: its input (``request_id`` or
    ``endpoint_id``) and, once resolved, ``endpoint`` (endpoint_id, request_id, requester)."""

    outcome: Literal["decommission-failed"]
    target: dict[str, Any] = {}
    error: StepError

    @property
    def _endpoint(self) -> dict[str, Any]:
        endpoint = self.target.get("endpoint")
        return endpoint if isinstance(endpoint, dict) else {}

    @property
    def request_id(self) -> str | None:
        return self._endpoint.get("request_id") or self.target.get("request_id") or None

    @property
    def endpoint_id(self) -> str | None:
        return self._endpoint.get("endpoint_id") or self.target.get("endpoint_id") or None


RecordOutcomeTask = Annotated[
    RecordSuccessTask | RecordFailureTask | RecordDecommissionTask | RecordDecommissionFailureTask,
    Field(discriminator="outcome"),
]
