"""The first task: the request model, then the pre-flight rules, before anything is created."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from cvpn_shared.core.field_errors import field_errors
from cvpn_shared.provisioning.errors import PreflightFailed, RequestInvalid
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.preflight import Inventory, run_preflight

__all__ = ["parse_request", "validate_request"]


def parse_request(raw: dict[str, Any]) -> ProvisionRequest:
    try:
        return ProvisionRequest.model_validate(raw)
    except ValidationError as error:
        raise RequestInvalid(field_errors(error)) from None


def validate_request(
    raw: dict[str, Any], inventory: Inventory, *, endpoint_quota: int, client_connect_available: bool = False
) -> dict[str, Any]:
    """Parse and pre-flight ``raw``; raises RequestInvalid or PreflightFailed, creates nothing."""
    request = parse_request(raw)
    report = run_preflight(
        request, inventory, endpoint_quota=endpoint_quota, client_connect_available=client_connect_available
    )
    if not report.ok:
        raise PreflightFailed(report.problems)
    return {
        "request": request.model_dump(mode="json"),
        "availability_zones": report.availability_zones,
        "existing_endpoint_id": report.existing_endpoint_id,
        # What AWS accepts but probably surprises the requester: reported, never blocking.
        "warnings": report.warnings,
    }
