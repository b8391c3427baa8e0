"""Task: associate one subnet with the endpoint (one Map iteration)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.tasks import AssociateSubnetTask
from cvpn_shared.provisioning.steps import associate_subnet
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=AssociateSubnetTask)
def lambda_handler(event: AssociateSubnetTask, context: LambdaContext) -> dict[str, Any]:
    return associate_subnet(clientvpn_api(), event.request, event.endpoint_id, event.subnet_id).model_dump()
