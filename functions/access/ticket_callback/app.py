"""Task: post the request's result back to its ticket (Jira comment, GitHub comment, or JSON to a URL).

Also invoked asynchronously by the webhook function with an ``invalid-request`` notice: a signed
ticket that made no valid access request is told which fields and why. Lambda retries that invocation
when the ticket system did not answer; a refusal by the ticket system is logged, not retried.
"""

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.callback import (
    INVALID_REQUEST_NOTICE,
    InvalidTicketNotice,
    TicketCallbackRejected,
    TicketCallbackTask,
    post_invalid_ticket_notice,
    post_result,
)
from cvpn_shared.access.settings import get_settings
from cvpn_shared.access.wiring import intake_secrets, ticket_poster
from cvpn_shared.core.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    form_url = get_settings().request_form_url.strip()
    if event.get("notice") == INVALID_REQUEST_NOTICE:
        notice = InvalidTicketNotice.model_validate(event)
        try:
            posted = post_invalid_ticket_notice(
                notice, secrets=intake_secrets(), http=ticket_poster(), clock=time.time, form_url=form_url
            )
        except TicketCallbackRejected as error:
            metrics.add_metric(name="TicketNoticeRejected", unit="Count", value=1)
            logger.error(
                "the ticket refused the notice", extra={"ticket": notice.request_id, "error": str(error)}
            )
            return {"delivered": False, "reason": str(error)}
        metrics.add_metric(name="TicketNoticeDelivered", unit="Count", value=1)
        return posted
    task = TicketCallbackTask.model_validate(event)
    delivered = post_result(
        task, secrets=intake_secrets(), http=ticket_poster(), clock=time.time, form_url=form_url
    )
    metrics.add_metric(name="TicketCallbackDelivered", unit="Count", value=1)
    return delivered
