"""Approval of a request by a person: signed, single-use, expiring approve/reject links.

The intake workflow waits on a task token (``lambda:invoke.waitForTaskToken``). ``request_approval``
stores the token under a random approval id and sends the approvers two links::

    GET /approvals/{approval_id}?decision=approve|reject&expires=<unix>&signature=<hex>

``signature`` is HMAC-SHA256 (the approval link secret, current or previous) over the id, decision
and expiry, so a link cannot be altered (turning a reject into an approve) or prolonged. ``decide``
checks it in constant time, refuses an expired link, marks the request decided with a conditional
write (a second use finds it decided), then answers the waiting task: SendTaskSuccess on approve,
SendTaskFailure ``ApprovalRejected`` on reject.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import secrets as token_source
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cvpn_shared.access.dal.approvals import ApprovalAlreadyDecided, ApprovalNotFound
from cvpn_shared.access.dal.intake_workflow import TaskNoLongerWaiting
from cvpn_shared.access.signatures import SigningSecrets

__all__ = [
    "APPROVAL_REJECTED",
    "ApprovalTask",
    "DecisionPage",
    "approval_links",
    "decide",
    "link_signature",
    "request_approval",
]

APPROVAL_REJECTED = "ApprovalRejected"  # the error the waiting task fails with on reject
DECISIONS = {"approve": "APPROVED", "reject": "REJECTED"}
_APPROVAL_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_HEX = re.compile(r"[0-9a-fA-F]{64}")
_EXPIRES = re.compile(r"[0-9]{1,12}")
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_MAX_FIELD_CHARS = 300
_MAX_SUBJECT = 100  # SNS: a subject must be shorter than this


class ApprovalTask(BaseModel):
    """What the intake workflow hands the RequestApproval task."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task_token: str = Field(min_length=1, max_length=2048)
    execution_arn: str = Field(min_length=1)
    source: str = Field(min_length=1)
    request: dict[str, Any]

    @field_validator("request")
    @classmethod
    def _names_its_request(cls, request: dict[str, Any]) -> dict[str, Any]:
        request_id = request.get("request_id")
        if not isinstance(request_id, str) or not request_id.strip():
            raise ValueError("request.request_id: required, a non-empty string naming the request")
        return request


class ApprovalStore(Protocol):
    def create(self, record: dict[str, Any]) -> None: ...

    def decide(
        self, approval_id: str, *, status: str, decided_at: int, decided_via: str
    ) -> dict[str, Any]: ...


class Approvers(Protocol):
    def publish(self, subject: str, text: str, attributes: dict[str, str]) -> str: ...


class WaitingTasks(Protocol):
    def succeed(self, task_token: str, output: dict[str, Any]) -> None: ...

    def fail(self, task_token: str, error: str, cause: str) -> None: ...


def link_signature(secret: str, approval_id: str, decision: str, expires: int) -> str:
    """HMAC-SHA256 over ``approval_id``, ``decision`` and ``expires`` (one per line)."""
    message = f"{approval_id}\n{decision}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def approval_links(base_url: str, approval_id: str, expires: int, secret: str) -> dict[str, str]:
    """The approve and reject links of one approval request."""
    links = {}
    for decision in DECISIONS:
        query = urlencode(
            {
                "decision": decision,
                "expires": str(expires),
                "signature": link_signature(secret, approval_id, decision, expires),
            }
        )
        links[decision] = f"{base_url.rstrip('/')}/approvals/{quote(approval_id, safe='')}?{query}"
    return links


def _text(value: Any) -> str:
    """A value of the request as one line of the message, whatever its shape."""
    return _LINE_BREAKS.sub(" ", str(value))[:_MAX_FIELD_CHARS]


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else item


def _rule(rule: Any) -> str:
    if not isinstance(rule, Mapping):
        return _text(rule)
    who = "all users" if rule.get("authorize_all_groups") else _text(rule.get("access_group_id"))
    return f"{_text(rule.get('target_network_cidr'))} -> {who}"


def _summary(request: Mapping[str, Any], source: str) -> str:
    """What the approvers read about the request; any shape of request gives a summary (the intake
    hands over what it was started with)."""
    authentication = ", ".join(_text(_field(item, "type")) for item in _items(request.get("authentication")))
    rules = "; ".join(_rule(rule) for rule in _items(request.get("authorization_rules")))
    routes = ", ".join(_text(_field(route, "destination_cidr")) for route in _items(request.get("routes")))
    lines = [
        f"Request:        {_text(request.get('request_id'))} (from {_text(source)})",
        f"Requested by:   {_text(request.get('requester'))}",
        f"Endpoint name:  {_text(request.get('name'))}",
        f"Description:    {_text(request.get('description') or '-')}",
        f"VPC / subnets:  {_text(request.get('vpc_id'))} / "
        f"{', '.join(_text(s) for s in _items(request.get('subnet_ids')))}",
        f"Client CIDR:    {_text(request.get('client_cidr_block'))}",
        f"Authentication: {authentication}",
        f"Access:         {rules}",
        f"Routes:         {routes or 'none'}",
    ]
    return "\n".join(lines)


def _subject(request_id: str) -> str:
    """The message subject as SNS accepts it: printable ASCII, no line breaks, under 100 characters."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in request_id)
    subject = f"Approval needed: Client VPN for {cleaned}"
    return subject if len(subject) < _MAX_SUBJECT else subject[: _MAX_SUBJECT - 4] + "..."


def request_approval(
    task: ApprovalTask,
    *,
    records: ApprovalStore,
    approvers: Approvers,
    link_secret: SigningSecrets | None,
    base_url: str,
    ttl_seconds: int,
    now: int,
    new_id: Callable[[], str] = lambda: token_source.token_urlsafe(24),
) -> dict[str, Any]:
    """Store the task token under a new approval id and send the approvers the two links."""
    if link_secret is None:
        raise ValueError("the approval link secret is missing or has no 'current' value")
    if not base_url:
        raise ValueError("the intake API URL is not configured (INTAKE_API_URL)")
    approval_id = new_id()
    expires = now + ttl_seconds
    request_id = str(task.request["request_id"])
    # Everything the message needs is built before anything is stored: a request the summary could
    # not describe must not leave a pending approval nobody was told about.
    links = approval_links(base_url, approval_id, expires, link_secret.current)
    until = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        "A Client VPN endpoint was requested and needs your approval.\n\n"
        f"{_summary(task.request, task.source)}\n\n"
        f"Approve: {links['approve']}\n\nReject:  {links['reject']}\n\n"
        f"The links work once and expire {until}.\n"
    )
    records.create(
        {
            "approval_id": approval_id,
            "status": "PENDING",
            "task_token": task.task_token,
            "execution_arn": task.execution_arn,
            "request_id": request_id,
            "requester": str(task.request.get("requester", "")),
            "source": task.source,
            "created_at": now,
            "expires_at": expires,
            "ttl": expires + 30 * 86400,  # kept a month after expiry as the audit trail of the decision
        }
    )
    approvers.publish(
        _subject(request_id),
        text,
        {"request_id": request_id, "source": task.source, "kind": "approval-request"},
    )
    return {"approval_id": approval_id, "expires_at": expires}


@dataclass(frozen=True)
class DecisionPage:
    """The small HTML page a person sees after following a link."""

    status: int
    title: str
    message: str

    def html(self) -> str:
        title, message = html.escape(self.title), html.escape(self.message)
        return (
            "<!doctype html><html lang=en><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            f"<title>{title}</title>"
            "<body style='font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto'>"
            f"<h1>{title}</h1><p>{message}</p></body></html>"
        )


def _link_secret_matches(
    secrets: SigningSecrets, approval_id: str, decision: str, expires: int, given: str
) -> bool:
    matched = False
    for secret in (secrets.current, secrets.previous):
        if secret and hmac.compare_digest(
            link_signature(secret, approval_id, decision, expires), given.lower()
        ):
            matched = True
    return matched


def decide(
    approval_id: str,
    query: Mapping[str, str],
    *,
    records: ApprovalStore,
    tasks: WaitingTasks,
    link_secret: SigningSecrets | None,
    now: int,
    decided_via: str = "",
) -> DecisionPage:
    """Apply the decision a link carries, once; the page to show."""
    decision = query.get("decision", "")
    expires_text = query.get("expires", "")
    signature = query.get("signature", "")
    if not _APPROVAL_ID.fullmatch(approval_id):
        return DecisionPage(404, "Unknown approval", "approval_id: no approval request has this id.")
    if decision not in DECISIONS:
        return DecisionPage(400, "Bad link", "decision: must be approve or reject.")
    if not _EXPIRES.fullmatch(expires_text):
        return DecisionPage(400, "Bad link", "expires: must be Unix seconds.")
    if not _HEX.fullmatch(signature):
        return DecisionPage(400, "Bad link", "signature: must be 64 hex digits.")
    expires = int(expires_text)
    if link_secret is None:
        return DecisionPage(503, "Not available", "Approvals cannot be checked right now; try again later.")
    if not _link_secret_matches(link_secret, approval_id, decision, expires, signature):
        return DecisionPage(403, "Link not valid", "signature: this link was altered or not issued by us.")
    if now > expires:
        until = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return DecisionPage(410, "Link expired", f"expires: this link expired at {until}.")
    status = DECISIONS[decision]
    try:
        record = records.decide(approval_id, status=status, decided_at=now, decided_via=decided_via)
    except ApprovalNotFound:
        return DecisionPage(404, "Unknown approval", "approval_id: no approval request has this id.")
    except ApprovalAlreadyDecided as error:
        earlier = str(error.record.get("status", "decided")).lower()
        request_id = error.record.get("request_id", "")
        return DecisionPage(
            409, "Already decided", f"Request {request_id} was already {earlier}; links work once."
        )
    request_id = str(record.get("request_id", ""))
    token = str(record["task_token"])
    try:
        if status == "APPROVED":
            tasks.succeed(token, {"decision": "approved", "approval_id": approval_id, "decided_at": now})
        else:
            tasks.fail(
                token,
                APPROVAL_REJECTED,
                f"request {request_id} was rejected by an approver (approval {approval_id})",
            )
    except TaskNoLongerWaiting:
        return DecisionPage(
            410,
            "No longer waiting",
            f"Request {request_id} no longer waits for a decision (timed out or stopped).",
        )
    if status == "APPROVED":
        return DecisionPage(200, "Approved", f"Request {request_id} is approved: provisioning starts now.")
    return DecisionPage(200, "Rejected", f"Request {request_id} is rejected: nothing will be created.")
