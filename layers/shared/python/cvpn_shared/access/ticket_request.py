"""A ticket that asks for access: what a ``kind: grants`` webhook source maps a delivery to.

The person is named as the ticket system knows them: ``issuer`` (the ticket system's base URL, one
constant per source, e.g. ``https://acme.atlassian.net``) and ``sub`` (the reporter's account id,
which the ticket system never reassigns), plus the user name the VPN sees. An e-mail address is at
most a label (``requester``): it may be unverified or change hands, so it never names the person.

The profile, the access groups (empty: all the profile offers) and the hours (None: the profile's
default) are checked against the profile when the request starts; here only their shape is.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from cvpn_shared.access.grants.models import Issuer, Subject, Text, VpnUserName

__all__ = ["TICKET_KEY", "TicketAccessRequest"]

TICKET_KEY = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"  # a ticket's key as a request id


class TicketAccessRequest(BaseModel):
    """A person asks, in ticket ``request_id``, for ``access_groups`` of ``profile`` for ``hours``."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    request_id: Annotated[str, StringConstraints(pattern=TICKET_KEY)] = Field(
        description="the ticket's key, e.g. NET-1234"
    )
    issuer: Issuer = Field(description="the ticket system's accounts: its https base URL")
    sub: Subject = Field(description="the reporter's account id in the ticket system")
    vpn_user: VpnUserName = Field(description="the user name the VPN endpoint sees")
    profile: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    access_groups: Annotated[list[Text], Field(max_length=50)] = []
    hours: Annotated[float, Field(gt=0, le=24 * 366)] | None = None
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    requester: Text | None = Field(default=None, description="a label for people: name or e-mail")

    @field_validator("access_groups", mode="before")
    @classmethod
    def _groups_as_text(cls, value: Any) -> Any:
        # A ticket's text field holds "a, b"; a multi-select holds a list.
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("hours", mode="before")
    @classmethod
    def _hours_not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number of hours, not true or false")
        return value

    @field_validator("reason", mode="before")
    @classmethod
    def _reason_one_block(cls, value: Any) -> Any:
        # The reason is shown in listings and approval messages: control characters other than line
        # breaks and tabs are dropped, as a ticket's description may carry them.
        if isinstance(value, str):
            return "".join(ch for ch in value if ch in "\t\n" or not (ord(ch) < 32 or ord(ch) == 127))
        return value

    def reason_for_grant(self) -> str:
        """The reason as the grant keeps it (at most its length, naming the ticket)."""
        text = f"{self.request_id}: {self.reason}"
        return text[:1000]
