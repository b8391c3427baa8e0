"""Adopting an endpoint the product did not create: its document, its tags, its record.

After adoption the endpoint is managed like a provisioned one: tagged ``managed-by`` and
``request-id`` (the IAM policies of the workflows are scoped by the first), and recorded in the
requests table as a SUCCEEDED request whose ``request`` is its desired state (revision 1), with its
connection log group in the monitoring index. Plan, apply, drift, monitoring and decommission then
find it like any other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
from cvpn_shared.provisioning.dal.requests_table import RequestRecords
from cvpn_shared.provisioning.dal.revisions import RevisionRecords
from cvpn_shared.provisioning.errors import ProvisioningError
from cvpn_shared.provisioning.live_state import LiveEndpoint
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.monitored_log_groups import MONITORED_LOG_GROUP
from cvpn_shared.provisioning.tags import MANAGED_BY_TAG, REQUEST_ID_TAG, REQUESTER_TAG

__all__ = [
    "AlreadyManaged",
    "adopt_endpoint",
    "adoption_record",
    "adoption_revision",
    "ensure_adoptable",
]

MANAGED_BY_VALUE = "client-vpn-autopilot"


class AlreadyManaged(ProvisioningError):
    """The endpoint, or the request id, already belongs to a managed request."""


def ensure_adoptable(live: LiveEndpoint, records: RequestRecords, request_id: str) -> None:
    """Raise AlreadyManaged when the endpoint is managed already or the request id is taken."""
    if live.managed_request_id:
        raise AlreadyManaged(
            f"{live.endpoint_id} is already managed by request {live.managed_request_id} "
            f"(its {REQUEST_ID_TAG} tag): plan and apply its document instead"
        )
    for item in records.find_by_endpoint(live.endpoint_id):
        raise AlreadyManaged(
            f"{live.endpoint_id} is already recorded as the endpoint of request {item['request_id']}"
        )
    existing = records.get(request_id)
    if existing is not None:
        raise AlreadyManaged(
            f"--request-id {request_id}: the requests table already holds this request "
            f"(status {existing.get('status', '?')}, endpoint {existing.get('endpoint_id') or 'none'}); "
            "choose another request id"
        )


def adoption_record(
    request: ProvisionRequest, live: LiveEndpoint, *, adopted_by: str, now: datetime | None = None
) -> dict[str, Any]:
    """The requests table item of an adopted endpoint, shaped like a provisioned one's."""
    moment = (now or datetime.now(UTC)).isoformat()
    log = request.connection_log
    return {
        "request_id": request.request_id,
        "requester": request.requester,
        "name": request.name,
        "status": "SUCCEEDED",
        "endpoint_id": live.endpoint_id,
        "execution_id": "adopted",
        "started_at": moment,
        "updated_at": moment,
        "adopted_by": adopted_by,
        "adopted_at": moment,
        "created": {
            "endpoint_id": live.endpoint_id,
            "associations": [a.association_id for a in live.associations if a.present],
            "authorization_rules": len(live.authorization_rules),
            "routes": sum(1 for route in live.routes if route.origin == "add-route"),
            "adopted": True,
        },
        "request": request.model_dump(mode="json"),
        "revision": 1,
        MONITORED_LOG_GROUP: log.log_group_name if log.enabled else None,
    }


def adoption_revision(item: dict[str, Any]) -> dict[str, Any]:
    """Revision 1 of an adopted endpoint in the revision history: the document, applied by no change."""
    return {
        "request_id": item["request_id"],
        "revision": 1,
        "endpoint_id": item["endpoint_id"],
        "document": item["request"],
        "previous_document": {},
        "previous_revision": 0,
        "applied_by": item["adopted_by"],
        "applied_at": item["adopted_at"],
        "plan": {"adopted": True, "changes": []},
        "execution_id": "adopted",
        "status": "SUCCEEDED",
        "outcome": {"status": "SUCCEEDED", "error": None},
        "finished_at": item["adopted_at"],
    }


def adopt_endpoint(
    api: ClientVpnApi,
    records: RequestRecords,
    request: ProvisionRequest,
    live: LiveEndpoint,
    *,
    adopted_by: str,
    revisions: RevisionRecords | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Tag the endpoint as managed and record it (and its revision 1); returns the record written.

    Checks again that nothing manages it, then tags it (what the workflows' IAM needs, and its name
    when it has none), then writes the record conditionally on the request id being free, so two
    adoptions cannot share one id.
    """
    ensure_adoptable(live, records, request.request_id)
    tags = {
        MANAGED_BY_TAG: MANAGED_BY_VALUE,
        REQUEST_ID_TAG: request.request_id,
        REQUESTER_TAG: request.requester,
    }
    if not live.name:
        tags["Name"] = request.name  # the document names it (its id): the endpoint then says so too
    api.tag_endpoint(live.endpoint_id, tags)
    item = adoption_record(request, live, adopted_by=adopted_by, now=now)
    if not records.put_adopted(item):
        raise AlreadyManaged(
            f"--request-id {request.request_id}: another adoption took this request id meanwhile; "
            f"{live.endpoint_id} is tagged with it, adopt again with another id"
        )
    if revisions is not None:
        revisions.start(adoption_revision(item))
    return item
