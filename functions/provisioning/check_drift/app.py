"""Scheduled: compare every managed endpoint with its last desired state; report drift."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger, metrics
from cvpn_shared.provisioning.drift import run_drift_check
from cvpn_shared.provisioning.settings import get_settings
from cvpn_shared.provisioning.wiring import clientvpn_api, drift_events, notifier, request_records


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    summary = run_drift_check(
        clientvpn_api(),
        request_records(),
        drift_events(),
        notifier(),
        client_connect_function_arn=get_settings().client_connect_function_arn,
        now=event.time,
    )
    if summary["drifted"]:  # a custom metric costs by the month once it has a data point
        metrics.add_metric(name="EndpointsDrifted", unit="Count", value=len(summary["drifted"]))
    logger.info("drift checked", extra={"drift": summary})
    return summary
