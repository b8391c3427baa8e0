"""After a grant changed, for a grant from a ticket: its day-before reminder schedule (EventBridge
Scheduler, in the grants' schedule group) set, moved or removed, and the comment function invoked
asynchronously (Lambda retries it) for the ended comment (the intake posts the active one). A
``cvpn_shared.access.grants.logic.GrantHook``. Every failure is logged and swallowed: the grant has
already changed, and a comment never changes it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.access.grant_comments import (
    CommentMoment,
    commented,
    reminder_at,
    reminder_schedule_name,
    was_active,
)
from cvpn_shared.access.grants.models import Grant
from cvpn_shared.core.aws_errors import error_code

__all__ = ["TicketFollowUp"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TicketFollowUp:
    """Reminder schedules and ended comments for grants from a ticket with a callback."""

    scheduler_client: Any
    lambda_client: Any
    group_name: str
    comment_function_arn: str
    role_arn: str

    def activated(self, grant: Grant, now: datetime) -> None:
        if not commented(grant):
            return
        self._reminder(grant, now)

    def extended(self, grant: Grant, now: datetime) -> None:
        if commented(grant):
            self._reminder(grant, now)

    def ended(self, grant: Grant, now: datetime) -> None:
        if not commented(grant) or not was_active(grant):
            return
        self._remove_reminder(grant.grant_id)
        self._comment(grant, "ended")

    def _reminder(self, grant: Grant, now: datetime) -> None:
        due = reminder_at(grant, now)
        if due is None:
            self._remove_reminder(grant.grant_id)
            return
        params: dict[str, Any] = {
            "Name": reminder_schedule_name(grant.grant_id),
            "GroupName": self.group_name,
            "ScheduleExpression": f"at({due:%Y-%m-%dT%H:%M:%S})",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "Target": {
                "Arn": self.comment_function_arn,
                "RoleArn": self.role_arn,
                "Input": json.dumps(
                    {
                        "grant_id": grant.grant_id,
                        "moment": "reminder",
                        "scheduled_time": "<aws.scheduler.scheduled-time>",
                    }
                ),
                "RetryPolicy": {"MaximumRetryAttempts": 20, "MaximumEventAgeInSeconds": 3600},
            },
        }
        try:
            try:
                self.scheduler_client.create_schedule(**params)
            except ClientError as error:
                if error_code(error) != "ConflictException":
                    raise
                self.scheduler_client.update_schedule(**params)
        except Exception:
            logger.exception("grant %s: the day-before reminder could not be scheduled", grant.grant_id)

    def _remove_reminder(self, grant_id: str) -> None:
        try:
            self.scheduler_client.delete_schedule(
                Name=reminder_schedule_name(grant_id), GroupName=self.group_name
            )
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                logger.exception("grant %s: the reminder schedule could not be removed", grant_id)
        except Exception:
            logger.exception("grant %s: the reminder schedule could not be removed", grant_id)

    def _comment(self, grant: Grant, moment: CommentMoment) -> None:
        try:
            self.lambda_client.invoke(
                FunctionName=self.comment_function_arn,
                InvocationType="Event",
                Payload=json.dumps({"grant_id": grant.grant_id, "moment": moment}).encode(),
            )
        except Exception:
            logger.exception("grant %s: the %s comment could not be sent", grant.grant_id, moment)
