"""What the expiry schedule sends the expire-grant function."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, field_validator

from cvpn_shared.access.grants.models import GRANT_ID

__all__ = ["GrantExpiryEvent"]


class GrantExpiryEvent(BaseModel):
    """``{"grant_id", "scheduled_time"}``: Scheduler fills ``scheduled_time`` in (its context attribute
    ``<aws.scheduler.scheduled-time>``); a time it could not fill in is left out."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    grant_id: Annotated[str, StringConstraints(pattern=GRANT_ID.pattern)]
    scheduled_time: AwareDatetime | None = None

    @field_validator("scheduled_time", mode="before")
    @classmethod
    def _unfilled(cls, value: object) -> object:
        return None if isinstance(value, str) and value.startswith("<aws.scheduler.") else value
