"""Which endpoint a decommission request means, and whether the product may tear it down."""

from __future__ import annotations

from typing import Any

from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
from cvpn_shared.provisioning.errors import ProvisioningError
from cvpn_shared.provisioning.tags import MANAGED_BY_TAG, REQUEST_ID_TAG, REQUESTER_TAG

__all__ = ["EndpointNotManaged", "resolve_endpoint"]


class EndpointNotManaged(ProvisioningError):
    """No endpoint matches, or the endpoint was not created by Client VPN Autopilot."""


def _tags(endpoint: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in endpoint.get("Tags", [])}


def resolve_endpoint(api: ClientVpnApi, *, request_id: str | None, endpoint_id: str | None) -> dict[str, Any]:
    """The product-managed endpoint named by ``request_id`` or ``endpoint_id`` (exactly one of them)."""
    if bool(request_id) == bool(endpoint_id):
        raise EndpointNotManaged("give exactly one of request_id or endpoint_id")
    candidates = [
        endpoint
        for endpoint in api.list_endpoints()
        if endpoint.get("Status", {}).get("Code") not in ("deleted", "deleting")
        and (
            endpoint["ClientVpnEndpointId"] == endpoint_id
            or _tags(endpoint).get(REQUEST_ID_TAG) == request_id
        )
    ]
    if not candidates:
        wanted = f"request_id {request_id}" if request_id else f"endpoint_id {endpoint_id}"
        raise EndpointNotManaged(f"{wanted}: no live Client VPN endpoint found")
    endpoint = candidates[0]
    tags = _tags(endpoint)
    if tags.get(MANAGED_BY_TAG) != "client-vpn-autopilot":
        raise EndpointNotManaged(
            f"endpoint_id {endpoint['ClientVpnEndpointId']}: not created by Client VPN Autopilot "
            f"(no {MANAGED_BY_TAG} tag); refusing to tear it down"
        )
    return {
        "endpoint_id": endpoint["ClientVpnEndpointId"],
        "request_id": tags.get(REQUEST_ID_TAG, ""),
        "requester": tags.get(REQUESTER_TAG, ""),
    }
