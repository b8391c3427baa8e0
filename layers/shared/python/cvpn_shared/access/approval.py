"""Approval of a request by a person: signed, single-use, expiring links to a confirmation page.

The intake workflow waits on a task token (``lambda:invoke.waitForTaskToken``). ``request_approval``
stores the token under a random approval id and sends the approvers two links::

    GET /approvals/{approval_id}?decision=approve|reject&expires=<unix>&signature=<hex>

``signature`` is HMAC-SHA256 (the approval link secret, current or previous) over the id, decision
and expiry, so a link cannot be altered (turning a reject into an approve) or prolonged.

Following a link decides nothing: mail scanners, link previews and browsers' prefetch all GET links.
``approval_page`` checks the link and shows the request with a confirm button. Only the POST of that
page (``decide``) decides, and only for a person signed in with the form's OpenID Connect issuer (the
API's JWT authorizer validated the token) who carries the approver group in the claim the profile
names, and who is not the requester (issuer + ``sub``). ``decide`` checks the link in constant time,
refuses an expired one, marks the request decided with a conditional write recording who decided (a
second use finds it decided), then answers the waiting task: SendTaskSuccess on approve (its output
names the approver), SendTaskFailure ``ApprovalRejected`` on reject.
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
from cvpn_shared.access.identity import Person, PersonUnknown, claim_values, person_from_claims
from cvpn_shared.access.profiles import NetworkProfile, ProfileInvalid
from cvpn_shared.access.signatures import SigningSecrets

__all__ = [
    "APPROVAL_REJECTED",
    "ApprovalContext",
    "ApprovalTask",
    "ApproverRule",
    "DecisionPage",
    "RecordedRequests",
    "approval_links",
    "approval_page",
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

    def get(self, approval_id: str) -> dict[str, Any] | None: ...

    def decide(
        self, approval_id: str, *, status: str, decided_at: int, decided_via: str, approver: Person
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


def _grant_summary(request: Mapping[str, Any], source: str) -> str:
    """What the approvers read about an access request on a grants profile (a grant or an extension)."""
    given = request.get("person")
    person: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    groups = ", ".join(_text(group) for group in _items(request.get("access_groups")))
    what = "extend access grant" if request.get("kind") == "extension" else "access grant"
    lines = [
        f"Request:        {_text(request.get('request_id'))} (from {_text(source)})",
        f"Asks for:       {what} {_text(request.get('grant_id'))}",
        f"Requested by:   {_text(request.get('requester_name') or request.get('requester'))}",
        f"Identity:       {_text(person.get('sub'))} at {_text(person.get('issuer'))}",
        f"VPN user name:  {_text(request.get('vpn_user'))}",
        f"Profile:        {_text(request.get('profile'))} (endpoint {_text(request.get('endpoint_id'))})",
        f"Access groups:  {groups or '-'}",
        f"Duration:       {_text(request.get('hours'))} hours from the approval",
        f"Reason:         {_text(request.get('reason') or '-')}",
    ]
    return "\n".join(lines)


def _summary(request: Mapping[str, Any], source: str) -> str:
    """What the approvers read about the request; any shape of request gives a summary (the intake
    hands over what it was started with)."""
    if request.get("grant_id"):
        return _grant_summary(request, source)
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
    asked = (
        "Access to a shared Client VPN endpoint was requested"
        if task.request.get("grant_id")
        else "A Client VPN endpoint was requested"
    )
    text = (
        f"{asked} and needs your approval.\n\n"
        f"{_summary(task.request, task.source)}\n\n"
        f"Approve: {links['approve']}\n\nReject:  {links['reject']}\n\n"
        f"Each link opens a page where you sign in and confirm; the decision works once and the "
        f"links expire {until}.\n"
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
class ApproverRule:
    """Who may decide a request: tokens whose ``claim`` includes ``group``; nobody when no group is set."""

    claim: str
    group: str | None
    configured_in: str  # where an administrator sets it, for the message when nobody may decide


class ApprovalContext(Protocol):
    """What a decision needs besides the link: the request as recorded, and who may decide it."""

    def request(self, request_id: str) -> dict[str, Any] | None:
        """The recorded request (the form's or a ticket's submission), None when not recorded."""
        ...

    def approver_rule(self, profile: str | None) -> ApproverRule:
        """The approver group of ``profile`` (or the stack's, for a request without a profile)."""
        ...


@dataclass(frozen=True)
class DecisionPage:
    """The small HTML page a person sees after following a link, or the answer to a decision."""

    status: int
    title: str
    message: str
    details: tuple[tuple[str, str], ...] = ()
    form: dict[str, str] | None = None  # the signed link's fields, when the page offers to decide

    def html(self, nonce: str = "", script: str = "") -> str:
        title, message = html.escape(self.title), html.escape(self.message)
        rows = "".join(
            f"<tr><th scope=row>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
            for name, value in self.details
        )
        table = f"<table>{rows}</table>" if rows else ""
        form = ""
        if self.form is not None:
            fields = "".join(
                f"<input type=hidden name={name} value='{html.escape(value, quote=True)}'>"
                for name, value in self.form.items()
            )
            verb = "Approve" if self.form.get("decision") == "approve" else "Reject"
            form = (
                "<form id=decision-form method=post>"
                f"{fields}<p id=who></p>"
                f"<button id=confirm type=submit>Sign in and {verb.lower()}</button></form>"
                "<p id=outcome role=status aria-live=polite></p>"
                f"<noscript>{verb} needs JavaScript: the page signs you in first.</noscript>"
            )
        scripted = f"<script nonce='{html.escape(nonce, quote=True)}'>{script}</script>" if form else ""
        return (
            "<!doctype html><html lang=en><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            f"<title>{title}</title>"
            "<body style='font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto'>"
            f"<h1>{title}</h1><p id=message>{message}</p>{table}{form}{scripted}</body></html>"
        )

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "title": self.title, "message": self.message}


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


def _when(seconds: Any) -> str:
    try:
        return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(seconds)


def _check_link(
    approval_id: str, query: Mapping[str, str], link_secret: SigningSecrets | None, now: int
) -> DecisionPage | None:
    """A page explaining why the link is not usable, None when it is (signed by us, not expired)."""
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
        return DecisionPage(410, "Link expired", f"expires: this link expired at {_when(expires)}.")
    return None


def _already_decided(record: Mapping[str, Any]) -> DecisionPage:
    earlier = str(record.get("status", "decided")).lower()
    by = f" by {record['approver_name']}" if record.get("approver_name") else ""
    return DecisionPage(
        409,
        "Already decided",
        f"Request {record.get('request_id', '')} was already {earlier}{by}; links work once.",
    )


def _request_details(record: Mapping[str, Any], request: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """What the approver reads before deciding: who asked (their stable identity), for what, why."""
    request = request or {}
    who = _text(request.get("requester_name") or request.get("requester") or record.get("requester") or "-")
    email = request.get("requester_email")
    rows = [
        ("Request", _text(record.get("request_id", ""))),
        ("Requested by", f"{who} <{_text(email)}>" if email and email != who else who),
    ]
    if request.get("requester_sub"):
        rows.append(
            ("Identity", f"{_text(request.get('requester_sub'))} at {_text(request.get('requester_issuer'))}")
        )
    else:
        rows.append(("Identity", f"as named by {_text(request.get('source') or record.get('source'))}"))
    rows.append(("Profile", _text(request.get("profile") or "-")))
    groups = request.get("access_groups") or []
    rows.append(("Access groups", ", ".join(_text(group) for group in _items(groups)) or "-"))
    rows.append(("Reason", _text(request.get("justification") or request.get("reason") or "-")))
    if request.get("duration_hours"):
        rows.append(("Duration", f"{_text(request.get('duration_hours'))} hours"))
    rows.append(("Link expires", _when(record.get("expires_at"))))
    return rows


def approval_page(
    approval_id: str,
    query: Mapping[str, str],
    *,
    records: ApprovalStore,
    context: ApprovalContext,
    link_secret: SigningSecrets | None,
    now: int,
) -> DecisionPage:
    """What following a link shows: the request and a confirm button. It decides nothing and does not
    use the link up, so a mail scanner or a link preview that fetches it changes nothing."""
    problem = _check_link(approval_id, query, link_secret, now)
    if problem is not None:
        return problem
    record = records.get(approval_id)
    if record is None:
        return DecisionPage(404, "Unknown approval", "approval_id: no approval request has this id.")
    if record.get("status") != "PENDING":
        return _already_decided(record)
    decision = query["decision"]
    request = context.request(str(record.get("request_id", "")))
    verb = "approve" if decision == "approve" else "reject"
    return DecisionPage(
        200,
        f"{verb.capitalize()} request {record.get('request_id', '')}?",
        f"Nothing is decided yet. Sign in and confirm to {verb} this request; "
        "only a member of the profile's approver group who did not ask for it can.",
        details=tuple(_request_details(record, request)),
        form={"decision": decision, "expires": query["expires"], "signature": query["signature"]},
    )


def _may_decide(
    approver: Person,
    claims: Mapping[str, Any],
    record: Mapping[str, Any],
    request: Mapping[str, Any] | None,
    rule: ApproverRule,
) -> DecisionPage | None:
    """A 403 page when ``approver`` may not decide this request, None when they may."""
    request = request or {}
    if approver.same_as(request.get("requester_issuer"), request.get("requester_sub")):
        return DecisionPage(
            403,
            "Not your decision",
            "You asked for this request: someone else in the approver group must decide it.",
        )
    if not request.get("requester_sub"):
        # A ticket names its requester by e-mail or user name only: refusing on a match is the safe side.
        named = str(request.get("requester") or record.get("requester") or "").strip().lower()
        mine = {approver.email.lower(), approver.name.lower(), approver.subject.lower()} - {""}
        if named and named in mine:
            return DecisionPage(
                403,
                "Not your decision",
                "The ticket names you as the requester: someone else in the approver group must decide it.",
            )
    if not rule.group:
        return DecisionPage(
            403,
            "No approvers configured",
            f"approver_group: nobody may decide this request until an administrator sets it "
            f"({rule.configured_in}).",
        )
    values = claim_values(claims, rule.claim)
    if values is None:
        return DecisionPage(
            403,
            "Not an approver",
            f"{rule.claim}: your sign-in token carries no {rule.claim!r} claim, so it cannot show you "
            f"belong to the approver group {rule.group!r}.",
        )
    if rule.group not in values:
        return DecisionPage(
            403,
            "Not an approver",
            f"{rule.claim}: you are not in the approver group {rule.group!r} of this request's profile.",
        )
    return None


def decide(
    approval_id: str,
    query: Mapping[str, str],
    *,
    records: ApprovalStore,
    tasks: WaitingTasks,
    context: ApprovalContext,
    link_secret: SigningSecrets | None,
    claims: Mapping[str, Any] | None,
    now: int,
    decided_via: str = "",
) -> DecisionPage:
    """Apply the decision a confirmed link carries, once, for a signed-in approver; the page to show.

    ``claims`` are those of the token the API's JWT authorizer validated (None: nobody signed in).
    """
    problem = _check_link(approval_id, query, link_secret, now)
    if problem is not None:
        return problem
    if not claims:
        return DecisionPage(401, "Sign in", "Sign in with your organisation's account to decide.")
    try:
        approver = person_from_claims(claims)
    except PersonUnknown as error:
        return DecisionPage(403, "Not an approver", str(error))
    record = records.get(approval_id)
    if record is None:
        return DecisionPage(404, "Unknown approval", "approval_id: no approval request has this id.")
    if record.get("status") != "PENDING":
        return _already_decided(record)
    request_id = str(record.get("request_id", ""))
    request = context.request(request_id)
    profile = (request or {}).get("profile")
    refusal = _may_decide(
        approver, claims, record, request, context.approver_rule(str(profile) if profile else None)
    )
    if refusal is not None:
        return refusal
    status = DECISIONS[query["decision"]]
    try:
        record = records.decide(
            approval_id, status=status, decided_at=now, decided_via=decided_via, approver=approver
        )
    except ApprovalNotFound:
        return DecisionPage(404, "Unknown approval", "approval_id: no approval request has this id.")
    except ApprovalAlreadyDecided as error:
        return _already_decided(error.record)
    token = str(record["task_token"])
    decided_by = {"issuer": approver.issuer, "sub": approver.subject, "name": approver.name}
    try:
        if status == "APPROVED":
            tasks.succeed(
                token,
                {
                    "decision": "approved",
                    "approval_id": approval_id,
                    "decided_at": now,
                    "approved_by": decided_by,
                },
            )
        else:
            tasks.fail(
                token,
                APPROVAL_REJECTED,
                f"request {request_id} was rejected by {_text(approver.name)} (approval {approval_id})",
            )
    except TaskNoLongerWaiting:
        return DecisionPage(
            410,
            "No longer waiting",
            f"Request {request_id} no longer waits for a decision (timed out or stopped).",
        )
    grant = bool((request or {}).get("grant_id"))
    if status == "APPROVED":
        starts = "access starts now" if grant else "provisioning starts now"
        return DecisionPage(
            200, "Approved", f"Request {request_id} is approved by {approver.name}: {starts}."
        )
    ends = "no access is granted" if grant else "nothing will be created"
    return DecisionPage(200, "Rejected", f"Request {request_id} is rejected by {approver.name}: {ends}.")


class _Submissions(Protocol):
    def get(self, request_id: str) -> dict[str, Any] | None: ...


class _Profiles(Protocol):
    def get_profile(self, name: str) -> NetworkProfile | None: ...


@dataclass(frozen=True)
class RecordedRequests:
    """The approval context from the recorded submissions and the network profiles.

    A profile's ``approver_group`` (in its ``approver_group_claim``) decides who approves its requests;
    a request without a profile (a ticket's), or a profile without an approver group, falls back on the
    stack's (``ApproverGroup``, ``ApproverGroupClaim``). With neither, nobody may decide.
    """

    submissions: _Submissions
    profiles: _Profiles
    default_claim: str
    default_group: str | None

    def request(self, request_id: str) -> dict[str, Any] | None:
        return self.submissions.get(request_id) if request_id else None

    def approver_rule(self, profile: str | None) -> ApproverRule:
        stack_rule = ApproverRule(
            self.default_claim,
            self.default_group or None,
            "the stack's ApproverGroup parameter"
            + (f" or the approver_group of profile {profile!r}" if profile else ""),
        )
        if not profile:
            return stack_rule
        try:
            found = self.profiles.get_profile(profile)
        except ProfileInvalid:
            # An invalid profile names no approvers anyone can trust: nobody decides until it is fixed.
            return ApproverRule(self.default_claim, None, f"profile {profile!r} is invalid; fix it")
        if found is None or not found.approver_group:
            return stack_rule
        return ApproverRule(found.approver_group_claim, found.approver_group, f"profile {profile!r}")
