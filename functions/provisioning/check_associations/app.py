"""Task: are the associations done and the endpoint available? (one turn of the wait loop)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.tasks import CheckTask
from cvpn_shared.provisioning.steps import check_associations
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=CheckTask)
def lambda_handler(event: CheckTask, context: LambdaContext) -> dict[str, Any]:
    return check_associations(clientvpn_api(), event.endpoint_id, event.poll).model_dump()
