"""What a ticket that asked for access is told when it gets none, in words its reporter can act on.

Three moments, all posted through the source's callback:

- the ticket did not make a valid request (the webhook answered 422): which field is wrong and why,
  and that nothing was requested (``invalid_ticket_text``);
- the ticket made a valid request the intake could not start (429 or 409: ``not_started_text``): the
  reporter has too many requests waiting (which ones, the limit), or the ticket's key collides with
  another ticket's workflow name;
- the request ended without access (``refusal_text``): rejected by an approver (named), expired with
  nobody deciding, or approved but not activated (the reason). Its first sentence
  (``refusal_statement``) is also the intake's Fail cause and the status API's ``error``, and its
  clause (``refusal_reason``) the reason the grant's history keeps, so every reader says the same.

Each ends with what to do next: a ticket starts once, so asking again is a new ticket, or the request
form when the stack has one. Texts are bounded: a ticket's comment is no place for a whole log.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "MAX_LISTED_ERRORS",
    "MAX_LISTED_PENDING",
    "GrantRefusal",
    "invalid_ticket_text",
    "not_started_text",
    "refusal_reason",
    "refusal_statement",
    "refusal_text",
    "refused_statement",
]

MAX_LISTED_ERRORS = 10
_MAX_MESSAGE_CHARS = 300
_MAX_REASON_CHARS = 1000


class GrantRefusal(BaseModel):
    """How a grant request ended without access (``intake_end.grant_refusal``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["grant", "extension"] = "grant"
    grant_id: str = ""
    status: Literal["REJECTED", "EXPIRED", "FAILED"]
    decided_by: str | None = None
    reason: dict[str, Any] | None = None  # a failure's {"Error", "Cause"}


def _one_line(text: Any, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _ask_again(form_url: str) -> str:
    where = f"file a new ticket, or use the request form at {form_url}" if form_url else "file a new ticket"
    return f"To ask again, {where}."


def _form(form_url: str) -> str:
    return f" You can also ask on the request form at {form_url}." if form_url else ""


_REJECTED_CLAUSE = " rejected it on the approval page"
_EXPIRED_CLAUSE = "no approver decided before the approval ran out"
_FAILED_CLAUSE = "it could not be activated: "
_ERROR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,255}$")


def _approver(refusal: GrantRefusal) -> str:
    return _one_line(refusal.decided_by or "", 256) or "an approver"


def refusal_reason(refusal: GrantRefusal) -> str:
    """Why the request got no access, as one clause: the grant's history keeps it, the status API
    shows it as the refused phase (``Refused: <clause>``) and ``refusal_statement`` is made of it."""
    if refusal.status == "REJECTED":
        return f"{_approver(refusal)}{_REJECTED_CLAUSE}"
    if refusal.status == "EXPIRED":
        return _EXPIRED_CLAUSE
    reason = refusal.reason or {}
    why = ": ".join(str(part) for part in (reason.get("Error"), reason.get("Cause")) if part) or "unknown"
    return _FAILED_CLAUSE + (
        _one_line(why, _MAX_REASON_CHARS - len(_FAILED_CLAUSE)).rstrip(". ") or "unknown"
    )


def _status_of(reason: str) -> Literal["REJECTED", "EXPIRED", "FAILED"] | None:
    """Which ``refusal_reason`` clause ``reason`` is; None for another refusal (an administrator
    withdrew the pending grant, its workflow never started)."""
    if reason.startswith(_FAILED_CLAUSE):  # first: a failure's cause may end like a rejection
        return "FAILED"
    if reason.endswith(_REJECTED_CLAUSE):
        return "REJECTED"
    if reason == _EXPIRED_CLAUSE:
        return "EXPIRED"
    return None


def refused_statement(
    request_id: str, reason: str, *, kind: str = "grant", grant_id: str = ""
) -> tuple[str, str]:
    """The error name and the sentence saying what happened to request ``request_id`` refused for
    ``reason`` (a ``refusal_reason`` clause, or any other refusal's reason): the intake's Fail state,
    the status API's ``error`` and the first sentence of the ticket's comment.

    Names: ``ApprovalRejected``, ``ApprovalExpired``, the failure's own name when it was not
    activated, ``GrantRefused`` for any other refusal.
    """
    grant = f" (grant {grant_id})" if grant_id else ""
    if kind == "extension":
        what, nothing = f"The extension asked in {request_id}{grant}", "the grant keeps the end it had"
    else:
        what, nothing = f"The access request {request_id}{grant}", "no access was granted"
    status = _status_of(reason)
    if status == "REJECTED":
        return "ApprovalRejected", f"{what} was refused: {reason}; {nothing}."
    if status == "EXPIRED":
        return "ApprovalExpired", f"{what} expired: {reason}; {nothing}."
    if status == "FAILED":
        why = reason[len(_FAILED_CLAUSE) :]
        name = why.split(":", 1)[0].strip()
        return (
            name if _ERROR_NAME.fullmatch(name) else "ActivationFailed",
            f"{what} could not be activated: {why}. {nothing[0].upper()}{nothing[1:]}.",
        )
    return (
        "GrantRefused",
        f"{what} was refused: {_one_line(reason, _MAX_REASON_CHARS) or 'no reason given'}; {nothing}.",
    )


def refusal_statement(request_id: str, refusal: GrantRefusal) -> tuple[str, str]:
    """``refused_statement`` of ``refusal``: what ticket ``request_id``'s request ended with."""
    return refused_statement(
        request_id, refusal_reason(refusal), kind=refusal.kind, grant_id=refusal.grant_id
    )


def refusal_text(request_id: str, refusal: GrantRefusal, *, form_url: str = "") -> str:
    """The comment on ticket ``request_id`` whose grant (or extension) request got no access: what
    happened (``refusal_statement``), then what to do next."""
    _, said = refusal_statement(request_id, refusal)
    if refusal.status == "REJECTED":
        who = _approver(refusal)
        return (
            f"{said} Approvers give no reason here: ask {who} why if it is not clear. {_ask_again(form_url)}"
        )
    if refusal.status == "EXPIRED":
        return f"{said} {_ask_again(form_url)} Tell an approver, so it is decided in time."
    return (
        f"{said} {_ask_again(form_url)} If it fails again, tell the VPN administrators, quoting this comment."
    )


def _error_line(error: dict[str, Any]) -> str:
    field = _one_line(error.get("field") or "request", 120)
    origin = error.get("mapped_from")
    where = f" (ticket field {_one_line(origin, 120)})" if origin and origin != "defaults" else ""
    return f"{field}{where}: {_one_line(error.get('message') or 'invalid', _MAX_MESSAGE_CHARS)}"


def invalid_ticket_text(request_id: str, errors: Sequence[dict[str, Any]], *, form_url: str = "") -> str:
    """The comment on ticket ``request_id`` that made no valid access request: each field and why."""
    listed = [_error_line(error) for error in errors[:MAX_LISTED_ERRORS]]
    more = len(errors) - len(listed)
    if more > 0:
        listed.append(f"and {more} more")
    problems = "; ".join(listed)
    return (
        f"Ticket {request_id} did not make a valid access request, so nothing was requested: "
        f"{problems}. Correct the ticket and send it again, or file a new ticket.{_form(form_url)}"
    )


MAX_LISTED_PENDING = 10


def _or_form(form_url: str) -> str:
    return f", or use the request form at {form_url}" if form_url else ""


def not_started_text(
    request_id: str,
    reason: Literal["too-many-pending", "name-conflict"],
    *,
    pending: Sequence[str] = (),
    limit: int | None = None,
    other_request_id: str = "",
    form_url: str = "",
) -> str:
    """The comment on ticket ``request_id`` whose valid request the intake did not start.

    ``too-many-pending`` (429): its reporter has ``pending`` requests waiting, ``limit`` at most (none
    named: too many arrived at the same moment); a ticket system that sends a 429 again (Jira Cloud
    does, for a while) starts the request once a place is free. ``name-conflict`` (409): the ticket's
    key gives the workflow name ``other_request_id`` already has; sending it again changes nothing.
    """
    if reason == "name-conflict":
        other = f"ticket {_one_line(other_request_id, 128)}'s" if other_request_id else "another ticket's"
        return (
            f"Ticket {request_id} did not start an access request, so nothing was requested: its key "
            f"gives the same workflow name as {other}, which started before (keys that differ only in "
            "characters other than letters, digits, - and _ collide). "
            f"File a new ticket{_or_form(form_url)}; tell the VPN administrators if it happens again."
        )
    if not pending:
        return (
            f"Ticket {request_id} did not start an access request yet: too many requests of its reporter "
            "arrived at the same moment. The ticket system may send it again and start it then; if this "
            f"ticket hears nothing more within an hour, file a new ticket{_or_form(form_url)}."
        )
    listed = [_one_line(item, 128) for item in pending[:MAX_LISTED_PENDING]]
    if len(pending) > len(listed):
        listed.append(f"and {len(pending) - len(listed)} more")
    most = f", and the limit is {limit} per person" if limit else ", the most allowed per person"
    return (
        f"Ticket {request_id} did not start an access request yet: its reporter already has "
        f"{len(pending)} access request(s) waiting for a decision ({', '.join(listed)}){most}. "
        "Each of those gets its answer when it is decided (a ticket's, as a comment on it). The ticket "
        "system may send this ticket again for a while: if a place is free by then, the request starts "
        "and this ticket is told how it ends. Otherwise, once one of them is decided, file a new "
        f"ticket{_or_form(form_url)}."
    )
