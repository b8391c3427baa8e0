"""The first task: the request model, then the pre-flight rules, before anything is created."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from cvpn_shared.errors import PreflightFailed, RequestInvalid
from cvpn_shared.models.request import ProvisionRequest
from cvpn_shared.preflight import Inventory, run_preflight

__all__ = ["field_errors", "parse_request", "validate_request"]


def field_errors(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as [{field, message}] with dotted paths such as routes[1].destination_cidr."""
    out = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part in ("function-after", "function-before") or str(part).startswith(
                ("function-", "tagged-union")
            ):
                continue
            else:
                path += f".{part}" if path else str(part)
        message = str(item["msg"]).removeprefix("Value error, ")
        out.append({"field": path or "request", "message": message})
    return out


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
    }
