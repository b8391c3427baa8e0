"""What a ticket that asked for access is told when it gets none, in words its reporter can act on.

Two moments, both posted through the source's callback:

- the ticket did not make a valid request (the webhook answered 422): which field is wrong and why,
  and that nothing was requested (``invalid_ticket_text``);
- the request ended without access (``refusal_text``): rejected by an approver (named), expired with
  nobody deciding, or approved but not activated (the reason).

Each ends with what to do next: a ticket starts once, so asking again is a new ticket, or the request
form when the stack has one. Texts are bounded: a ticket's comment is no place for a whole log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "MAX_LISTED_ERRORS",
    "GrantRefusal",
    "invalid_ticket_text",
    "refusal_text",
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


def refusal_text(request_id: str, refusal: GrantRefusal, *, form_url: str = "") -> str:
    """The comment on ticket ``request_id`` whose grant (or extension) request got no access."""
    grant = f" (grant {refusal.grant_id})" if refusal.grant_id else ""
    if refusal.kind == "extension":
        what, nothing = f"The extension asked in {request_id}{grant}", "the grant keeps the end it had"
    else:
        what, nothing = f"The access request {request_id}{grant}", "no access was granted"
    if refusal.status == "REJECTED":
        who = refusal.decided_by or "an approver"
        return (
            f"{what} was refused: {who} rejected it on the approval page; {nothing}. "
            f"Approvers give no reason here: ask {who} why if it is not clear. {_ask_again(form_url)}"
        )
    if refusal.status == "EXPIRED":
        return (
            f"{what} expired: no approver decided before the approval ran out; {nothing}. "
            f"{_ask_again(form_url)} Tell an approver, so it is decided in time."
        )
    reason = refusal.reason or {}
    why = _one_line(
        ": ".join(str(part) for part in (reason.get("Error"), reason.get("Cause")) if part) or "unknown",
        _MAX_REASON_CHARS,
    ).rstrip(".")
    return (
        f"{what} could not be activated: {why}. {nothing[0].upper()}{nothing[1:]}. "
        f"{_ask_again(form_url)} If it fails again, tell the VPN administrators, quoting this comment."
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
