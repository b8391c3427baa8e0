"""How an intake ended, said once for every reader: its Fail state, the ticket, the status API.

When the intake ends (succeeded, rejected, expired or failed), ``end_intake`` runs before anything
reports the outcome:

- the client CIDR block the request held in the pool is given back unless an endpoint now uses it
  (the release is conditional on this request holding the block, so it never frees another's);
- a failure is reduced to the error and cause that explain it. A provisioning that failed reaches
  the intake as ``States.TaskFailed`` whose cause is the provisioning execution's description (JSON)
  holding its own error and cause, and a Lambda error's cause is JSON too (``errorType``,
  ``errorMessage``); ``failure_of`` unwraps both. Step Functions refuses error names that begin with
  ``States.`` in a Fail state, so such a name is reported as ``ProvisioningFailed`` with the original
  name at the start of the cause.
- a grant request that ended without access (rejected, expired, not activated) also gets
  ``refusal``: what happened to the grant, who rejected it, and why, for the ticket's comment; its
  cause is that comment's first sentence (``ticket_notices.refusal_statement``), which the status API
  gives too, not an endpoint request's "nothing was created".
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from cvpn_shared.access.ticket_notices import GrantRefusal, refusal_statement

__all__ = [
    "MAX_CAUSE_CHARS",
    "ClientCidrReleaser",
    "IntakeEndTask",
    "IntakeOutcome",
    "end_intake",
    "failure_of",
    "grant_refusal",
    "refusal_of",
    "rejected_by",
]

logger = logging.getLogger(__name__)

# A Fail state's cause is at most 32,768 characters; the ticket and status API show far less.
MAX_CAUSE_CHARS = 4000
_RESERVED_PREFIX = "States."
_FALLBACK_ERROR = "ProvisioningFailed"
# What an endpoint request that nobody approved reports (its Fail states say the same).
_UNAPPROVED = {
    "REJECTED": ("ApprovalRejected", "An approver rejected the request; nothing was created."),
    "EXPIRED": ("ApprovalExpired", "No approver decided in time; nothing was created."),
}
_MAX_ERROR_CHARS = 256


class ClientCidrReleaser(Protocol):
    def release(self, block: ipaddress.IPv4Network, *, request_id: str) -> bool:
        """Give ``block`` back when ``request_id`` holds it; False when it does not."""
        ...


class IntakeOutcome(BaseModel):
    """How the intake ended: the provisioning execution's result, or the error (``Error``, ``Cause``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["SUCCEEDED", "FAILED", "REJECTED", "EXPIRED"]
    provisioning: dict[str, Any] | None = None
    grant: dict[str, Any] | None = None  # a grant request's: the grant as its decision left it
    error: dict[str, Any] | None = None


class _IntakeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: str = Field(min_length=1)
    client_cidr_block: str | None = None
    grant_id: str | None = None  # a request for access on a grants profile (no endpoint)
    kind: str = "grant"  # or "extension"


class IntakeEndTask(BaseModel):
    """What the intake workflow hands the EndIntake task."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source: str
    request: _IntakeRequest
    outcome: IntakeOutcome


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def failure_of(error: dict[str, Any] | None) -> tuple[str, str]:
    """The error name and cause that explain a failure caught by the intake.

    Unwraps a ``startExecution.sync:2`` failure (the provisioning execution's description) and a
    Lambda error (``errorType``, ``errorMessage``); anything else is taken as it is.
    """
    if not error:
        return "Unknown", ""
    name, cause = str(error.get("Error") or "Unknown"), str(error.get("Cause") or "")
    described = _json_object(cause)
    if described is not None and "Status" in described and ("Error" in described or "Cause" in described):
        name, cause = str(described.get("Error") or name), str(described.get("Cause") or "")
        described = _json_object(cause)
    if described is not None and "errorMessage" in described:
        return str(described.get("errorType") or name), str(described["errorMessage"])
    return name, cause


def rejected_by(cause: str) -> str | None:
    """Who rejected, from the rejection's cause ("request R was rejected by NAME (approval A)")."""
    if " rejected by " not in cause:
        return None
    name = cause.split(" rejected by ", 1)[1].rsplit(" (approval", 1)[0].strip()
    return name[:_MAX_ERROR_CHARS] or None


def refusal_of(kind: str, grant_id: str, outcome: IntakeOutcome) -> dict[str, Any]:
    """How a grant (or extension) request that ended ``outcome`` (not SUCCEEDED) got no access.

    ``status`` as the intake's; ``decided_by`` the approver who rejected it; ``reason`` the failure
    that kept an approved request from being activated (its own error and cause).
    """
    refusal: dict[str, Any] = {
        "kind": "extension" if kind == "extension" else "grant",
        "grant_id": grant_id,
        "status": outcome.status,
        "decided_by": None,
        "reason": None,
    }
    if outcome.status == "REJECTED":
        refusal["decided_by"] = rejected_by(str((outcome.error or {}).get("Cause") or ""))
    elif outcome.status == "FAILED":
        name, cause = failure_of(outcome.error)
        refusal["reason"] = _reportable(name, cause)
    return refusal


def grant_refusal(task: IntakeEndTask) -> dict[str, Any] | None:
    """How a grant (or extension) request ended without access (``refusal_of``), None for any other
    request."""
    request, outcome = task.request, task.outcome
    if not request.grant_id or outcome.status == "SUCCEEDED":
        return None
    return refusal_of(request.kind, request.grant_id, outcome)


def _reportable(name: str, cause: str) -> dict[str, str]:
    """``{"Error", "Cause"}`` a Fail state accepts: no reserved name, bounded sizes."""
    if name.startswith(_RESERVED_PREFIX) or not name.strip():
        cause = f"{name}: {cause}" if cause else name
        name = _FALLBACK_ERROR
    return {"Error": name[:_MAX_ERROR_CHARS], "Cause": cause[:MAX_CAUSE_CHARS]}


def _block(text: str | None) -> ipaddress.IPv4Network | None:
    if not text:
        return None
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        return None


def end_intake(task: IntakeEndTask, *, allocations: ClientCidrReleaser) -> dict[str, Any]:
    """Release what the request held unless it now has an endpoint; the outcome to report.

    The answer replaces the workflow's ``outcome``: ``status``, the provisioning result on success,
    else ``error`` (``Error``, ``Cause``) that a Fail state, the ticket and the status API show as it is,
    and ``released_client_cidr_block`` (the block given back, or None).
    """
    outcome = task.outcome
    answer: dict[str, Any] = {"status": outcome.status}
    if outcome.grant is not None:
        answer["grant"] = outcome.grant
    refusal = grant_refusal(task)
    if refusal is not None:
        answer["refusal"] = refusal
    if outcome.status == "SUCCEEDED":
        answer["provisioning"] = outcome.provisioning
        answer["released_client_cidr_block"] = None
        return answer
    if refusal is not None:
        name, cause = refusal_statement(task.request.request_id, GrantRefusal.model_validate(refusal))
        if outcome.status == "FAILED":  # the failure keeps its own name, as an endpoint request's
            name = refusal["reason"]["Error"]
        answer["error"] = {"Error": name, "Cause": cause[:MAX_CAUSE_CHARS]}
    elif outcome.status in _UNAPPROVED:
        name, cause = _UNAPPROVED[outcome.status]
        answer["error"] = {"Error": name, "Cause": cause}
    else:
        answer["error"] = _reportable(*failure_of(outcome.error))
    block = _block(task.request.client_cidr_block)
    released = block is not None and allocations.release(block, request_id=task.request.request_id)
    if released:
        logger.info(
            "request %s ended %s: its client CIDR was released", task.request.request_id, outcome.status
        )
    answer["released_client_cidr_block"] = str(block) if released else None
    return answer
