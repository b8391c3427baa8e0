"""Task: import the request's client certificate revocation list into the new endpoint."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.tasks import EndpointTask
from cvpn_shared.provisioning.steps import import_revocation_list
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=EndpointTask)
def lambda_handler(event: EndpointTask, context: LambdaContext) -> dict[str, Any]:
    return import_revocation_list(clientvpn_api(), event.request, event.endpoint_id)
