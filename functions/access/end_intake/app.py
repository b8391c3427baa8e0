"""Task: the intake ends; give back the client CIDR a request without an endpoint held, and say why it
ended (the provisioning's own error and cause) for the Fail state, the ticket and the status API."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.intake_end import IntakeEndTask, end_intake
from cvpn_shared.access.wiring import client_cidr_allocations
from cvpn_shared.core.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=IntakeEndTask)
def lambda_handler(event: IntakeEndTask, context: LambdaContext) -> dict[str, Any]:
    answer = end_intake(event, allocations=client_cidr_allocations())
    if answer["released_client_cidr_block"]:
        metrics.add_metric(name="ClientCidrReleased", unit="Count", value=1)
    return answer
