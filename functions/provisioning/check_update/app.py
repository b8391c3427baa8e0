"""Task: has the endpoint settled after a change or an undo? (one turn of the wait loop)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.update_tasks import CheckSettledTask
from cvpn_shared.provisioning.update import check_settled
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=CheckSettledTask)
def lambda_handler(event: CheckSettledTask, context: LambdaContext) -> dict[str, Any]:
    return check_settled(clientvpn_api(), event.endpoint_id, event.poll, strict=event.strict).model_dump()
