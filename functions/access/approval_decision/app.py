"""GET /approvals/{approval_id}?decision=approve|reject&expires=...&signature=...: an approver's link.

Checks the link (signature, expiry, single use) and answers the waiting intake workflow, then shows a
small HTML page. The checks live in ``cvpn_shared.access.approval``.
"""

import time
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.approval import decide
from cvpn_shared.access.wiring import approval_link_secret, approval_records, task_callbacks
from cvpn_shared.core.observability import logger, metrics

app = APIGatewayHttpResolver()


@app.get("/approvals/<approval_id>")
def follow_approval_link(approval_id: str) -> Response:
    event = app.current_event
    http = event.request_context.http
    page = decide(
        approval_id,
        dict(event.query_string_parameters or {}),
        records=approval_records(),
        tasks=task_callbacks(),
        link_secret=approval_link_secret(),
        now=int(time.time()),
        decided_via=f"link from {http.source_ip} ({http.user_agent})",
    )
    metrics.add_metric(name=f"ApprovalLink-{page.status}", unit="Count", value=1)
    logger.info("approval link followed", extra={"status": page.status, "title": page.title})
    return Response(
        status_code=page.status,
        content_type="text/html; charset=utf-8",
        body=page.html(),
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
