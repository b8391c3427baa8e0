"""POST /webhooks/{source}: a signed ticket-system delivery starts the intake workflow (202), once.

404 unknown source (checked first), 413 too large, 401 bad signature, 400 not JSON, 422 fields that
do not make a request (a grants source's signed ticket is also told why, in a comment); a duplicate
delivery, or a ticket started before and not re-opened, gets 200.
The checks live in ``cvpn_shared.access.webhooks``.
"""

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.wiring import webhook_intake
from cvpn_shared.core.observability import logger, metrics

app = APIGatewayHttpResolver()


@app.post("/webhooks/<source>")
def receive_webhook(source: str) -> Response:
    event = app.current_event
    answer = webhook_intake().receive(
        source, dict(event.headers or {}), event.body, is_base64_encoded=bool(event.is_base64_encoded)
    )
    # answer.source is a configured source's name or "unknown": a dimension never comes from the path
    metrics.add_dimension(name="Source", value=answer.source)
    metrics.add_metric(name=f"Webhook-{answer.outcome}", unit="Count", value=1)
    logger.info(
        "webhook answered",
        extra={"source": answer.source, "status": answer.status, "outcome": answer.outcome},
    )
    return Response(
        status_code=answer.status,
        content_type="application/json",
        body=json.dumps(answer.body),
        headers={"Cache-Control": "no-store", **answer.headers},
    )


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
