"""Task: make one change of the plan (one iteration of the update loop)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.update_tasks import ApplyChangeTask
from cvpn_shared.provisioning.update import apply_change
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=ApplyChangeTask)
def lambda_handler(event: ApplyChangeTask, context: LambdaContext) -> dict[str, Any]:
    return apply_change(
        clientvpn_api(),
        request_id=event.validated.request.request_id,
        endpoint_id=event.validated.endpoint_id,
        revision=event.validated.revision,
        changes=list(event.changes),
        progress=event.progress.model_dump(),
    )
