"""Client VPN's client-connect handler: refuse blocked addresses and users, allow the rest."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger, metrics
from cvpn_shared.monitoring.client_connect import decide
from cvpn_shared.monitoring.settings import get_settings
from cvpn_shared.monitoring.wiring import blocklist


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    fail_mode = get_settings().client_connect_fail_mode
    decision = decide(event, blocklist(), now=datetime.now(UTC), fail_mode=fail_mode)
    if decision.malformed:
        logger.warning("malformed request refused", extra={"reason": decision.malformed})
        metrics.add_metric(name="MalformedRequests", unit="Count", value=1)
    if decision.blocklist_error:
        verdict = "allowed (fail open)" if decision.response.allow else "refused (fail closed)"
        logger.error(f"blocklist unreadable: connection {verdict}", extra={"error": decision.blocklist_error})
        metrics.add_metric(name="BlocklistUnavailable", unit="Count", value=1)
    metrics.add_metric(
        name="ConnectionsAllowed" if decision.response.allow else "ConnectionsRefused", unit="Count", value=1
    )
    if decision.blocks:
        logger.warning(
            "connection refused",
            extra={
                "endpoint_id": str(event.get("endpoint-id", "")),
                "blocked": [entry.key for entry in decision.blocks],
            },
        )
    return decision.response.to_answer()
