"""The expiry schedule of a grant in EventBridge Scheduler (moto): one per grant, named after it,
moved by an extension, gone after a revocation; and what it sends the expire function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from cvpn_shared.access.grants.dal import SchedulerExpiry
from cvpn_shared.access.grants.events import GrantExpiryEvent

GRANT = "g-" + "ab" * 16
TARGET = "arn:aws:lambda:us-east-1:123456789012:function:expire-grant"
ROLE = "arn:aws:iam::123456789012:role/grant-scheduler"


@pytest.fixture
def scheduler() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("scheduler", region_name="us-east-1")
        client.create_schedule_group(Name="grants")
        yield client


def test_a_grant_has_one_schedule_that_moves_and_goes(scheduler: Any) -> None:
    expiry = SchedulerExpiry(scheduler, group_name="grants", target_arn=TARGET, role_arn=ROLE)
    end = datetime(2026, 3, 2, 17, 30, 5, tzinfo=UTC)
    expiry.set(GRANT, end)
    schedule = scheduler.get_schedule(Name=GRANT, GroupName="grants")
    assert schedule["ScheduleExpression"] == "at(2026-03-02T17:30:05)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == TARGET and schedule["Target"]["RoleArn"] == ROLE
    assert json.loads(schedule["Target"]["Input"]) == {
        "grant_id": GRANT,
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }

    expiry.set(GRANT, (end + timedelta(hours=3)).astimezone(datetime.now().astimezone().tzinfo))
    moved = scheduler.get_schedule(Name=GRANT, GroupName="grants")
    assert moved["ScheduleExpression"] == "at(2026-03-02T20:30:05)"  # always written in UTC
    assert len(scheduler.list_schedules(GroupName="grants")["Schedules"]) == 1

    expiry.remove(GRANT)
    assert scheduler.list_schedules(GroupName="grants")["Schedules"] == []
    expiry.remove(GRANT)  # already gone (it fired and deleted itself): fine


def test_the_expiry_event_takes_the_time_scheduler_filled_in() -> None:
    event = GrantExpiryEvent.model_validate({"grant_id": GRANT, "scheduled_time": "2026-03-02T17:30:05Z"})
    assert event.scheduled_time == datetime(2026, 3, 2, 17, 30, 5, tzinfo=UTC)
    unfilled = GrantExpiryEvent.model_validate(
        {"grant_id": GRANT, "scheduled_time": "<aws.scheduler.scheduled-time>"}
    )
    assert unfilled.scheduled_time is None
    assert GrantExpiryEvent.model_validate({"grant_id": GRANT}).scheduled_time is None


@pytest.mark.parametrize(
    "event",
    [
        {"grant_id": "g-1"},
        {"grant_id": "grant#g-" + "ab" * 16},
        {},
        {"grant_id": GRANT, "scheduled_time": "2026-03-02T17:30:05"},  # no zone: refused
    ],
)
def test_a_malformed_expiry_event_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        GrantExpiryEvent.model_validate(event)
