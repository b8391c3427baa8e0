"""Task: validate the request (model, then pre-flight rules) before anything is created."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.tasks import ValidateTask
from cvpn_shared.provisioning.settings import get_settings
from cvpn_shared.provisioning.validation import validate_request
from cvpn_shared.provisioning.wiring import inventory


@logger.inject_lambda_context
@event_parser(model=ValidateTask)
def lambda_handler(event: ValidateTask, context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    return validate_request(
        event.request,
        inventory(),
        endpoint_quota=settings.endpoint_quota,
        client_connect_available=bool(settings.client_connect_function_arn),
    )
