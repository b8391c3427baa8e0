"""A ticket of a ``kind: grants`` source starts an access request, as the request form does.

The person is the ticket's reporter (``issuer`` + ``sub`` from the ticket system) with the VPN user
name the ticket gives; the pending grant records the ticket (its ``origin``: source, key, callback)
so the ticket gets the grant's comments. The intake execution is named after the source, the ticket
key and its run (a re-opened ticket's request is another run), as an endpoint request's is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cvpn_shared.access.access_requests import (
    AccessRequestServices,
    RequestOrigin,
    start_access_request,
)
from cvpn_shared.access.grants.models import GrantAsk, Person
from cvpn_shared.access.start import IntakeStarter, StartResult, status_url_path
from cvpn_shared.access.ticket_request import TicketAccessRequest

__all__ = ["TicketGrantStarter"]


class _StartedBefore(Exception):
    """The run's execution exists already: the grant just recorded is refused, the first one stands."""


@dataclass
class _Replacing:
    """A re-opened ticket's request replaces the record of its earlier run (same source only)."""

    submissions: Any

    def put(self, submission: dict[str, Any]) -> None:
        self.submissions.put(submission, replace=True)

    def get(self, request_id: str) -> dict[str, Any] | None:
        result = self.submissions.get(request_id)
        return dict(result) if result is not None else None


@dataclass(frozen=True)
class TicketGrantStarter:
    """Starts a ticket's access request; ``services`` is built on first use (a webhook function
    whose sources ask for endpoints never reads the grants)."""

    intake: IntakeStarter
    services: Callable[[], AccessRequestServices]

    def execution_arn(self, source: str, request_id: str, run: int = 1) -> str:
        return self.intake.execution_arn(source, request_id, run)

    def start(
        self, source: str, access: TicketAccessRequest, callback: dict[str, Any] | None, run: int = 1
    ) -> StartResult:
        """Record the pending grant and start its intake with approval required. Raises GrantInvalid
        naming each field the profile refuses, TooManyPending past the reporter's limit."""
        started: dict[str, StartResult] = {}

        def start_intake(source: str, request: dict[str, Any], callback: dict[str, Any] | None) -> str:
            result = self.intake.start(source, request, True, callback, run)
            if result.duplicate:
                started["before"] = result
                raise _StartedBefore(result.execution_arn)
            return result.execution_arn

        services = dataclasses.replace(self.services(), start=start_intake)
        if run > 1:
            services = dataclasses.replace(services, submissions=_Replacing(services.submissions))
        person = Person(issuer=access.issuer, sub=access.sub, vpn_user=access.vpn_user)
        origin = RequestOrigin(
            source=source,
            request_id=access.request_id,
            requester_name=access.requester or access.vpn_user,
            requester_email=access.requester if access.requester and "@" in access.requester else "",
            callback=callback,
            ticket_key=access.request_id,
        )
        try:
            ask = GrantAsk(
                person=person,
                profile=access.profile,
                access_groups=access.access_groups,
                hours=access.hours,
                reason=access.reason_for_grant(),
            )
            start_access_request(ask, origin, services=services)
        except _StartedBefore:
            return started["before"]
        arn = self.intake.execution_arn(source, access.request_id, run)
        return StartResult(access.request_id, arn, status_url_path(access.request_id), duplicate=False)
