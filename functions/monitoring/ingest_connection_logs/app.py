"""Scheduled: read the endpoints' connection logs, detect, publish findings to the bus."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger, metrics
from cvpn_shared.monitoring.ingest import record_ingest_metrics
from cvpn_shared.monitoring.wiring import connection_log_ingest, log_group_owners, monitored_log_groups


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    ingest = connection_log_ingest(owner=context.aws_request_id, function_arn=context.invoked_function_arn)
    log_groups = monitored_log_groups()
    report = ingest.run(
        log_groups,
        now=event.time,
        remaining_ms=context.get_remaining_time_in_millis,
        owners=log_group_owners().by_log_group() if log_groups else {},
    )
    record_ingest_metrics(metrics, report)
    summary = report.summary()
    logger.info("connection logs ingested", extra={"ingest": summary})
    return summary
