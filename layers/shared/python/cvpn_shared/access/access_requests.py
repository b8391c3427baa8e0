"""Access requests on a grants profile: a person asks for a grant (or to extend one), an approver of
the profile decides, and the decision activates, extends or refuses the grant on the shared endpoint.

``start_access_request`` is where every source starts one (the request form, a ticket): it checks the
request against the profile (access groups, hours), counts it against the person's pending limit,
records a *pending* grant naming the request, and starts the intake workflow with approval required.
Nothing is provisioned. ``start_extension_request`` does the same for the owner of an active grant.

The intake waits on the approval page's decision, then runs ``decide_grant_request``: an approval
activates the grant (or extends it) with the approver's identity (issuer, sub, name); a rejection or
an approval that expired revokes the pending grant (or refuses the extension) with the reason.

``grant_request_status`` answers ``GET /requests/{id}`` for such a request in plain words (submitted,
waiting for approval by ..., approved by ... at ..., active until ...), never state names; a request
refused says what happened as its ticket's comment does (``error``: rejected by whom, expired with
nobody deciding, not activated and why).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from cvpn_shared.access.grants.logic import AccessGrants, GrantConflict, GrantNotFound, ask_extension
from cvpn_shared.access.grants.models import (
    Actor,
    Approver,
    Grant,
    GrantAsk,
    GrantInvalid,
    Person,
    Transition,
    parse_grant,
)
from cvpn_shared.access.identity import Person as SignedIn
from cvpn_shared.access.intake_end import IntakeOutcome, refusal_of
from cvpn_shared.access.ticket_notices import GrantRefusal, refusal_reason, refused_statement

__all__ = [
    "FORM_SOURCE",
    "AccessRequestAccepted",
    "AccessRequestServices",
    "GrantDecisionTask",
    "IntakeStart",
    "RequestOrigin",
    "decide_grant_request",
    "grant_phases",
    "grant_request_status",
    "start_access_request",
    "start_extension_request",
]

logger = logging.getLogger(__name__)

FORM_SOURCE = "request-form"
KIND_GRANT = "grant"
KIND_EXTENSION = "extension"


class IntakeStart(Protocol):
    """Starts the intake workflow with approval required: ``(source, request, callback)`` -> the
    execution's ARN."""

    def __call__(self, source: str, request: dict[str, Any], callback: dict[str, Any] | None) -> str: ...


class _Submissions(Protocol):
    def put(self, submission: dict[str, Any]) -> None: ...

    def get(self, request_id: str) -> dict[str, Any] | None: ...


class _PendingLimit(Protocol):
    def reserve(self, person: SignedIn, request_id: str, now: datetime) -> None: ...


@dataclass(frozen=True)
class RequestOrigin:
    """Where an access request comes from and how to talk about its requester.

    ``source`` is ``request-form`` or the ticket source's name; ``request_id`` names the request (the
    form's generated id, or the ticket key); ``requester_name``/``requester_email`` label the person
    for approvers (never used to match them); ``callback`` is the ticket's, for the intake to answer.
    """

    source: str
    request_id: str
    requester_name: str
    requester_email: str = ""
    callback: dict[str, Any] | None = None
    ticket_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # more fields to keep on the recorded request


@dataclass(frozen=True)
class AccessRequestServices:
    """What starting and deciding access requests works through (tests hand in other ones)."""

    grants: AccessGrants
    submissions: _Submissions
    start: IntakeStart
    pending: _PendingLimit | None = None
    approver_group: Callable[[str], str] = lambda profile: ""  # the group that decides a profile's requests
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass(frozen=True)
class AccessRequestAccepted:
    """A started access request: what POST /requests (or a ticket) answers."""

    request_id: str
    grant_id: str
    profile: str
    kind: str = KIND_GRANT

    @property
    def status_url(self) -> str:
        return f"/requests/{self.request_id}"

    def as_response(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "grant_id": self.grant_id,
            "status": "awaiting-approval",
            "status_url": self.status_url,
            "profile": self.profile,
            "kind": self.kind,
        }


def _actor(person: Person, name: str) -> Actor:
    return Actor(kind="oidc", id=person.key[:255], name=(name or person.sub)[:255])


def _signed_in(person: Person, origin: RequestOrigin) -> SignedIn:
    return SignedIn(
        issuer=person.issuer, subject=person.sub, name=origin.requester_name, email=origin.requester_email
    )


def _record(
    person: Person,
    origin: RequestOrigin,
    grant: Grant,
    *,
    kind: str,
    hours: float,
    reason: str,
    execution_arn: str,
    approver_group: str,
    now: datetime,
) -> dict[str, Any]:
    """The request as recorded for its status, the approval page and the pending limit."""
    return {
        **origin.extra,
        "request_id": origin.request_id,
        "requester": origin.requester_email or origin.requester_name,
        "requester_issuer": person.issuer,
        "requester_sub": person.sub,
        "requester_name": origin.requester_name,
        "requester_email": origin.requester_email,
        "source": origin.source,
        "ticket_key": origin.ticket_key,
        "kind": kind,
        "grant_id": grant.grant_id,
        "profile": grant.profile,
        "endpoint_id": grant.endpoint_id,
        "vpn_user": grant.person.vpn_user,
        "access_groups": list(grant.access_groups),
        "justification": reason,
        "duration_hours": hours,
        "approver_group": approver_group,
        "execution_arn": execution_arn,
        "status_url_path": f"/requests/{origin.request_id}",
        "submitted_at": now.astimezone(UTC).isoformat(),
    }


def _intake_request(
    person: Person, origin: RequestOrigin, grant: Grant, *, kind: str, hours: float, reason: str
) -> dict[str, Any]:
    """What the intake workflow carries: enough for the approvers' message and the grant decision."""
    return {
        "request_id": origin.request_id,
        "kind": kind,
        "grant_id": grant.grant_id,
        "requester": origin.requester_email or origin.requester_name,
        "requester_name": origin.requester_name,
        "person": {"issuer": person.issuer, "sub": person.sub},
        "vpn_user": grant.person.vpn_user,
        "profile": grant.profile,
        "endpoint_id": grant.endpoint_id,
        "access_groups": list(grant.access_groups),
        "hours": hours,
        "reason": reason,
    }


def start_access_request(
    ask: GrantAsk, origin: RequestOrigin, *, services: AccessRequestServices
) -> AccessRequestAccepted:
    """Ask for a grant on a grants profile's shared endpoint, through approval; nothing is provisioned.

    ``ask.person``: who the grant is for (issuer, sub and the VPN user name). Raises GrantInvalid
    naming each bad field (``profile``, ``access_groups[i]``, ``hours``, ``reason``) before anything
    is held, TooManyPending past the person's limit. A request whose workflow cannot start leaves its
    grant revoked, saying so.
    """
    person = ask.person
    by = _actor(person, origin.requester_name)
    grant = services.grants.new_request(ask, by=by, request_id=origin.request_id)
    if origin.ticket_key:
        grant = _from_ticket(grant, origin)
    if services.pending is not None:
        services.pending.reserve(_signed_in(person, origin), origin.request_id, services.clock())
    services.grants.store.write(None, grant)
    _start(person, origin, grant, kind=KIND_GRANT, hours=grant.hours, reason=grant.reason, services=services)
    return AccessRequestAccepted(origin.request_id, grant.grant_id, grant.profile, KIND_GRANT)


def _from_ticket(grant: Grant, origin: RequestOrigin) -> Grant:
    """The grant with the ticket it was asked for in, and where that ticket's comments go."""
    document = grant.model_dump(mode="json")
    document["origin"] = {"source": origin.source, "ticket": origin.ticket_key, "callback": origin.callback}
    return parse_grant(document)


def start_extension_request(
    person: Person,
    grant_id: str,
    hours: float,
    reason: str,
    origin: RequestOrigin,
    *,
    services: AccessRequestServices,
) -> AccessRequestAccepted:
    """The owner of an active grant asks to extend it, through the same approval as a grant.

    GrantNotFound when there is no such grant *of this person* (another's is not revealed);
    GrantConflict when it is not active or already waits for an extension; GrantInvalid naming
    ``hours`` or ``reason``; TooManyPending past the person's limit.
    """
    grant = services.grants.store.get(grant_id)
    if grant is None or grant.person.key != person.key:
        raise GrantNotFound(f"no grant {grant_id} of yours")
    by = _actor(grant.person, origin.requester_name)
    # Checked before anything is held: the same check runs again on the stored grant.
    ask_extension(
        grant,
        hours=hours,
        reason=reason,
        request_id=origin.request_id,
        profile=services.grants.profile(grant.profile),
        by=by,
        now=services.clock(),
    )
    if services.pending is not None:
        services.pending.reserve(_signed_in(person, origin), origin.request_id, services.clock())
    waiting = services.grants.ask_extension(
        grant_id, hours=hours, reason=reason, request_id=origin.request_id, by=by
    )
    assert waiting.pending_extension is not None
    _start(
        grant.person,
        origin,
        waiting,
        kind=KIND_EXTENSION,
        hours=waiting.pending_extension.hours,
        reason=reason,
        services=services,
    )
    return AccessRequestAccepted(origin.request_id, grant_id, grant.profile, KIND_EXTENSION)


_START_FAILED = "the approval workflow could not be started; ask again"


def _start(
    person: Person,
    origin: RequestOrigin,
    grant: Grant,
    *,
    kind: str,
    hours: float,
    reason: str,
    services: AccessRequestServices,
) -> None:
    approver_group = services.approver_group(grant.profile)
    try:
        execution_arn = services.start(
            origin.source,
            _intake_request(person, origin, grant, kind=kind, hours=hours, reason=reason),
            origin.callback,
        )
        services.submissions.put(
            _record(
                person,
                origin,
                grant,
                kind=kind,
                hours=hours,
                reason=reason,
                execution_arn=execution_arn,
                approver_group=approver_group,
                now=services.clock(),
            )
        )
    except BaseException:
        system = Actor(kind="system", id="access-request", name="access request")
        if kind == KIND_GRANT:
            services.grants.refuse_request(grant.grant_id, by=system, reason=_START_FAILED)
        else:
            services.grants.refuse_extension(
                grant.grant_id, request_id=origin.request_id, by=system, reason=_START_FAILED
            )
        raise


# --------------------------------------------------------------------------------- the decision
class _Decided(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    issuer: str = Field(min_length=1)
    sub: str = Field(min_length=1)
    name: str = Field(min_length=1)


class _Approval(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    approved_by: _Decided
    decided_at: int | None = None
    approval_id: str = ""


class _GrantRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: str = Field(min_length=1)
    grant_id: str = Field(min_length=1)
    kind: Literal["grant", "extension"] = "grant"


class GrantDecisionTask(BaseModel):
    """What the intake hands the grant decision: ``activate`` after an approval (with the approval
    task's output), ``refuse`` after a rejection, an expired approval or a failure (with the outcome)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action: Literal["activate", "refuse"]
    request: _GrantRequest
    approval: _Approval | None = None
    outcome: dict[str, Any] | None = None


def _refusal_reason(outcome: dict[str, Any] | None, kind: str = KIND_GRANT) -> str:
    """What the grant's history keeps of a request that got no access: the clause its ticket's
    comment and its status say (``ticket_notices.refusal_reason``), from the intake's outcome."""
    outcome = outcome or {}
    status = outcome.get("status")
    ended = IntakeOutcome(
        status=status if status in ("REJECTED", "EXPIRED") else "FAILED",
        error=outcome.get("error") if isinstance(outcome.get("error"), dict) else None,
    )
    refusal = GrantRefusal.model_validate(refusal_of(kind, "", ended))
    return refusal_reason(refusal)[:1000]


def decide_grant_request(task: GrantDecisionTask, *, grants: AccessGrants) -> dict[str, Any]:
    """Apply the intake's decision to the grant; what the workflow keeps as the grant's outcome.

    ``activate``: the pending grant becomes active (or the extension is applied) with the approver's
    identity; GrantInvalid or GrantConflict when it cannot (a self-approval, a grant revoked or ended
    meanwhile): the workflow then refuses it. ``refuse``: the pending grant is revoked (or the
    extension refused) with the reason; nothing when it was decided or ended already.
    """
    request = task.request
    if task.action == "activate":
        if task.approval is None:
            raise GrantInvalid.one("approval", "a grant is activated only after an approval")
        decided = task.approval.approved_by
        approver = Approver(issuer=decided.issuer, sub=decided.sub, name=decided.name)
        by = Actor(kind="oidc", id=approver.key[:255], name=approver.name)
        if request.kind == KIND_EXTENSION:
            grant = grants.approve_extension(
                request.grant_id, request_id=request.request_id, approver=approver, by=by
            )
        else:
            current = grants.get(request.grant_id)
            if current.request_id != request.request_id:
                raise GrantConflict(f"grant {request.grant_id} was not asked by request {request.request_id}")
            grant = grants.activate(request.grant_id, approver=approver, by=by)
        return _outcome(grant, request.kind, "extended" if request.kind == KIND_EXTENSION else "active")
    reason = _refusal_reason(task.outcome, request.kind)
    by = Actor(kind="system", id="approval", name="approval")
    if request.kind == KIND_EXTENSION:
        refused = grants.refuse_extension(
            request.grant_id, request_id=request.request_id, by=by, reason=reason
        )
    else:
        refused = grants.refuse_request(request.grant_id, by=by, reason=reason)
    after = refused or grants.store.get(request.grant_id)
    return {
        "grant_id": request.grant_id,
        "kind": request.kind,
        "refused": refused is not None,
        "reason": reason,
        "state": after.state if after else None,
    }


def _outcome(grant: Grant, kind: str, result: str) -> dict[str, Any]:
    return {
        "grant_id": grant.grant_id,
        "kind": kind,
        "result": result,
        "state": grant.state,
        "endpoint_id": grant.endpoint_id,
        "vpn_user": grant.person.vpn_user,
        "starts_at": grant.starts_at.isoformat() if grant.starts_at else None,
        "ends_at": grant.ends_at.isoformat() if grant.ends_at else None,
        "approved_by": grant.approved_by,
    }


# ----------------------------------------------------------------------------------- the status
def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _waiting_text(approver_group: str) -> str:
    if approver_group:
        return f"Waiting for approval by a member of {approver_group}"
    return "Waiting for approval"


def _phase(phase: str, text: str, at: datetime | None) -> dict[str, Any]:
    return {"phase": phase, "text": text, "at": _iso(at)}


def grant_phases(
    grant: Grant, *, approver_group: str = "", request_id: str | None = None
) -> list[dict[str, Any]]:
    """The grant's life in plain words, oldest first: each phase (submitted, waiting, approved,
    active, extension-waiting, extended, refused, expired, revoked) with its text and time.

    ``request_id`` of an extension request limits the phases to that extension's.
    """
    phases: list[dict[str, Any]] = []
    history: list[Transition] = list(grant.history)
    if request_id is not None and request_id != grant.request_id:
        history = [item for item in history if item.request_id == request_id]
    for item in history:
        who = item.by.name
        if item.action == "requested":
            phases.append(_phase("submitted", f"Submitted by {who}", item.at))
            phases.append(_phase("waiting", _waiting_text(approver_group), item.at))
        elif item.action == "break-glass":
            phases.append(_phase("approved", f"Granted at once (break-glass) by {who}", item.at))
            phases.append(_phase("active", f"Active until {_when(item.ends_at)}", item.at))
        elif item.action == "activated":
            phases.append(_phase("approved", f"Approved by {who} at {_when(item.at)}", item.at))
            phases.append(_phase("active", f"Active until {_when(item.ends_at)}", item.at))
        elif item.action == "extension-requested":
            hours = grant.pending_extension.hours if grant.pending_extension else None
            asked = f" ({hours:g} h)" if hours else ""
            phases.append(_phase("submitted", f"Extension asked by {who}{asked}", item.at))
            phases.append(_phase("extension-waiting", _waiting_text(approver_group), item.at))
        elif item.action == "extended":
            phases.append(
                _phase(
                    "extended",
                    f"Extended by {who} at {_when(item.at)}: active until {_when(item.ends_at)}",
                    item.at,
                )
            )
        elif item.action == "extension-refused":
            phases.append(
                _phase(
                    "refused",
                    f"Extension refused: {item.reason}; the grant still ends {_when(item.ends_at)}",
                    item.at,
                )
            )
        elif item.action == "expired":
            phases.append(_phase("expired", f"Ended at {_when(item.ends_at)}", item.at))
        elif item.action == "revoked":
            if item.from_state == "pending":
                phases.append(_phase("refused", f"Refused: {item.reason}", item.at))
            else:
                phases.append(_phase("revoked", f"Revoked by {who}: {item.reason}", item.at))
    return phases


def _request_state(grant: Grant, submission: dict[str, Any]) -> str:
    request_id = str(submission.get("request_id"))
    if submission.get("kind") == KIND_EXTENSION:
        if grant.pending_extension is not None and grant.pending_extension.request_id == request_id:
            return "awaiting-approval"
        mine = [item for item in grant.history if item.request_id == request_id]
        if any(item.action == "extended" for item in mine):
            return "extended"
        return "refused"
    if grant.state == "pending":
        return "awaiting-approval"
    if grant.state == "revoked" and grant.starts_at is None:
        return "refused"
    return grant.state


def grant_request_status(submission: dict[str, Any], grant: Grant | None) -> dict[str, Any]:
    """``GET /requests/{id}`` of a grant or extension request (the caller checked it is theirs)."""
    answer: dict[str, Any] = {
        "request_id": submission.get("request_id"),
        "kind": submission.get("kind", KIND_GRANT),
        "source": submission.get("source", FORM_SOURCE),
        "ticket_key": submission.get("ticket_key"),
        "profile": submission.get("profile"),
        "access_groups": submission.get("access_groups", []),
        "hours": submission.get("duration_hours"),
        "submitted_at": submission.get("submitted_at"),
        "grant_id": submission.get("grant_id"),
    }
    if grant is None:
        answer.update(status="unknown", phases=[])
        return answer
    approver_group = str(submission.get("approver_group") or "")
    request_id = str(submission.get("request_id"))
    status = _request_state(grant, submission)
    answer.update(
        status=status,
        state=grant.state,
        endpoint_id=grant.endpoint_id,
        starts_at=_iso(grant.starts_at),
        ends_at=_iso(grant.ends_at),
        approved_by=grant.approved_by or None,
        phases=grant_phases(
            grant,
            approver_group=approver_group,
            request_id=request_id if submission.get("kind") == KIND_EXTENSION else None,
        ),
    )
    refusal = _refusal(grant, submission) if status == "refused" else None
    if refusal is not None:
        name, cause = refused_statement(
            request_id,
            refusal.reason,
            kind=str(submission.get("kind") or KIND_GRANT),
            grant_id=grant.grant_id,
        )
        answer["error"] = {"error": name, "cause": cause}
    return answer


def _refusal(grant: Grant, submission: dict[str, Any]) -> Transition | None:
    """The change that refused the request: its pending grant revoked, or its extension refused."""
    request_id = str(submission.get("request_id"))
    for item in reversed(grant.history):
        if submission.get("kind") == KIND_EXTENSION:
            if item.action == "extension-refused" and item.request_id == request_id:
                return item
        elif item.action == "revoked" and item.from_state == "pending":
            return item
    return None
