"""Task: one step of tearing an endpoint down (rollback and decommission)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.tasks import TeardownTask
from cvpn_shared.provisioning.teardown import teardown_step
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=TeardownTask)
def lambda_handler(event: TeardownTask, context: LambdaContext) -> dict[str, Any]:
    return teardown_step(clientvpn_api(), event.endpoint_id, event.poll, event.absent_checks).model_dump()
