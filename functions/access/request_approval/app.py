"""Task (waitForTaskToken): store the token and send the approvers signed approve/reject links."""

import time
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.approval import ApprovalTask, request_approval
from cvpn_shared.access.settings import get_settings
from cvpn_shared.access.wiring import approval_link_secret, approval_records, approvers_topic
from cvpn_shared.core.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=ApprovalTask)
def lambda_handler(event: ApprovalTask, context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    requested = request_approval(
        event,
        records=approval_records(),
        approvers=approvers_topic(),
        link_secret=approval_link_secret(create=True),
        base_url=settings.intake_api_url,
        ttl_seconds=settings.approval_link_ttl_seconds,
        now=int(time.time()),
    )
    metrics.add_metric(name="ApprovalRequested", unit="Count", value=1)
    return requested
