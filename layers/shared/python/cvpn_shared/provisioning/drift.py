"""Drift: how each managed endpoint differs from its last desired state, found by the planner.

The requests table holds every managed endpoint's desired state (a SUCCEEDED item's ``request`` and
``endpoint_id``). The scheduled check and ``cvpn drift`` read each endpoint live, plan from the live
endpoint to that document, and report every change the plan would make: that is what changed out of
band, and ``cvpn apply`` on the recorded document puts it back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from cvpn_shared.core.notifications import Notifier
from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
from cvpn_shared.provisioning.dal.drift_events import DriftEvents
from cvpn_shared.provisioning.dal.requests_table import RequestRecords
from cvpn_shared.provisioning.errors import EndpointNotYetVisible
from cvpn_shared.provisioning.live_state import live_connection_count, read_live_endpoint
from cvpn_shared.provisioning.models.plan import Plan
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.planning import plan_update

__all__ = ["DriftReport", "ManagedEndpoint", "check_endpoint", "managed_endpoints", "run_drift_check"]


class ManagedEndpoint(BaseModel):
    """One managed endpoint as the requests table records it."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    endpoint_id: str
    revision: int = 1
    request: dict[str, Any]


class DriftReport(BaseModel):
    """What one check found for one endpoint."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    endpoint_id: str
    revision: int
    status: Literal["in-sync", "drifted", "endpoint-missing", "unreadable"]
    differences: list[str] = []
    plan: Plan | None = None
    error: str = ""

    @property
    def drifted(self) -> bool:
        return self.status in ("drifted", "endpoint-missing")

    def event_detail(self, checked_at: str) -> dict[str, Any]:
        """The ``Client VPN Drift Detected`` event's detail: each difference, with its field."""
        plan = self.plan
        return {
            "request_id": self.request_id,
            "endpoint_id": self.endpoint_id,
            "revision": self.revision,
            "status": self.status,
            "checked_at": checked_at,
            "differences": [
                {
                    "field": change.field,
                    "action": change.action,
                    "summary": change.summary,
                    "disruptive": change.disruptive,
                }
                for change in (plan.in_execution_order() if plan else [])
            ]
            + [
                {"field": refusal.field, "action": "replace", "summary": refusal.reason, "disruptive": True}
                for refusal in (plan.refusals if plan else [])
            ]
            + (
                [{"field": "endpoint_id", "action": "none", "summary": self.error, "disruptive": True}]
                if self.status == "endpoint-missing"
                else []
            ),
            "live_connections": plan.live_connections if plan else 0,
            "remedy": f"`cvpn apply` with the document of revision {self.revision} puts the endpoint back "
            f"(`cvpn drift {self.endpoint_id}` shows the plan)",
        }


def managed_endpoints(records: RequestRecords) -> list[ManagedEndpoint]:
    """Every endpoint the requests table says the product manages, one per request."""
    found = []
    for item in records.managed_endpoints():
        request = item.get("request")
        if not isinstance(request, dict) or not item.get("endpoint_id"):
            continue
        revision = item.get("revision", 1)
        found.append(
            ManagedEndpoint(
                request_id=str(item["request_id"]),
                endpoint_id=str(item["endpoint_id"]),
                revision=int(revision) if isinstance(revision, int | float) else 1,
                request=request,
            )
        )
    return sorted(found, key=lambda managed: managed.request_id)


def check_endpoint(
    api: ClientVpnApi, managed: ManagedEndpoint, *, client_connect_function_arn: str = ""
) -> DriftReport:
    """Compare the live endpoint with its recorded desired state."""
    common: dict[str, Any] = {
        "request_id": managed.request_id,
        "endpoint_id": managed.endpoint_id,
        "revision": managed.revision,
    }
    try:
        desired = ProvisionRequest.model_validate(managed.request)
    except ValidationError as error:
        return DriftReport(
            **common,
            status="unreadable",
            error=f"the recorded document of {managed.request_id} is not a valid request: "
            f"{error.error_count()} error(s), first {error.errors()[0]['msg']}",
        )
    try:
        live = read_live_endpoint(api, managed.endpoint_id)
    except EndpointNotYetVisible:
        return DriftReport(
            **common,
            status="endpoint-missing",
            error=f"{managed.endpoint_id} no longer exists (deleted out of band?)",
            differences=[f"{managed.endpoint_id} no longer exists"],
        )
    if live.status in ("deleting", "deleted"):
        return DriftReport(
            **common,
            status="endpoint-missing",
            error=f"{managed.endpoint_id} is {live.status}",
            differences=[f"{managed.endpoint_id} is {live.status}"],
        )
    plan = plan_update(
        desired,
        live,
        revision=managed.revision,
        live_connections=live_connection_count(api, managed.endpoint_id),
        client_connect_function_arn=client_connect_function_arn,
    )
    differences = [f"{change.field}: {change.summary}" for change in plan.in_execution_order()] + [
        f"{refusal.field}: {refusal.reason}" for refusal in plan.refusals
    ]
    return DriftReport(
        **common, status="in-sync" if plan.no_changes else "drifted", differences=differences, plan=plan
    )


def run_drift_check(
    api: ClientVpnApi,
    records: RequestRecords,
    events: DriftEvents,
    notifier: Notifier,
    *,
    client_connect_function_arn: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check every managed endpoint; publish an event and a notification for each that drifted."""
    checked_at = (now or datetime.now(UTC)).isoformat()
    reports = [
        check_endpoint(api, managed, client_connect_function_arn=client_connect_function_arn)
        for managed in managed_endpoints(records)
    ]
    for report in reports:
        if not report.drifted:
            continue
        detail = report.event_detail(checked_at)
        events.publish(detail)
        notifier.publish(
            f"Client VPN drift on {report.endpoint_id} ({report.request_id})",
            detail,
            {"status": "DRIFTED", "request_id": report.request_id},
        )
    return {
        "checked_at": checked_at,
        "checked": len(reports),
        "drifted": [r.endpoint_id for r in reports if r.drifted],
        "unreadable": [r.request_id for r in reports if r.status == "unreadable"],
        "differences": sum(len(r.differences) for r in reports if r.drifted),
    }
