"""Scheduled at a grant's end (EventBridge Scheduler, one-time): expire the grant and cut the user's
live sessions on its endpoint. Idempotent: a grant revoked, extended past now or expired already is
left as it is."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.grants.events import GrantExpiryEvent
from cvpn_shared.access.wiring import access_grants
from cvpn_shared.core.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=GrantExpiryEvent)
def lambda_handler(event: GrantExpiryEvent, context: LambdaContext) -> dict[str, Any]:
    outcome = access_grants().expire(event.grant_id, not_before=event.scheduled_time)
    if outcome is None:
        logger.info("nothing to expire", extra={"grant_id": event.grant_id})
        return {"grant_id": event.grant_id, "expired": False}
    metrics.add_metric(name="GrantsExpired", unit="Count", value=1)
    metrics.add_metric(name="GrantSessionsTerminated", unit="Count", value=outcome.sessions_terminated)
    logger.info(
        "grant expired",
        extra={
            "grant_id": event.grant_id,
            "endpoint_id": outcome.grant.endpoint_id,
            "vpn_user": outcome.grant.person.vpn_user,
            "sessions_terminated": outcome.sessions_terminated,
        },
    )
    return {
        "grant_id": event.grant_id,
        "expired": True,
        "sessions_terminated": outcome.sessions_terminated,
    }
