"""The result of a request, posted back to its ticket (the source's configured callback).

Kinds: ``jira-comment`` (Jira Cloud REST v3 comment in Atlassian Document Format, Basic auth with the
credentials secret's ``email`` and ``api_token``), ``github-comment`` (issue comment, Bearer ``token``)
and ``generic`` (the result as JSON; signed ``X-Signature: t=..,v1=..`` when the credentials secret has
a ``current`` value, so the receiver verifies it as the intake verifies webhooks).

Errors are named for the state machine's Retry/Catch: ``TicketUnreachable`` (no answer, 429 or 5xx:
retried) and ``TicketCallbackRejected`` (another 4xx, or missing credentials: not retried).

The same path tells a ticket that made no valid access request why (``InvalidTicketNotice``), and one
whose valid request was not started why (``NotStartedNotice``: too many pending, a name conflict);
both are handed over by the webhook function, which holds no callback credentials.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from cvpn_shared.access.dal.ticket_poster import HttpAnswer
from cvpn_shared.access.intake_end import failure_of
from cvpn_shared.access.signatures import SignatureScheme, sign
from cvpn_shared.access.sources import CallbackKind
from cvpn_shared.access.ticket_notices import (
    GrantRefusal,
    invalid_ticket_text,
    not_started_text,
    refusal_text,
)

__all__ = [
    "INVALID_REQUEST_NOTICE",
    "NOT_STARTED_NOTICE",
    "CallbackTarget",
    "InvalidTicketNotice",
    "NotStartedNotice",
    "TicketCallbackRejected",
    "TicketCallbackTask",
    "TicketOutcome",
    "TicketUnreachable",
    "compose_message",
    "deliver",
    "parse_notice",
    "post_notice",
    "post_result",
]

USER_AGENT = "client-vpn-autopilot"
INVALID_REQUEST_NOTICE = "invalid-request"
NOT_STARTED_NOTICE = "not-started"


class TicketUnreachable(Exception):
    """The ticket system did not take the result (no answer, 429 or 5xx): retry later."""


class TicketCallbackRejected(Exception):
    """The ticket system refused the result (4xx) or credentials are missing: retrying will not help."""


class CallbackTarget(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: CallbackKind
    url: str
    credentials_secret_id: str | None = None


class TicketOutcome(BaseModel):
    """How the request ended: the provisioning execution's result, or the error."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["SUCCEEDED", "FAILED", "REJECTED", "EXPIRED"]
    provisioning: dict[str, Any] | None = None
    grant: dict[str, Any] | None = None  # an access request's: the grant as the approval left it
    refusal: GrantRefusal | None = None  # an access request's that got no access
    error: dict[str, Any] | None = None


class TicketCallbackTask(BaseModel):
    """What the intake workflow hands the PostResultToTicket task."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    callback: CallbackTarget
    source: str
    request_id: str
    execution_arn: str = ""
    outcome: TicketOutcome

    @property
    def status(self) -> str:
        return self.outcome.status


class _Notice(BaseModel):
    """What the webhook function hands this function about a signed ticket that started nothing."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    callback: CallbackTarget
    source: str = Field(min_length=1)
    request_id: str = Field(min_length=1)
    delivery_id: str = ""


class InvalidTicketNotice(_Notice):
    """The ticket made no valid request: each field and why."""

    notice: Literal["invalid-request"]
    errors: list[dict[str, Any]] = Field(min_length=1)


class NotStartedNotice(_Notice):
    """The ticket's valid request was not started: ``too-many-pending`` (429) with the reporter's
    ``pending`` requests and the ``limit``, or ``name-conflict`` (409) with the ticket whose workflow
    name it collides with."""

    notice: Literal["not-started"]
    reason: Literal["too-many-pending", "name-conflict"]
    pending: list[str] = Field(default_factory=list, max_length=100)
    limit: int | None = Field(default=None, ge=1)
    other_request_id: str = ""


class Poster(Protocol):
    def post(self, url: str, headers: dict[str, str], body: bytes) -> HttpAnswer: ...


class CredentialReader(Protocol):
    def get_json(self, secret_id: str, *, refresh: bool = False) -> dict[str, Any] | None: ...


def _result(task: TicketCallbackTask) -> dict[str, Any]:
    output = (task.outcome.provisioning or {}).get("output") or {}
    result = output.get("result") if isinstance(output, dict) else None
    return result if isinstance(result, dict) else {}


def _moment(value: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)[:40]
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _lasts_over_a_day(grant: dict[str, Any]) -> bool:
    try:
        starts = datetime.fromisoformat(str(grant.get("starts_at")))
        ends = datetime.fromisoformat(str(grant.get("ends_at")))
    except ValueError:
        return False
    return ends - starts > timedelta(days=1)


def _grant_message(request_id: str, grant: dict[str, Any]) -> str:
    """The access an approved request gave: who, where, until when, approved by whom."""
    what = "extended" if grant.get("kind") == "extension" else "active"
    # An active grant started at its approval: its reminder is set when it lasts over a day.
    reminder = (
        " A reminder follows a day before the end." if what == "active" and _lasts_over_a_day(grant) else ""
    )
    return (
        f"Access for {request_id} is {what}: {grant.get('vpn_user', '?')} may connect to endpoint "
        f"{grant.get('endpoint_id', '?')} until {_moment(grant.get('ends_at'))}, approved by "
        f"{grant.get('approved_by') or '?'}.{reminder} Grant {grant.get('grant_id', '?')}."
    )


def compose_message(task: TicketCallbackTask, *, form_url: str = "") -> str:
    """One paragraph a person reads in the ticket; ``form_url`` is where to ask again."""
    if task.status != "SUCCEEDED" and task.outcome.refusal is not None:
        return refusal_text(task.request_id, task.outcome.refusal, form_url=form_url)
    if task.status == "SUCCEEDED" and task.outcome.grant:
        return _grant_message(task.request_id, task.outcome.grant)
    if task.status == "SUCCEEDED":
        result = _result(task)
        parts = [f"Client VPN endpoint {result.get('endpoint_id', '?')} is ready for {task.request_id}."]
        if result.get("dns_name"):
            parts.append(f"DNS name: {result['dns_name']}.")
        associations = result.get("associations") or []
        if associations:
            parts.append(f"Associated with {len(associations)} subnet(s).")
        cost = (result.get("cost") or {}).get("hourly_usd")
        if cost is not None:
            parts.append(f"Estimated cost: {cost} USD per hour plus connections.")
        parts.append(
            "The client configuration is shared with the requester by the product, not in this ticket."
        )
        return " ".join(parts)
    if task.status == "REJECTED":
        return f"Request {task.request_id} was rejected by an approver; nothing was created."
    if task.status == "EXPIRED":
        return f"No approver decided on request {task.request_id} in time; nothing was created."
    name, cause = failure_of(task.outcome.error)
    return (
        f"Provisioning for {task.request_id} failed: {name}: {cause[:1000]}. "
        "Anything it had created was rolled back."
    )


def _generic_body(task: TicketCallbackTask, message: str) -> dict[str, Any]:
    result = _result(task)
    body: dict[str, Any] = {
        "request_id": task.request_id,
        "source": task.source,
        "status": task.status,
        "message": message,
        "execution_arn": task.execution_arn,
    }
    if task.status == "SUCCEEDED" and task.outcome.grant:
        grant = task.outcome.grant
        body.update(grant_id=grant.get("grant_id"), ends_at=grant.get("ends_at"), status="ACTIVE")
    elif task.status == "SUCCEEDED":
        body.update(endpoint_id=result.get("endpoint_id"), dns_name=result.get("dns_name"))
    elif task.status == "FAILED":
        name, cause = failure_of(task.outcome.error)
        body["error"] = {"error": name, "cause": cause[:4000]}
    if task.status != "SUCCEEDED" and task.outcome.refusal is not None:
        body["grant_id"] = task.outcome.refusal.grant_id
    return body


def _credentials(callback: CallbackTarget, secrets: CredentialReader, *keys: str) -> dict[str, Any]:
    secret_id = callback.credentials_secret_id
    value = secrets.get_json(secret_id) if secret_id else None
    if not value or any(not isinstance(value.get(key), str) or not value[key] for key in keys):
        raise TicketCallbackRejected(
            f"callback.credentials_secret_id: {secret_id or '(not set)'} must hold {', '.join(keys)} "
            f"for a {callback.kind.value} callback"
        )
    return value


def post_result(
    task: TicketCallbackTask,
    *,
    secrets: CredentialReader,
    http: Poster,
    clock: Callable[[], float],
    form_url: str = "",
) -> dict[str, Any]:
    """Post the result to the ticket; what was sent and the answer's status."""
    message = compose_message(task, form_url=form_url)
    return deliver(
        task.callback, message, _generic_body(task, message), secrets=secrets, http=http, clock=clock
    )


def parse_notice(event: dict[str, Any]) -> InvalidTicketNotice | NotStartedNotice | None:
    """The notice the webhook function handed over in ``event``; None for an intake's result."""
    if event.get("notice") == INVALID_REQUEST_NOTICE:
        return InvalidTicketNotice.model_validate(event)
    if event.get("notice") == NOT_STARTED_NOTICE:
        return NotStartedNotice.model_validate(event)
    return None


def post_notice(
    notice: InvalidTicketNotice | NotStartedNotice,
    *,
    secrets: CredentialReader,
    http: Poster,
    clock: Callable[[], float],
    form_url: str = "",
) -> dict[str, Any]:
    """Tell the ticket why it started nothing: which fields kept it from making a request and why, or
    why its request did not start and what its reporter can do."""
    body: dict[str, Any] = {"request_id": notice.request_id, "source": notice.source}
    if isinstance(notice, InvalidTicketNotice):
        message = invalid_ticket_text(notice.request_id, notice.errors, form_url=form_url)
        body.update(status="INVALID", message=message, errors=notice.errors)
    else:
        message = not_started_text(
            notice.request_id,
            notice.reason,
            pending=notice.pending,
            limit=notice.limit,
            other_request_id=notice.other_request_id,
            form_url=form_url,
        )
        body.update(status="NOT_STARTED", reason=notice.reason, message=message)
    return deliver(notice.callback, message, body, secrets=secrets, http=http, clock=clock)


def deliver(
    callback: CallbackTarget,
    message: str,
    generic_body: dict[str, Any],
    *,
    secrets: CredentialReader,
    http: Poster,
    clock: Callable[[], float],
) -> dict[str, Any]:
    """Post ``message`` to the ticket as the callback's kind says (``generic_body`` for a generic
    callback); what was sent and the answer's status. TicketUnreachable / TicketCallbackRejected."""
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
    kind = callback.kind
    if kind is CallbackKind.JIRA_COMMENT:
        credentials = _credentials(callback, secrets, "email", "api_token")
        basic = base64.b64encode(f"{credentials['email']}:{credentials['api_token']}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
        document = {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": message}]}],
        }
        body = json.dumps({"body": document}).encode()
    elif kind is CallbackKind.GITHUB_COMMENT:
        credentials = _credentials(callback, secrets, "token")
        headers.update(
            Authorization=f"Bearer {credentials['token']}",
            Accept="application/vnd.github+json",
        )
        headers["X-GitHub-Api-Version"] = "2022-11-28"
        body = json.dumps({"body": message}).encode()
    else:
        body = json.dumps(generic_body, sort_keys=True).encode()
        if callback.credentials_secret_id:
            credentials = _credentials(callback, secrets, "current")
            headers.update(
                sign(SignatureScheme.GENERIC, body, credentials["current"], timestamp=int(clock()))
            )
    answer = http.post(callback.url, headers, body)
    if 200 <= answer.status < 300:
        return {"delivered": True, "status_code": answer.status, "kind": kind.value, "message": message}
    if answer.status == 0 or answer.status == 429 or answer.status >= 500:
        reason = answer.error or f"HTTP {answer.status}: {answer.body[:300]}"
        raise TicketUnreachable(f"{kind.value} callback to {callback.url}: {reason}")
    raise TicketCallbackRejected(
        f"{kind.value} callback to {callback.url}: HTTP {answer.status}: {answer.body[:300]}"
    )
