"""Task: create one route through one associated subnet (one Map iteration)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.tasks import CreateRouteTask
from cvpn_shared.provisioning.steps import create_route
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=CreateRouteTask)
def lambda_handler(event: CreateRouteTask, context: LambdaContext) -> dict[str, Any]:
    return create_route(
        clientvpn_api(),
        event.request,
        event.endpoint_id,
        event.destination_cidr,
        event.subnet_id,
        event.description,
    )
