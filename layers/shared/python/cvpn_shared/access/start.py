"""Start the intake workflow for a request, once: the execution is named after the source and ticket key.

Step Functions STANDARD executions are idempotent by name: StartExecution with the same name and input
while the execution runs returns that execution; a closed execution, or another input, answers
ExecutionAlreadyExists. Names are reusable 90 days after the execution closes. So the same ticket from
the same source never starts twice: a duplicate gets the original execution back and starts nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cvpn_shared.access.dal.intake_workflow import ExecutionAlreadyExists, IntakeExecutions
from cvpn_shared.access.naming import run_execution_name

__all__ = [
    "ExecutionNameConflict",
    "IntakeStarter",
    "StartResult",
    "execution_arn_for",
    "start_request",
    "status_url_path",
]


class ExecutionNameConflict(Exception):
    """The execution name of this request already belongs to another request (names lose characters)."""

    def __init__(self, name: str, request_id: str, other_request_id: str) -> None:
        self.name = name
        self.request_id = request_id
        self.other_request_id = other_request_id
        super().__init__(
            f"request_id: {request_id!r} maps to the execution name {name!r}, which request "
            f"{other_request_id!r} already uses; use a request id that differs in letters, digits, - or _"
        )


@dataclass
class StartResult:
    """The execution that handles the request, and whether it existed already."""

    request_id: str
    execution_arn: str
    status_url_path: str
    duplicate: bool


def status_url_path(request_id: str) -> str:
    """Where the request's status is served (``GET /requests/{id}`` on the intake API)."""
    return f"/requests/{quote(request_id, safe='')}"


def execution_arn_for(state_machine_arn: str, name: str) -> str:
    """The ARN an execution named ``name`` of the state machine has."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def _request_id_of(execution: dict[str, Any]) -> str | None:
    try:
        request_id = json.loads(execution.get("input") or "{}")["request"]["request_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return request_id if isinstance(request_id, str) else None


def start_request(
    sfn_client: Any,
    intake_state_machine_arn: str,
    *,
    source: str,
    request: dict[str, Any],
    approval_required: bool,
    callback: dict[str, Any] | None = None,
    run: int = 1,
) -> StartResult:
    """Start the intake workflow for ``request`` (already validated) unless it was started before.

    The workflow's input is ``{source, request, approval_required, callback}``. Raises ValueError when
    the request has no request_id, ExecutionNameConflict when another request holds the name.
    """
    request_id = request.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise ValueError("request.request_id: required (the ticket key names the execution)")
    if not intake_state_machine_arn:
        raise ValueError("intake_state_machine_arn: not configured (INTAKE_STATE_MACHINE_ARN)")
    name = run_execution_name(request_id, source, run)
    arn = execution_arn_for(intake_state_machine_arn, name)
    executions = IntakeExecutions(sfn_client)
    payload = {
        "source": source,
        "request": request,
        "approval_required": approval_required,
        "callback": callback,
    }
    existing = executions.describe(arn)
    if existing is None:
        try:
            started = executions.start(intake_state_machine_arn, name, payload)
        except ExecutionAlreadyExists:
            existing = executions.describe(arn)  # started concurrently by a retry
        else:
            return StartResult(request_id, started, status_url_path(request_id), duplicate=False)
    other = _request_id_of(existing) if existing else None
    if other is not None and other != request_id:
        raise ExecutionNameConflict(name, request_id, other)
    return StartResult(request_id, arn, status_url_path(request_id), duplicate=True)


@dataclass(frozen=True)
class IntakeStarter:
    """``start_request`` bound to one client and state machine (what the webhook intake is handed)."""

    sfn_client: Any
    intake_state_machine_arn: str

    def execution_arn(self, source: str, request_id: str, run: int = 1) -> str:
        return execution_arn_for(self.intake_state_machine_arn, run_execution_name(request_id, source, run))

    def start(
        self,
        source: str,
        request: dict[str, Any],
        approval_required: bool,
        callback: dict[str, Any] | None,
        run: int = 1,
    ) -> StartResult:
        return start_request(
            self.sfn_client,
            self.intake_state_machine_arn,
            source=source,
            request=request,
            approval_required=approval_required,
            callback=callback,
            run=run,
        )
