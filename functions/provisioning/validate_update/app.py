"""Task: validate an update (model, pre-flight rules, the managed endpoint, the revision number)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.update_tasks import ValidateUpdateTask
from cvpn_shared.provisioning.settings import get_settings
from cvpn_shared.provisioning.update import validate_update
from cvpn_shared.provisioning.wiring import inventory, request_records, revision_records


@logger.inject_lambda_context
@event_parser(model=ValidateUpdateTask)
def lambda_handler(event: ValidateUpdateTask, context: LambdaContext) -> dict[str, Any]:
    return validate_update(
        event.input.request,
        inventory(),
        request_records(),
        revision_records(),
        applied_by=event.input.applied_by,
        revision=event.input.revision,
        execution_id=event.execution_id,
        client_connect_available=bool(get_settings().client_connect_function_arn),
        users_notice=event.input.users_notice,
        new_configuration_needed=event.input.new_configuration_needed,
    )
