"""On the findings bus: a finding is archived, alerted and (HIGH/CRITICAL) blocklisted; a
client-connect handler health event goes to operations."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field, TypeAdapter

from cvpn_shared.core.observability import logger, metrics
from cvpn_shared.monitoring.alerting import FindingDeliveryIncomplete, deliver_finding, deliver_health_alert
from cvpn_shared.monitoring.findings import Finding, HealthIssue
from cvpn_shared.monitoring.wiring import alert_channels, asff_for, notifier, response_policy


class FindingEvent(EventBridgeModel):
    """A "Client VPN Suspicious Connection Attempts" event from the product's bus."""

    detail_type: Literal["Client VPN Suspicious Connection Attempts"] = Field(alias="detail-type")
    detail: Finding


class HealthEvent(EventBridgeModel):
    """A "Client VPN Connection Handler Health" event from the product's bus."""

    detail_type: Literal["Client VPN Connection Handler Health"] = Field(alias="detail-type")
    detail: HealthIssue


_EVENT: TypeAdapter[Any] = TypeAdapter(
    Annotated[FindingEvent | HealthEvent, Field(discriminator="detail_type")]
)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = _EVENT.validate_python(event)
    if isinstance(parsed, HealthEvent):
        metrics.add_metric(name="HandlerHealthAlerts", unit="Count", value=1)
        return {"operations_message_id": deliver_health_alert(parsed.detail, notifier())}
    try:
        report = deliver_finding(
            parsed.detail,
            alert_channels(),
            response_policy(),
            now=datetime.now(UTC),
            asff=asff_for(parsed.resources, context.invoked_function_arn),
        )
    except FindingDeliveryIncomplete as incomplete:  # raised again: Lambda retries the delivery
        logger.error("finding partly delivered", extra={"delivery": vars(incomplete.report)})
        raise
    metrics.add_metric(name="FindingsDelivered", unit="Count", value=1)
    metrics.add_metric(name="SubjectsBlocked", unit="Count", value=len(report.blocked))
    logger.info("finding delivered", extra={"delivery": vars(report)})
    return vars(report)
