"""Task: find the product-managed endpoint a decommission request names."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.decommission import resolve_endpoint
from cvpn_shared.provisioning.models.tasks import ResolveEndpointTask
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=ResolveEndpointTask)
def lambda_handler(event: ResolveEndpointTask, context: LambdaContext) -> dict[str, Any]:
    return resolve_endpoint(clientvpn_api(), request_id=event.request_id, endpoint_id=event.endpoint_id)
