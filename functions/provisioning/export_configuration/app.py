"""Task: export the client configuration, store it encrypted, return the summary naming where it is."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.tasks import EndpointTask
from cvpn_shared.provisioning.outcome import export_configuration
from cvpn_shared.provisioning.wiring import clientvpn_api, configuration_store


@logger.inject_lambda_context
@event_parser(model=EndpointTask)
def lambda_handler(event: EndpointTask, context: LambdaContext) -> dict[str, Any]:
    return export_configuration(
        clientvpn_api(),
        configuration_store(),
        event.request,
        event.endpoint_id,
    )
