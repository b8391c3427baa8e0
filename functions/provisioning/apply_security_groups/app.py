"""Task: apply the request's security groups to the endpoint's target network."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.tasks import EndpointTask
from cvpn_shared.provisioning.steps import apply_security_groups
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=EndpointTask)
def lambda_handler(event: EndpointTask, context: LambdaContext) -> dict[str, Any]:
    return apply_security_groups(clientvpn_api(), event.request, event.endpoint_id)
