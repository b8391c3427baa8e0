"""Task: read the live endpoint and plan the changes to the desired document (Describe calls only)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.update_tasks import PlanUpdateTask
from cvpn_shared.provisioning.settings import get_settings
from cvpn_shared.provisioning.update import plan_live_endpoint
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=PlanUpdateTask)
def lambda_handler(event: PlanUpdateTask, context: LambdaContext) -> dict[str, Any]:
    validated = event.validated
    return plan_live_endpoint(
        clientvpn_api(),
        validated.request,
        validated.endpoint_id,
        revision=validated.revision,
        client_connect_function_arn=get_settings().client_connect_function_arn,
        warnings=list(validated.warnings),
    )
