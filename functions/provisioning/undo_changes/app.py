"""Task: undo the changes this update made, newest first (the update's rollback)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.update_tasks import UndoChangesTask
from cvpn_shared.provisioning.update import complete_undo, undo_changes
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=UndoChangesTask)
def lambda_handler(event: UndoChangesTask, context: LambdaContext) -> dict[str, Any]:
    if event.undo is not None:
        return complete_undo(
            clientvpn_api(),
            request_id=event.validated.request.request_id,
            endpoint_id=event.validated.endpoint_id,
            revision=event.validated.revision,
            undo=event.undo,
        )
    return undo_changes(
        clientvpn_api(),
        request_id=event.validated.request.request_id,
        endpoint_id=event.validated.endpoint_id,
        revision=event.validated.revision,
        changes=list(event.changes),
        progress=event.progress.model_dump(),
        in_flight=event.in_flight,
    )
