"""Task: create the Client VPN endpoint (idempotent via its ClientToken), or adopt the live one."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.tasks import CreateEndpointTask
from cvpn_shared.provisioning.settings import get_settings
from cvpn_shared.provisioning.steps import create_endpoint
from cvpn_shared.provisioning.wiring import clientvpn_api, connection_log_groups


@logger.inject_lambda_context
@event_parser(model=CreateEndpointTask)
def lambda_handler(event: CreateEndpointTask, context: LambdaContext) -> dict[str, Any]:
    return create_endpoint(
        clientvpn_api(),
        event.request,
        connection_log_groups(),
        attempt=event.execution_id,
        existing_endpoint_id=event.existing_endpoint_id,
        client_connect_function_arn=get_settings().client_connect_function_arn or None,
    ).model_dump()
