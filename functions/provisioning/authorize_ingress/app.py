"""Task: authorize one ingress rule (one Map iteration)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger
from cvpn_shared.provisioning.models.tasks import AuthorizeRuleTask
from cvpn_shared.provisioning.steps import authorize_rule
from cvpn_shared.provisioning.wiring import clientvpn_api


@logger.inject_lambda_context
@event_parser(model=AuthorizeRuleTask)
def lambda_handler(event: AuthorizeRuleTask, context: LambdaContext) -> dict[str, Any]:
    return authorize_rule(clientvpn_api(), event.request, event.endpoint_id, event.rule)
