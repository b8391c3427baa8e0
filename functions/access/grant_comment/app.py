"""Comment on the ticket a grant came from: it is active, it ends in a day, it ended.

Invoked asynchronously (by the function that changed the grant, or by the grant's day-before
schedule). A ticket system that did not answer raises, so Lambda or Scheduler retries; one that
refused is logged and not retried. Either way the grant is left as it is.
"""

import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.callback import TicketCallbackRejected
from cvpn_shared.access.grant_comments import GrantCommentTask, post_grant_comment
from cvpn_shared.access.wiring import grant_store, intake_secrets, ticket_poster
from cvpn_shared.core.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=GrantCommentTask)
def lambda_handler(event: GrantCommentTask, context: LambdaContext) -> dict[str, Any]:
    grant = grant_store().get(event.grant_id)
    if grant is None:
        logger.warning("no such grant", extra={"grant_id": event.grant_id})
        return {"grant_id": event.grant_id, "delivered": False, "reason": "no such grant"}
    now = datetime.now(UTC)
    if event.scheduled_time is not None and event.scheduled_time > now:
        now = event.scheduled_time  # the function's clock may be behind the schedule's
    try:
        result = post_grant_comment(
            grant, event.moment, now=now, secrets=intake_secrets(), http=ticket_poster(), clock=time.time
        )
    except TicketCallbackRejected as error:
        metrics.add_metric(name="GrantCommentRejected", unit="Count", value=1)
        logger.error(
            "the ticket refused the comment", extra={"grant_id": grant.grant_id, "error": str(error)}
        )
        return {"grant_id": grant.grant_id, "delivered": False, "reason": str(error)}
    if result.get("delivered"):
        metrics.add_metric(name="GrantCommentDelivered", unit="Count", value=1)
    logger.info(
        "grant comment",
        extra={"grant_id": grant.grant_id, "moment": event.moment, "delivered": result.get("delivered")},
    )
    return {"grant_id": grant.grant_id, "moment": event.moment, **result}
