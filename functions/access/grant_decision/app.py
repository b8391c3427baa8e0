"""Task: the decision on a grant or extension request is applied to the grant.

``activate`` (after an approval): the pending grant becomes active, or the extension moves its end,
recorded with the approver's identity; the expiry schedule is set. ``refuse`` (after a rejection, an
approval that expired, or a failure): the pending grant is revoked, or the extension refused, with the
reason. The rules live in ``cvpn_shared.access.access_requests``.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.access_requests import GrantDecisionTask, decide_grant_request
from cvpn_shared.access.wiring import access_grants
from cvpn_shared.core.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=GrantDecisionTask)
def lambda_handler(event: GrantDecisionTask, context: LambdaContext) -> dict[str, Any]:
    # An approved grant on a mutual-TLS profile is issued its personal certificate here, so it is
    # ready (and listed) when the person first downloads their profile.
    outcome = decide_grant_request(event, grants=access_grants(issue_certificates=True))
    name = "GrantsActivated" if event.action == "activate" else "GrantRequestsRefused"
    metrics.add_metric(name=name, unit="Count", value=1)
    logger.info(
        "grant request decided",
        extra={"request_id": event.request.request_id, "grant_id": event.request.grant_id, **outcome},
    )
    return outcome
