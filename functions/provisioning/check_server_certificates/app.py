"""Scheduled: find managed endpoints whose server certificate expires soon; alarm, and rotate it
where the endpoint's document allows."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger, metrics
from cvpn_shared.provisioning.server_certificates import run_server_certificate_check
from cvpn_shared.provisioning.settings import get_settings
from cvpn_shared.provisioning.wiring import (
    acm_certificates,
    drift_events,
    notifier,
    request_records,
    update_workflow,
)


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    summary = run_server_certificate_check(
        acm_certificates(),
        request_records(),
        update_workflow(),
        drift_events(),
        notifier(),
        threshold_days=get_settings().server_certificate_expiry_days,
        now=event.time,
    )
    # The alarm watches this count; the event and the notification name each endpoint and its days.
    # Published only when not zero: a metric with data costs by the month, and the alarm treats a day
    # without data as all clear.
    if summary["expiring"]:
        metrics.add_metric(name="ServerCertificatesExpiring", unit="Count", value=len(summary["expiring"]))
    if summary["rotations_started"]:
        metrics.add_metric(
            name="ServerCertificateRotationsStarted", unit="Count", value=len(summary["rotations_started"])
        )
    logger.info(
        "server certificates checked",
        extra={"certificates": {key: value for key, value in summary.items() if key != "reports"}},
    )
    return summary
