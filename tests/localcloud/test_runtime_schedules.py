"""Schedules created through the EventBridge Scheduler API fire on the emulated clock: a one-time
``at()`` schedule fires once at its time (or at once when its time passed unseen), with Scheduler's
context attributes filled in, and deletes itself when it asks to (ActionAfterCompletion DELETE)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.clock import Clock
from localcloud.scheduler import Scheduler
from tests.fixtures.polling import wait_until

# The local scheduler fires within a tick: a short timeout, polled often.
_wait = partial(wait_until, timeout=10, interval=0.02)

REGION = "us-east-1"
TARGET = "arn:aws:lambda:us-east-1:123456789012:function:expire"
INPUT = json.dumps(
    {
        "time": "<aws.scheduler.scheduled-time>",
        "arn": "<aws.scheduler.schedule-arn>",
        "attempt": "<aws.scheduler.attempt-number>",
    }
)


@pytest.fixture
def scheduler_api() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("scheduler", region_name=REGION)
        client.create_schedule_group(Name="grants")
        yield client


def _create(client: Any, name: str, at: datetime, *, after: str = "DELETE", update: bool = False) -> None:
    call = client.update_schedule if update else client.create_schedule
    call(
        Name=name,
        GroupName="grants",
        ScheduleExpression=f"at({at.astimezone(UTC):%Y-%m-%dT%H:%M:%S})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": TARGET, "RoleArn": "arn:aws:iam::123456789012:role/scheduler", "Input": INPUT},
        ActionAfterCompletion=after,
    )


def test_api_schedules_fire_once_on_the_emulated_clock(scheduler_api: Any) -> None:
    clock = Clock(time_scale=1.0)
    delivered: list[tuple[str, dict[str, Any]]] = []

    def names() -> list[str]:
        return [payload["arn"].rsplit("/", 1)[-1] for _, payload in delivered]

    at = (clock.now() + timedelta(hours=1)).replace(microsecond=0)
    _create(scheduler_api, "later", at)
    _create(scheduler_api, "missed", clock.now() - timedelta(hours=1), after="NONE")
    deliver = lambda arn, body: delivered.append((arn, json.loads(body)))  # noqa: E731
    with Scheduler(endpoint_url="http://127.0.0.1:9", clock=clock, deliver=deliver):
        _wait("the missed schedule to fire", lambda: names() == ["missed"])
        time.sleep(0.5)
        assert names() == ["missed"]  # once, and "later" waits for its time

        clock.advance(3600)
        _wait("the one-time schedule to fire", lambda: names() == ["missed", "later"])
        arn, payload = delivered[-1]
        assert arn == TARGET
        assert payload == {
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/grants/later",
            "attempt": "1",
        }

        def listed() -> set[str]:
            return {item["Name"] for item in scheduler_api.list_schedules(GroupName="grants")["Schedules"]}

        _wait("the fired DELETE schedule to go", lambda: listed() == {"missed"})

        # moved to a new time (as a grant's extension moves its expiry), it fires again, then
        _create(scheduler_api, "missed", clock.now() + timedelta(minutes=30), after="NONE", update=True)
        time.sleep(0.3)
        assert names() == ["missed", "later"]
        clock.advance(1800)
        _wait("the moved schedule to fire", lambda: names() == ["missed", "later", "missed"])


def test_a_deleted_or_disabled_api_schedule_does_not_fire(scheduler_api: Any) -> None:
    clock = Clock(time_scale=1.0)
    delivered: list[str] = []
    _create(scheduler_api, "revoked", clock.now() + timedelta(minutes=5))
    _create(scheduler_api, "kept", clock.now() + timedelta(minutes=5))
    with Scheduler(
        endpoint_url="http://127.0.0.1:9",
        clock=clock,
        deliver=lambda arn, body: delivered.append(body.decode()),
    ):
        time.sleep(0.3)
        scheduler_api.delete_schedule(Name="revoked", GroupName="grants")
        time.sleep(0.3)  # seen within a tenth of a second
        clock.advance(600)
        _wait("the kept schedule to fire", lambda: len(delivered) == 1)
        time.sleep(0.3)
        assert len(delivered) == 1 and "kept" in delivered[0]
