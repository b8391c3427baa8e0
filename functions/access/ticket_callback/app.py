"""Task: post the request's result back to its ticket (Jira comment, GitHub comment, or JSON to a URL).

Also invoked asynchronously by the webhook function with a notice: ``invalid-request`` (a signed
ticket that made no valid access request is told which fields and why) or ``not-started`` (its valid
request was not started: too many pending, a name conflict). Lambda retries that invocation when the
ticket system did not answer; a refusal by the ticket system is logged, not retried.
"""

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.callback import (
    TicketCallbackRejected,
    TicketCallbackTask,
    parse_notice,
    post_notice,
    post_result,
)
from cvpn_shared.access.settings import get_settings
from cvpn_shared.access.wiring import intake_secrets, ticket_poster
from cvpn_shared.core.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    form_url = get_settings().request_form_url.strip()
    notice = parse_notice(event)
    if notice is not None:
        try:
            posted = post_notice(
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
