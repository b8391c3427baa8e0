"""Client VPN's client-connect handler: refuse blocked addresses and users, and users without an
active grant on an endpoint that enforces grants; allow the rest.

A person waits for this handler on every VPN login, so its cold start loads neither botocore,
pydantic nor Powertools: logs and metrics are written as Powertools writes them
(``core.lean_telemetry``), and the blocklist and grants are read over DynamoDB's JSON API
(``monitoring.dal.dynamodb_json``).
"""

from datetime import UTC, datetime
from typing import Any

from cvpn_shared.core.lean_telemetry import EmfMetrics, JsonLogger
from cvpn_shared.monitoring.client_connect import decide
from cvpn_shared.monitoring.client_connect_wiring import connect_lookup, get_connect_settings

logger = JsonLogger()
metrics = EmfMetrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    settings = get_connect_settings()
    decision = decide(
        event,
        connect_lookup(),
        now=datetime.now(UTC),
        fail_mode=settings.fail_mode,
        form_url=settings.form_url,
    )
    if decision.malformed:
        logger.warning("malformed request refused", extra={"reason": decision.malformed})
        metrics.add_metric(name="MalformedRequests", unit="Count", value=1)
    if decision.blocklist_error:
        verdict = "allowed (fail open)" if decision.response.allow else "refused (fail closed)"
        problem = {"error": decision.blocklist_error}
        logger.error(f"blocklist and grants unreadable: connection {verdict}", extra=problem)
        metrics.add_metric(name="BlocklistUnavailable", unit="Count", value=1)
    metrics.add_metric(
        name="ConnectionsAllowed" if decision.response.allow else "ConnectionsRefused", unit="Count", value=1
    )
    if decision.no_grant:
        metrics.add_metric(name="ConnectionsRefusedNoGrant", unit="Count", value=1)
        logger.info(
            "connection refused: no active grant",
            extra={
                "endpoint_id": str(event.get("endpoint-id", "")),
                "grant_ended_at": decision.gate.active_until if decision.gate else 0,
            },
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
