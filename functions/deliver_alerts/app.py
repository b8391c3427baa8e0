"""On the findings bus: archive the finding, alert, block HIGH/CRITICAL sources and users."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.monitoring.alerting import FindingAlert, deliver_finding
from cvpn_shared.observability import logger, metrics, tracer
from cvpn_shared.wiring import alert_channels, asff_for, response_policy


class FindingEvent(EventBridgeModel):
    """A "Client VPN Suspicious Connection Attempts" event from the product's bus."""

    detail: FindingAlert


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=FindingEvent)
def lambda_handler(event: FindingEvent, context: LambdaContext) -> dict[str, Any]:
    report = deliver_finding(
        event.detail,
        alert_channels(),
        response_policy(),
        now=datetime.now(UTC),
        asff=asff_for(event.resources, context.invoked_function_arn),
    )
    metrics.add_metric(name="FindingsDelivered", unit="Count", value=1)
    metrics.add_metric(name="SubjectsBlocked", unit="Count", value=len(report.blocked))
    logger.info("finding delivered", extra={"delivery": vars(report)})
    return vars(report)
