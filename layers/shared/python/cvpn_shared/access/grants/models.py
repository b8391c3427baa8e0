"""What a grant is: a person's time-bound access to the shared endpoint of a network profile.

A grant names the person by their stable identity (the OpenID Connect issuer and ``sub``) and by the
user name the VPN sees (the Active Directory or SAML user name, or a client certificate's common
name), the profile and its endpoint, the access groups, from when until when, why, who approved it
(or that it was a break-glass grant, and who gave it), its state and every transition of it.

States: ``pending`` (asked, not approved), ``active`` (approved, until ``ends_at``), ``expired`` (its
end came) and ``revoked`` (ended early, or refused while pending). Expired and revoked are final.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from cvpn_shared.core.field_errors import describe_field_errors, field_errors

__all__ = [
    "ENDPOINT_ID",
    "FINAL_STATES",
    "GRANT_ID",
    "Actor",
    "Approver",
    "ExtensionRequest",
    "Grant",
    "GrantAsk",
    "GrantInvalid",
    "GrantOrigin",
    "GrantState",
    "Person",
    "TicketCallback",
    "Transition",
    "parse_grant",
]

GRANT_ID = re.compile(r"^g-[0-9a-f]{32}$")
ENDPOINT_ID = re.compile(r"^cvpn-endpoint-[0-9a-f]{8,17}$")
GrantState = Literal["pending", "active", "expired", "revoked"]
FINAL_STATES: frozenset[str] = frozenset({"expired", "revoked"})
Action = Literal[
    "requested",
    "break-glass",
    "activated",
    "extension-requested",
    "extension-refused",
    "extended",
    "expired",
    "revoked",
]

# No control characters in anything printed in a listing or a log line.
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Text = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=_PRINTABLE)]
# An issuer is an https URL on AWS (API Gateway's JWT authorizer trusts https issuers only); an http
# one is a sign-in issuer without TLS on a development machine. Either way the authorizer validated it.
Issuer = Annotated[
    str, StringConstraints(min_length=1, max_length=512, pattern=r"^https?://[^\s#?\x00-\x1f\x7f]+$")
]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=_PRINTABLE)]
# What Client VPN passes as the user name: an Active Directory sAMAccountName or UPN, a SAML NameID, or
# a certificate's common name (at most 64 characters in X.509, SAML names are longer).
VpnUserName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\s\x00-\x1f\x7f]+$")
]
Reason = Annotated[
    str, StringConstraints(min_length=1, max_length=1000, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]+$")
]


RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]


class GrantInvalid(Exception):
    """A grant, or something asked of one, is not valid: ``errors`` name each field and why."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__(describe_field_errors(errors))

    @classmethod
    def one(cls, field: str, message: str) -> GrantInvalid:
        return cls([{"field": field, "message": message}])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _Identity(_Model):
    """A person at an OpenID Connect issuer: never an e-mail claim, which may be unverified or change."""

    issuer: Issuer
    sub: Subject

    @property
    def key(self) -> str:
        """``<issuer>#<sub>``: an issuer has no fragment, so the first ``#`` separates the two."""
        return f"{self.issuer}#{self.sub}"


class Person(_Identity):
    """Whom a grant is for: the stable identity and the user name the VPN endpoint sees."""

    vpn_user: VpnUserName = Field(description="AD/SAML user name, or the client certificate's common name")

    @property
    def vpn_user_key(self) -> str:
        """The user name as the connect-time item keys it: Client VPN user names compare without case
        (Active Directory's do), so one spelling per person."""
        return self.vpn_user.lower()


@dataclass(frozen=True, kw_only=True)
class GrantAsk:
    """What a grant is asked for, however it is asked (the request form, a ticket, the command line):
    ``person`` on the shared endpoint of the network profile named ``profile``, the ``access_groups``
    (all the profile offers when empty) for ``hours`` (the profile's default when None), for
    ``reason``. Checked against the profile when a grant is made of it."""

    person: Person
    profile: str
    access_groups: Sequence[str] = ()
    hours: float | None = None
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "access_groups", tuple(self.access_groups))  # frozen all the way


class Approver(_Identity):
    """Who approved a grant, as they signed in to the approval page."""

    name: Text


class Actor(_Model):
    """Who did something to a grant: a person signed in (``oidc``: ``id`` is issuer#sub), an AWS
    principal (``aws``: ``id`` is the caller's ARN, e.g. an administrator's CLI), or the product
    itself (``system``: the expiry schedule)."""

    kind: Literal["oidc", "aws", "system"]
    id: Text
    name: Text


class Transition(_Model):
    """One change of a grant: what happened, from which state to which, who did it, when and why."""

    action: Action
    from_state: GrantState | None
    to_state: GrantState
    at: AwareDatetime
    by: Actor
    reason: Annotated[str, StringConstraints(max_length=1000)] = ""
    ends_at: AwareDatetime | None = None
    request_id: RequestId | None = Field(
        default=None, description="the access request (grant or extension) this change answers"
    )


class ExtensionRequest(_Model):
    """An active grant's owner asked for it to last longer; it waits for the same approval as a grant.
    Approved, the grant ends ``hours`` after the approval; refused, the grant keeps its end."""

    hours: Annotated[float, Field(gt=0)]
    reason: Reason
    requested_at: AwareDatetime
    request_id: RequestId


class TicketCallback(_Model):
    """Where comments on the ticket go: how (``jira-comment``, ``github-comment`` or ``generic`` JSON),
    the URL the source's ``url_template`` gave for this ticket, and the credentials' secret."""

    kind: Literal["jira-comment", "github-comment", "generic"]
    url: Annotated[str, StringConstraints(min_length=8, max_length=2048, pattern=r"^https?://[^\s]+$")]
    credentials_secret_id: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None


class GrantOrigin(_Model):
    """The ticket a grant was asked for in: the webhook source, the ticket's key, and where its
    comments go (None when the source posts nothing back)."""

    source: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
    ticket: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=_PRINTABLE)]
    callback: TicketCallback | None = None


class Grant(_Model):
    """A person's access to the shared endpoint of a profile, for a time (see the module's docstring)."""

    grant_id: Annotated[str, StringConstraints(pattern=GRANT_ID.pattern)]
    person: Person
    profile: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    endpoint_id: Annotated[str, StringConstraints(pattern=ENDPOINT_ID.pattern)]
    endpoint_request_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
    access_groups: Annotated[list[Text], Field(min_length=1, max_length=50)]
    hours: Annotated[float, Field(gt=0)] = Field(description="how long the grant lasts once active")
    reason: Reason
    state: GrantState
    created_at: AwareDatetime
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    approver: Approver | None = None
    break_glass: bool = False
    granted_by: Actor | None = Field(default=None, description="who gave a break-glass grant")
    history: Annotated[list[Transition], Field(min_length=1)]
    version: Annotated[int, Field(ge=1)] = 1
    request_id: RequestId | None = Field(
        default=None, description="the access request (form or ticket) that asked for it"
    )
    pending_extension: ExtensionRequest | None = Field(
        default=None, description="an extension the person asked for, waiting for approval"
    )
    origin: GrantOrigin | None = Field(
        default=None, description="the ticket the grant was asked for in (None: the form or the CLI)"
    )

    @field_validator("access_groups")
    @classmethod
    def _distinct_groups(cls, groups: list[str]) -> list[str]:
        duplicates = sorted({group for group in groups if groups.count(group) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        return groups

    @model_validator(mode="after")
    def _consistent(self) -> Grant:
        if self.state in ("active", "expired") and (self.starts_at is None or self.ends_at is None):
            raise ValueError(f"ends_at: a grant that is {self.state} has a start and an end")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at: must be after starts_at")
        if self.break_glass:
            if self.granted_by is None:
                raise ValueError("granted_by: a break-glass grant records who gave it")
            if self.approver is not None:
                raise ValueError("approver: a break-glass grant has no approver")
        elif self.state == "active" and self.approver is None:
            raise ValueError("approver: an active grant is approved (or break_glass)")
        if self.approver is not None and self.approver.key == self.person.key:
            raise ValueError("approver: nobody approves their own grant")
        if self.pending_extension is not None and self.state != "active":
            raise ValueError("pending_extension: only an active grant can wait for an extension")
        if self.history[-1].to_state != self.state:
            raise ValueError(
                f"history: the last transition leads to {self.history[-1].to_state}, not {self.state}"
            )
        return self

    def is_active_at(self, moment: datetime) -> bool:
        """Active and not yet at its end at ``moment``."""
        return self.state == "active" and self.ends_at is not None and moment < self.ends_at

    @property
    def approved_by(self) -> str:
        """Who approved, in words: the approver's name, or "break-glass by <who>"."""
        if self.break_glass and self.granted_by is not None:
            return f"break-glass by {self.granted_by.name}"
        return self.approver.name if self.approver else ""


def parse_grant(document: Any) -> Grant:
    """A grant from its stored or given document; GrantInvalid names each wrong field."""
    try:
        return Grant.model_validate(document)
    except ValidationError as error:
        raise GrantInvalid(_split_model_errors(field_errors(error))) from None


_FIELD_IN_MESSAGE = re.compile(r"^(?P<field>[a-z_]+): (?P<message>.+)$", re.S)


def _split_model_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A whole-model error ("ends_at: why") reported under the field it names."""
    for item in errors:
        match = _FIELD_IN_MESSAGE.match(item["message"]) if item["field"] == "request" else None
        if match:
            item["field"], item["message"] = match["field"], match["message"]
    return errors


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC, to the second (what a schedule and the table keep)."""
    return moment.astimezone(UTC).replace(microsecond=0)
