"""Task: post the request's result back to its ticket (Jira comment, GitHub comment, or JSON to a URL)."""

import time
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.callback import TicketCallbackTask, post_result
from cvpn_shared.access.wiring import intake_secrets, ticket_poster
from cvpn_shared.core.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=TicketCallbackTask)
def lambda_handler(event: TicketCallbackTask, context: LambdaContext) -> dict[str, Any]:
    delivered = post_result(event, secrets=intake_secrets(), http=ticket_poster(), clock=time.time)
    metrics.add_metric(name="TicketCallbackDelivered", unit="Count", value=1)
    return delivered
