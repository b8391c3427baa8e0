"""The end of a provisioning: the client configuration, the summary, the audit record, the notification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cvpn_shared.core.notifications import Notifier
from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
from cvpn_shared.provisioning.dal.configurations import ConfigurationStore, configuration_key
from cvpn_shared.provisioning.dal.requests_table import RequestRecords
from cvpn_shared.provisioning.models.request import ProvisionRequest

__all__ = [
    "CONNECTION_HOURLY_USD",
    "SUBNET_ASSOCIATION_HOURLY_USD",
    "configuration_key",
    "export_configuration",
    "fail_state_error",
    "hourly_cost_usd",
    "record_decommission",
    "record_decommission_failure",
    "record_failure",
    "record_success",
]

# Step Functions refuses a Fail state whose error name begins with this (a Lambda timeout is
# ``States.Timeout``): the workflow would end with ``States.Runtime`` instead of the failure.
_RESERVED_ERROR_PREFIX = "States."
_MAX_FAIL_CAUSE = 32768  # what a Fail state's cause may hold


def fail_state_error(error: str, cause: str) -> dict[str, str]:
    """The ``error`` and ``cause`` the workflow's Fail state ends with: the failure's own, except a
    reserved ``States.*`` name, which becomes ``ProvisioningFailed`` with the name leading the cause."""
    if error.startswith(_RESERVED_ERROR_PREFIX) or not error:
        return {"error": "ProvisioningFailed", "cause": f"{error or 'Unknown'}: {cause}"[:_MAX_FAIL_CAUSE]}
    return {"error": error, "cause": cause[:_MAX_FAIL_CAUSE]}


# Public pricing (us-east-1), for estimates only.
SUBNET_ASSOCIATION_HOURLY_USD = 0.10
CONNECTION_HOURLY_USD = 0.05
HOURS_PER_MONTH = 730


def hourly_cost_usd(associated_subnets: int, active_connections: int = 0) -> float:
    """What the endpoint costs per hour: each associated subnet, plus each active connection."""
    return round(
        associated_subnets * SUBNET_ASSOCIATION_HOURLY_USD + active_connections * CONNECTION_HOURLY_USD, 4
    )


def export_configuration(
    api: ClientVpnApi,
    store: ConfigurationStore,
    request: ProvisionRequest,
    endpoint_id: str,
) -> dict[str, Any]:
    """Export the OpenVPN profile, store it encrypted, and summarise the endpoint with where it is stored.

    The summary names the object (bucket and key), never a link to it: it travels through the
    workflow's history and output, the notification topic and the ticket, where a presigned link would
    let anyone who reads them download the configuration. A link is made when a person asks for it
    (the request API's status, ``cvpn status``), with that person's rights.
    """
    profile = api.export_client_configuration(endpoint_id)
    key = configuration_key(request.request_id, endpoint_id)
    store.put(key, profile, {"request-id": request.request_id, "endpoint-id": endpoint_id})

    endpoint = api.describe_endpoint(endpoint_id)
    associations = [
        {
            "association_id": n["AssociationId"],
            "subnet_id": n["TargetNetworkId"],
            "status": n["Status"]["Code"],
        }
        for n in api.target_networks(endpoint_id)
    ]
    rules = [
        {
            "target_network_cidr": r["DestinationCidr"],
            "access_group_id": r.get("GroupId", ""),
            "all_groups": bool(r.get("AccessAll")),
            "status": r["Status"]["Code"],
        }
        for r in api.authorization_rules(endpoint_id)
    ]
    routes = [
        {
            "destination_cidr": r["DestinationCidr"],
            "subnet_id": r["TargetSubnet"],
            "origin": r.get("Origin", ""),
            "status": r["Status"]["Code"],
        }
        for r in api.routes(endpoint_id)
    ]
    associated = sum(1 for a in associations if a["status"] == "associated")
    hourly = hourly_cost_usd(associated)
    return {
        "endpoint_id": endpoint_id,
        "dns_name": endpoint.get("DnsName", ""),
        "status": endpoint["Status"]["Code"],
        "associations": associations,
        "authorization_rules": rules,
        "routes": routes,
        "client_configuration": {
            "bucket": store.bucket,
            "key": key,
        },
        "cost": {
            "hourly_usd": hourly,
            "monthly_usd": round(hourly * HOURS_PER_MONTH, 2),
            "basis": f"{associated} associated subnets x {SUBNET_ASSOCIATION_HOURLY_USD} USD/h, plus "
            f"{CONNECTION_HOURLY_USD} USD/h per active connection",
        },
    }


def monitored_log_group(request: ProvisionRequest) -> str | None:
    """The log group the ingest reads while ``request`` is the endpoint's SUCCEEDED desired state
    (the requests table's sparse index); None when it logs no connections."""
    log = request.connection_log
    return log.log_group_name if log.enabled else None


def record_success(
    records: RequestRecords,
    notifier: Notifier,
    request: ProvisionRequest,
    result: dict[str, Any],
    *,
    execution_id: str,
    started_at: str,
    now: datetime | None = None,
    warnings: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    moment = (now or datetime.now(UTC)).isoformat()
    item = {
        "request_id": request.request_id,
        "requester": request.requester,
        "name": request.name,
        "status": "SUCCEEDED",
        "endpoint_id": result["endpoint_id"],
        "execution_id": execution_id,
        "started_at": started_at,
        "updated_at": moment,
        "created": {
            "endpoint_id": result["endpoint_id"],
            "associations": [a["association_id"] for a in result["associations"]],
            "authorization_rules": len(result["authorization_rules"]),
            "routes": len(result["routes"]),
        },
        "request": request.model_dump(mode="json"),
        "monitored_log_group": monitored_log_group(request),
    }
    if warnings:
        item["warnings"] = warnings
    records.put_outcome(item)
    message_id = notifier.publish(
        f"Client VPN endpoint ready for {request.request_id}",
        {
            "request_id": request.request_id,
            "requester": request.requester,
            "status": "SUCCEEDED",
            "endpoint_id": result["endpoint_id"],
            "dns_name": result["dns_name"],
            # where the configuration is, not a link to it: readers of the topic are not all the requester
            "client_configuration": {
                "bucket": result["client_configuration"]["bucket"],
                "key": result["client_configuration"]["key"],
            },
            "download": f"cvpn status {request.request_id} (or GET /requests/{request.request_id} for a "
            "request made through the form or a ticket) gives a fresh link",
            "hourly_cost_usd": result["cost"]["hourly_usd"],
            **({"warnings": warnings} if warnings else {}),
        },
        {"status": "SUCCEEDED", "request_id": request.request_id},
    )
    return {"status": "SUCCEEDED", "notification_id": message_id, "recorded_at": moment}


def record_failure(
    records: RequestRecords,
    notifier: Notifier,
    *,
    request_id: str,
    requester: str,
    error: str,
    cause: str,
    endpoint_id: str | None,
    rolled_back: bool,
    execution_id: str,
    started_at: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    moment = (now or datetime.now(UTC)).isoformat()
    status = "ROLLED_BACK" if rolled_back else "FAILED"
    records.put_outcome(
        {
            "request_id": request_id,
            "requester": requester,
            "status": status,
            "endpoint_id": endpoint_id,
            "execution_id": execution_id,
            "started_at": started_at,
            "updated_at": moment,
            "error": error,
            "cause": cause[:4000],
        }
    )
    message_id = notifier.publish(
        f"Client VPN request {request_id} failed",
        {
            "request_id": request_id,
            "requester": requester,
            "status": status,
            "error": error,
            "cause": cause[:4000],
            "endpoint_id": endpoint_id,
            "rolled_back": rolled_back,
        },
        {"status": status, "request_id": request_id},
    )
    return {
        "status": status,
        "notification_id": message_id,
        "recorded_at": moment,
        **fail_state_error(error, cause),
    }


def record_decommission(
    records: RequestRecords,
    notifier: Notifier,
    *,
    request_id: str,
    requester: str,
    endpoint_id: str,
    execution_id: str,
    started_at: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    moment = (now or datetime.now(UTC)).isoformat()
    records.put_outcome(
        {
            "request_id": request_id or f"endpoint:{endpoint_id}",
            "requester": requester,
            "status": "DECOMMISSIONED",
            "endpoint_id": endpoint_id,
            "execution_id": execution_id,
            "started_at": started_at,
            "updated_at": moment,
        }
    )
    message_id = notifier.publish(
        f"Client VPN endpoint {endpoint_id} decommissioned",
        {
            "request_id": request_id,
            "requester": requester,
            "status": "DECOMMISSIONED",
            "endpoint_id": endpoint_id,
        },
        {"status": "DECOMMISSIONED", "request_id": request_id or endpoint_id},
    )
    return {"status": "DECOMMISSIONED", "notification_id": message_id, "recorded_at": moment}


def record_decommission_failure(
    records: RequestRecords,
    notifier: Notifier,
    *,
    request_id: str | None,
    endpoint_id: str | None,
    error: str,
    cause: str,
    execution_id: str,
    started_at: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A decommission that failed or was refused.

    The request's record keeps what the provisioning wrote (endpoint, what was created, the request)
    and gains the status DECOMMISSION_FAILED with the error: the endpoint may still run. A refusal
    that names no request (an endpoint the product did not create) is kept under
    ``endpoint:<endpoint id>``.
    """
    moment = (now or datetime.now(UTC)).isoformat()
    key = request_id or f"endpoint:{endpoint_id or 'unknown'}"
    records.update_outcome(
        key,
        {
            "status": "DECOMMISSION_FAILED",
            "endpoint_id": endpoint_id,
            "error": error,
            "cause": cause[:4000],
            "decommission_execution_id": execution_id,
            "decommission_started_at": started_at,
            "updated_at": moment,
        },
    )
    message_id = notifier.publish(
        f"Decommission of {request_id or endpoint_id} failed",
        {
            "request_id": request_id,
            "status": "DECOMMISSION_FAILED",
            "endpoint_id": endpoint_id,
            "error": error,
            "cause": cause[:4000],
        },
        {"status": "DECOMMISSION_FAILED", "request_id": key},
    )
    return {
        "status": "DECOMMISSION_FAILED",
        "notification_id": message_id,
        "recorded_at": moment,
        **fail_state_error(error, cause),
    }
