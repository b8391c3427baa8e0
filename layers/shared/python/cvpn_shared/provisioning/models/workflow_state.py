"""What the provisioning tasks pass to each other through the state machine."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AssociationRef", "EndpointRef", "PollState", "ReadinessReport"]


class _State(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EndpointRef(_State):
    endpoint_id: str
    dns_name: str = ""
    status: str = "pending-associate"


class AssociationRef(_State):
    association_id: str
    subnet_id: str
    status: str


class PollState(_State):
    """Bookkeeping of a Wait / check / Choice loop (seconds are those of the state machine's Waits)."""

    what: Literal["associations", "rules-and-routes", "teardown", "changes"]
    next_wait_seconds: int = Field(ge=0, le=3600)
    poll_seconds: int = Field(default=10, ge=1, le=600)
    # Unset: every poll lasts poll_seconds. Set: each poll lasts twice the one before, up to this.
    max_poll_seconds: int | None = Field(default=None, ge=1, le=3600)
    timeout_seconds: int = Field(default=1800, ge=1, le=86400)
    polls: int = Field(default=0, ge=0)
    waited_seconds: int = Field(default=0, ge=0)
    ready: bool = False

    @model_validator(mode="after")
    def _longest_poll_not_below_the_first(self) -> PollState:
        if self.max_poll_seconds is not None and self.max_poll_seconds < self.poll_seconds:
            raise ValueError(
                f"max_poll_seconds: {self.max_poll_seconds} is below poll_seconds ({self.poll_seconds})"
            )
        return self


class ReadinessReport(_State):
    ready: bool
    pending: list[str] = []
    poll: PollState
    associated_subnet_ids: list[str] = []
