"""Task: record the outcome in the requests table and publish the notification."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter

from cvpn_shared.core.observability import logger, metrics
from cvpn_shared.provisioning.models.tasks import (
    RecordDecommissionFailureTask,
    RecordDecommissionTask,
    RecordOutcomeTask,
    RecordSuccessTask,
)
from cvpn_shared.provisioning.outcome import (
    record_decommission,
    record_decommission_failure,
    record_failure,
    record_success,
)
from cvpn_shared.provisioning.wiring import notifier, request_records

_TASK: TypeAdapter[Any] = TypeAdapter(RecordOutcomeTask)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = _TASK.validate_python(event)
    if isinstance(task, RecordSuccessTask):
        metrics.add_metric(name="ProvisioningSucceeded", unit="Count", value=1)
        return record_success(
            request_records(),
            notifier(),
            task.request,
            task.result,
            execution_id=task.execution_id,
            started_at=task.started_at,
            warnings=task.warnings,
        )
    if isinstance(task, RecordDecommissionTask):
        metrics.add_metric(name="EndpointDecommissioned", unit="Count", value=1)
        return record_decommission(
            request_records(),
            notifier(),
            request_id=task.request_id,
            requester=task.requester,
            endpoint_id=task.endpoint_id,
            execution_id=task.execution_id,
            started_at=task.started_at,
        )
    if isinstance(task, RecordDecommissionFailureTask):
        metrics.add_metric(name="DecommissionFailed", unit="Count", value=1)
        return record_decommission_failure(
            request_records(),
            notifier(),
            request_id=task.request_id,
            endpoint_id=task.endpoint_id,
            error=task.error.Error,
            cause=task.error.Cause,
            execution_id=task.execution_id,
            started_at=task.started_at,
        )
    metrics.add_metric(name="ProvisioningFailed", unit="Count", value=1)
    return record_failure(
        request_records(),
        notifier(),
        request_id=task.request_id,
        requester=task.requester,
        error=task.error.Error,
        cause=task.error.Cause,
        endpoint_id=task.endpoint_id,
        rolled_back=task.rolled_back,
        execution_id=task.execution_id,
        started_at=task.started_at,
    )
