"""Fault injection for services other than Client VPN: a throttled, slow or partly answering DynamoDB.

Knobs are set per ``"service:Operation"`` (``dynamodb:BatchGetItem``); the SDK sees DynamoDB's own
error shapes, so its retry logic and the product's budgets are exercised as against AWS.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from localcloud.cloud import LocalCloud
from localcloud.faults import get_fault_injector

TABLE = "faulted"
ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(time_scale=1.0) as running:
        dynamodb = running.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "a"}})
        yield running


@pytest.fixture
def faults(cloud: LocalCloud) -> Iterator[Any]:
    injector = get_fault_injector()
    injector.clear()
    yield injector
    injector.clear()


def batch_get(client: Any) -> dict[str, Any]:
    answer: dict[str, Any] = client.batch_get_item(
        RequestItems={TABLE: {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}]}}
    )
    return answer


def test_a_throttled_batch_read_answers_dynamodbs_throttle(cloud: LocalCloud, faults: Any) -> None:
    faults.configure("dynamodb:BatchGetItem", throttle_rate=1.0)

    with pytest.raises(ClientError) as refused:
        batch_get(cloud.client("dynamodb", config=ONE_ATTEMPT))

    assert refused.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert faults.injected_counts() == {
        "dynamodb:BatchGetItem": {"ProvisionedThroughputExceededException": 1}
    }
    # Other operations, and the Client VPN "*" knobs, are untouched.
    assert cloud.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": "a"}})["Item"]


def test_a_throttled_batch_read_can_leave_every_key_unprocessed(cloud: LocalCloud, faults: Any) -> None:
    faults.configure("dynamodb:BatchGetItem", unprocessed_keys_rate=1.0)

    answer = batch_get(cloud.client("dynamodb"))

    assert answer["Responses"] == {}
    assert sorted(key["pk"]["S"] for key in answer["UnprocessedKeys"][TABLE]["Keys"]) == ["a", "b"]


def test_latency_is_real_time_and_an_sdk_read_timeout_sees_it(cloud: LocalCloud, faults: Any) -> None:
    faults.configure("dynamodb:BatchGetItem", latency_seconds=0.6)
    impatient = cloud.client("dynamodb", config=ONE_ATTEMPT.merge(Config(read_timeout=0.2)))

    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        batch_get(impatient)
    assert 0.15 <= time.monotonic() - started < 0.6

    started = time.monotonic()
    assert batch_get(cloud.client("dynamodb"))["Responses"][TABLE] == [{"pk": {"S": "a"}}]
    assert time.monotonic() - started >= 0.6


def test_the_admin_api_and_fail_with_use_the_services_error_shape(cloud: LocalCloud, faults: Any) -> None:
    body = json.dumps(
        {"operation": "dynamodb:BatchGetItem", "fail_with": "InternalServerError", "fail_count": 1}
    )
    request = urllib.request.Request(
        f"{cloud.endpoint_url}/_localcloud/faults", data=body.encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["operations"]["dynamodb:BatchGetItem"]["fail_count"] == 1

    with pytest.raises(ClientError) as failed:
        batch_get(cloud.client("dynamodb", config=ONE_ATTEMPT))
    assert failed.value.response["Error"]["Code"] == "InternalServerError"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert batch_get(cloud.client("dynamodb"))["Responses"][TABLE]  # the next call is served
