"""POST /webhooks/{source}: a signed ticket-system delivery starts the intake workflow (202), once.

401 bad signature, 400 not JSON, 422 fields that do not make a request, 413 too large, 404 unknown
source; a duplicate delivery gets 200 with the original. The checks live in
``cvpn_shared.access.webhooks``.
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
    metrics.add_dimension(name="Source", value=source if answer.status != 404 else "unknown")
    metrics.add_metric(name=f"Webhook-{answer.outcome}", unit="Count", value=1)
    logger.info(
        "webhook answered", extra={"source": source, "status": answer.status, "outcome": answer.outcome}
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
