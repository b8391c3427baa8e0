"""The local cloud counts every AWS API call it serves, by service and operation, exactly.

JSON protocols are named by ``X-Amz-Target``, query protocols by ``Action`` (in a form body or in the
query string), REST protocols by method and path; the service comes from the SigV4 credential scope.
"""

from __future__ import annotations

import contextlib
import io
import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.config import Config

from localcloud.cloud import ApiCallCounter, LocalCloud


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(time_scale=1.0) as running:
        yield running


@pytest.fixture
def counted(cloud: LocalCloud) -> LocalCloud:
    cloud.reset_api_calls()
    return cloud


def _admin_api_calls(cloud: LocalCloud) -> dict[str, int]:
    with urllib.request.urlopen(f"{cloud.endpoint_url}/_localcloud/api-calls", timeout=10) as response:
        answer: dict[str, int] = json.loads(response.read())
    return answer


def test_calls_of_every_protocol_are_counted_by_service_and_operation(counted: LocalCloud) -> None:
    """Given a fresh count, when boto3 makes calls in the JSON, query, EC2 and REST protocols, then
    each is counted once under its service and operation, and nothing else is."""
    dynamodb = counted.client("dynamodb")
    dynamodb.create_table(
        TableName="counted",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(3):
        dynamodb.put_item(TableName="counted", Item={"pk": {"S": f"item-{n}"}})
    counted.client("logs").create_log_group(logGroupName="/counted/logs")
    sns = counted.client("sns")
    topic_arn = sns.create_topic(Name="counted")["TopicArn"]
    assert sns.publish(TopicArn=topic_arn, Message="hello")["MessageId"]  # the form body reached moto
    counted.client("sqs").create_queue(QueueName="counted")
    counted.client("ec2").describe_vpcs()
    s3 = counted.client("s3")
    s3.create_bucket(Bucket="counted")
    s3.put_object(Bucket="counted", Key="a/b.txt", Body=b"x")
    counted.client("lambda").list_functions()

    assert counted.api_calls() == {
        "dynamodb:CreateTable": 1,
        "dynamodb:PutItem": 3,
        "logs:CreateLogGroup": 1,
        "sns:CreateTopic": 1,
        "sns:Publish": 1,
        "sqs:CreateQueue": 1,
        "ec2:DescribeVpcs": 1,
        "s3:PUT /counted": 1,
        "s3:PUT /counted/a/b.txt": 1,
        "lambda:GET /2015-03-31/functions": 1,
    }


def test_presigned_and_unsigned_requests(counted: LocalCloud) -> None:
    """A SigV4 presigned URL is counted under the service of its X-Amz-Credential; an unsigned request
    under "unknown", with the Action of its query string."""
    s3 = counted.client("s3", config=Config(signature_version="s3v4"))
    s3.create_bucket(Bucket="presigned")
    s3.put_object(Bucket="presigned", Key="k", Body=b"body")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "k"})
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"body"
    unsigned = f"{counted.endpoint_url}/?Action=DescribeRegions&Version=2016-11-15"
    with contextlib.suppress(urllib.error.HTTPError), urllib.request.urlopen(unsigned, timeout=10):
        pass  # whatever moto answers an unsigned call, it was made

    calls = counted.api_calls()
    assert calls["s3:GET /presigned/k"] == 1
    assert calls["unknown:DescribeRegions"] == 1


def test_concurrent_calls_are_all_counted(counted: LocalCloud) -> None:
    """Given 8 threads each making 25 calls at once, then exactly 200 are counted."""
    logs = counted.client("logs")

    def describe(_: int) -> Any:
        return logs.describe_log_groups(limit=1)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(describe, range(200)))

    assert counted.api_calls() == {"logs:DescribeLogGroups": 200}


def test_admin_route_merges_client_vpn_counts_and_is_not_counted(counted: LocalCloud) -> None:
    """``GET /_localcloud/api-calls`` answers the Client VPN counts by bare name (as before) and every
    call by "service:Operation"; admin requests are not AWS calls; ``reset_api_calls`` starts over."""
    from localcloud.faults import reset_api_call_counts

    reset_api_call_counts()
    counted.client("ec2").describe_client_vpn_endpoints()
    counted.client("ssm").put_parameter(Name="/counted", Value="v", Type="String")

    first = _admin_api_calls(counted)
    assert first == {
        "DescribeClientVpnEndpoints": 1,
        "ec2:DescribeClientVpnEndpoints": 1,
        "ssm:PutParameter": 1,
    }
    assert _admin_api_calls(counted) == first

    counted.reset_api_calls()
    assert counted.api_calls() == {}
    assert _admin_api_calls(counted) == {"DescribeClientVpnEndpoints": 1}


def test_a_form_body_is_put_back_for_the_application() -> None:
    """The counter reads a form body to find its Action and leaves the same bytes to be read."""
    body = b"Action=Publish&Version=2010-03-31&Message=a%26b"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=testing/20261128/us-east-1/sns/aws4_request, "
        "SignedHeaders=host, Signature=0",
        "wsgi.input": io.BytesIO(body),
    }
    counter = ApiCallCounter()

    assert counter.count(environ) == "sns:Publish"
    assert environ["wsgi.input"].read() == body
    assert counter.counts() == {"sns:Publish": 1}
