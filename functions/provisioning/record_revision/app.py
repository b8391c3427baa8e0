"""Task: open, close or refuse a revision of an endpoint's desired state, and notify."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.core.observability import logger, metrics
from cvpn_shared.provisioning.models.update_tasks import RecordRevisionTask
from cvpn_shared.provisioning.update import (
    record_no_changes,
    record_refusal,
    record_update_failure,
    record_update_start,
    record_update_success,
)
from cvpn_shared.provisioning.wiring import notifier, request_records, revision_records


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=RecordRevisionTask)
def lambda_handler(event: RecordRevisionTask, context: LambdaContext) -> dict[str, Any]:
    if event.outcome == "started":
        return record_update_start(
            revision_records(), event.validated, event.plan, execution_id=event.execution_id
        )
    if event.outcome == "no-changes":
        return record_no_changes(
            revision_records(),
            request_records(),
            event.validated,
            event.plan,
            execution_id=event.execution_id,
        )
    if event.outcome == "refused":
        metrics.add_metric(name="UpdateRefused", unit="Count", value=1)
        return record_refusal(
            revision_records(), event.validated, event.plan, execution_id=event.execution_id
        )
    if event.outcome == "succeeded":
        metrics.add_metric(name="UpdateSucceeded", unit="Count", value=1)
        return record_update_success(
            revision_records(),
            request_records(),
            notifier(),
            event.validated,
            event.summary,
            configuration=event.configuration,
            execution_id=event.execution_id,
        )
    metrics.add_metric(name="UpdateFailed", unit="Count", value=1)
    error = event.error.Error if event.error else "UpdateFailed"
    cause = event.error.Cause if event.error else ""
    return record_update_failure(
        revision_records(),
        request_records(),
        notifier(),
        event.validated,
        error=error,
        cause=cause,
        undo=event.undo,
        rolled_back=event.rolled_back,
    )
