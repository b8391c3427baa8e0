"""Comments on the ticket a grant was asked for in: when it is active, a day before its end, when it ended.

A grant that came from a ticket (``Grant.origin`` with a callback) gets three comments through the
source's callback (Jira or GitHub comment, or signed JSON):

- active: posted by the intake when the approval activated the grant (``callback.compose_message``).

Then ``GrantCommentFunction`` posts:

- ``reminder``: a one-time schedule in the grants' schedule group, named ``<grant id>-reminder``,
  fires a day before the end (moved when the grant is extended, removed when it ends; a grant that
  ends within a day of its start, or of its extension, gets none).
- ``ended``: it expired, or was revoked.

Each comment is written from the grant as stored when it is posted, so a comment never claims what is
no longer true (a reminder for a grant extended or ended since is skipped). A comment that fails
never changes the grant: the change is made first, the comment follows, and its failure is only
logged (and retried when the ticket system was unreachable).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, field_validator

from cvpn_shared.access.callback import CallbackTarget, CredentialReader, Poster, deliver
from cvpn_shared.access.grants.models import GRANT_ID, Grant

__all__ = [
    "REMINDER_BEFORE",
    "REMINDER_SUFFIX",
    "CommentMoment",
    "GrantCommentTask",
    "commented",
    "compose_grant_comment",
    "post_grant_comment",
    "reminder_at",
    "reminder_schedule_name",
    "was_active",
]

CommentMoment = Literal["reminder", "ended"]
REMINDER_BEFORE = timedelta(days=1)
REMINDER_SUFFIX = "-reminder"
# A reminder that fires late (Scheduler retried it) still says "about a day"; one that fires when the
# end is more than this away was left over from before an extension, and says nothing.
_REMINDER_SLACK = timedelta(hours=2)


class GrantCommentTask(BaseModel):
    """What the comment function is handed: the grant, which comment, and (from a schedule) when it
    was due; Scheduler's context attribute left unfilled counts as not given."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    grant_id: Annotated[str, StringConstraints(pattern=GRANT_ID.pattern)]
    moment: CommentMoment
    scheduled_time: AwareDatetime | None = None

    @field_validator("scheduled_time", mode="before")
    @classmethod
    def _unfilled(cls, value: object) -> object:
        return None if isinstance(value, str) and value.startswith("<aws.scheduler.") else value


def reminder_schedule_name(grant_id: str) -> str:
    return f"{grant_id}{REMINDER_SUFFIX}"


def reminder_at(grant: Grant, now: datetime) -> datetime | None:
    """When the day-before comment is due: a day before the end of an active grant from a ticket
    with a callback, None when it has no such comment or the end is within a day of ``now``."""
    if grant.state != "active" or grant.ends_at is None or not commented(grant):
        return None
    due = grant.ends_at - REMINDER_BEFORE
    return due if due > now else None


def commented(grant: Grant) -> bool:
    """Whether the grant came from a ticket that takes comments."""
    return grant.origin is not None and grant.origin.callback is not None


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def compose_grant_comment(grant: Grant, moment: CommentMoment, now: datetime) -> str | None:
    """The comment's text for ``grant`` as it is at ``now``; None when there is nothing true to say."""
    ticket = grant.origin.ticket if grant.origin else grant.request_id or grant.grant_id
    who = grant.person.vpn_user
    where = f"profile {grant.profile} (endpoint {grant.endpoint_id})"
    groups = ", ".join(grant.access_groups)
    if moment == "reminder":
        if not grant.is_active_at(now) or grant.ends_at is None:
            return None
        if grant.ends_at - now > REMINDER_BEFORE + _REMINDER_SLACK:
            return None  # extended since this reminder was set: the moved one will say it
        return (
            f"Access for {ticket} ends in about a day, at {_when(grant.ends_at)}: {who} on {where}, "
            f"access groups {groups}. "
            "Ask for an extension on your access page before then if it is still needed. "
            f"Grant {grant.grant_id}."
        )
    last = grant.history[-1]
    if grant.state == "expired":
        end = grant.ends_at or last.at
        return (
            f"Access for {ticket} ended at {_when(end)}: {who} no longer connects to {where}; "
            f"live sessions were cut. Grant {grant.grant_id}."
        )
    if grant.state == "revoked" and was_active(grant):
        # A request refused before it was active is answered by the intake ("rejected", "expired").
        return (
            f"Access for {ticket} was revoked at {_when(last.at)} by {last.by.name}: {who} no longer "
            f"connects to {where}; live sessions were cut. Grant {grant.grant_id}."
        )
    return None


def was_active(grant: Grant) -> bool:
    """Whether the grant was ever active (a refused request never was)."""
    return any(step.to_state == "active" for step in grant.history)


_STATUS = {"reminder": "ENDING"}


def _generic_body(grant: Grant, moment: CommentMoment, message: str) -> dict[str, Any]:
    assert grant.origin is not None
    return {
        "request_id": grant.origin.ticket,
        "source": grant.origin.source,
        "grant_id": grant.grant_id,
        "status": _STATUS.get(moment, grant.state.upper()),
        "ends_at": grant.ends_at.isoformat() if grant.ends_at else None,
        "message": message,
    }


def post_grant_comment(
    grant: Grant,
    moment: CommentMoment,
    *,
    now: datetime,
    secrets: CredentialReader,
    http: Poster,
    clock: Callable[[], float],
) -> dict[str, Any]:
    """Post the comment for ``moment`` on the grant's ticket; ``{"delivered": False, "reason"}`` when
    there is none to post. TicketUnreachable (retry) / TicketCallbackRejected (do not) otherwise."""
    if grant.origin is None or grant.origin.callback is None:
        return {"delivered": False, "reason": "the grant came from no ticket with a callback"}
    message = compose_grant_comment(grant, moment, now)
    if message is None:
        return {"delivered": False, "reason": f"no {moment} comment: the grant is {grant.state}"}
    callback = CallbackTarget.model_validate(grant.origin.callback.model_dump())
    return deliver(
        callback,
        message,
        _generic_body(grant, moment, message),
        secrets=secrets,
        http=http,
        clock=clock,
    )
