"""Client VPN's client-connect handler: refuse blocklisted sources and users, allow the rest."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger, metrics
from cvpn_shared.monitoring.client_connect import ClientConnectRequest, authorize_connection
from cvpn_shared.monitoring.wiring import blocklist


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=ClientConnectRequest)
def lambda_handler(event: ClientConnectRequest, context: LambdaContext) -> dict[str, Any]:
    decision = authorize_connection(event, blocklist(), now=datetime.now(UTC))
    if decision.blocklist_error:
        logger.error("blocklist unreadable: connection allowed", extra={"error": decision.blocklist_error})
        metrics.add_metric(name="BlocklistUnavailable", unit="Count", value=1)
    metrics.add_metric(
        name="ConnectionsAllowed" if decision.response.allow else "ConnectionsRefused", unit="Count", value=1
    )
    if not decision.response.allow:
        logger.warning(
            "connection refused",
            extra={"endpoint_id": event.endpoint_id, "blocked": [entry.key for entry in decision.blocks]},
        )
    return decision.response.to_answer()
