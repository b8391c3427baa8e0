"""The fixture SAM app deployed onto the local cloud: every part of it works, wired only by the template."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from localcloud.clock import Clock
from localcloud.deploy import deploy_stack
from localcloud.gateway import MAX_REQUEST_BYTES, DefaultJwtVerifier, HttpGateway
from localcloud.scheduler import Scheduler
from localcloud.stack import DeployedStack

from .conftest import REGION, SAM_APP, STACK_NAME, LocalAws

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ISSUER = "https://issuer.fixture.local"
SIGNING_KEY = RSAKey.generate_key(2048, parameters={"kid": "fixture-key", "use": "sig", "alg": "RS256"})


def _client(local_aws: LocalAws, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=local_aws.endpoint_url)  # type: ignore[call-overload]


def _token(**claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": "fixture-client",
        "sub": "ada",
        "scope": "openid greetings/read",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode({"alg": "RS256", "kid": "fixture-key"}, payload, SIGNING_KEY)


@pytest.fixture(scope="module")
def gateway(deployed: DeployedStack, local_aws: LocalAws) -> Iterator[HttpGateway]:
    verifier = DefaultJwtVerifier(jwks={"keys": [SIGNING_KEY.as_dict(private=False)]})
    with HttpGateway(endpoint_url=local_aws.endpoint_url, jwt_verifier=verifier) as running:
        running.add_stack(deployed)
        yield running


def _request(
    gateway: HttpGateway,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes, list[str]]:
    address = urlsplit(gateway.base_url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        cookies = response.headers.get_all("set-cookie") or []
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read(), cookies
    finally:
        connection.close()


def _wait_for_items(
    local_aws: LocalAws, deployed: DeployedStack, origin: str, timeout: float = 30.0
) -> list[Any]:
    """Items the fixture function recorded for deliveries of ``origin`` (polls: deliveries are async)."""
    table = boto3.resource("dynamodb", region_name=REGION, endpoint_url=local_aws.endpoint_url).Table(
        deployed.outputs["VisitsTableName"]
    )
    deadline = time.monotonic() + timeout
    while True:
        items = [item for item in table.scan()["Items"] if item["origin"] == origin]
        if items or time.monotonic() > deadline:
            return items
        time.sleep(0.1)


def test_deploy_reads_everything_back_from_the_template(deployed: DeployedStack) -> None:
    """Given the fixture app, when deployed, then functions, APIs, schedules and outputs come back."""
    assert set(deployed.functions) == {"GreetingFunction"}
    assert set(deployed.state_machines) == {"GreetingStateMachine"}
    apis = {api.logical_id: api for api in deployed.http_apis}
    assert set(apis) == {"ServerlessHttpApi", "SecureApi"}
    assert {route.route_key for route in apis["ServerlessHttpApi"].routes} == {
        "GET /hello/{name}",
        "ANY /files/{proxy+}",
    }
    assert apis["SecureApi"].stage == "v1"
    whoami = apis["SecureApi"].routes[0]
    assert whoami.authorizer is not None and whoami.authorizer.issuer == ISSUER
    assert whoami.scopes == ("greetings/read",)
    function_arn = deployed.functions["GreetingFunction"].arn
    assert all(route.function_arn == function_arn for api in apis.values() for route in api.routes)
    schedules = {schedule.logical_id: schedule for schedule in deployed.schedules}
    assert schedules["GreetingFunctionTick"].expression == "rate(1 minute)"
    assert schedules["GreetingFunctionNightly"].enabled is False
    assert schedules["GreetingFunctionReminder"].kind == "scheduler"
    assert deployed.outputs["ApiUrl"] == (
        f"https://{apis['ServerlessHttpApi'].api_id}.execute-api.{REGION}.amazonaws.com"
    )
    assert deployed.outputs["GreetingFunctionArn"] == function_arn


def test_the_log_group_loop_gives_the_function_its_log_group(
    deployed: DeployedStack, local_aws: LocalAws
) -> None:
    """Given the fixture's Fn::ForEach of function log groups, when deployed, then the function has
    its /aws/lambda/<function name> group with the loop's retention, as CloudFormation would make."""
    function_name = deployed.physical_ids["GreetingFunction"]
    logs = _client(local_aws, "logs")

    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{function_name}")["logGroups"]

    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [
        (f"/aws/lambda/{function_name}", 7)
    ]
    assert deployed.physical_ids["GreetingFunctionLogGroup"] == f"/aws/lambda/{function_name}"


def test_table_accepts_put_and_get(deployed: DeployedStack, local_aws: LocalAws) -> None:
    dynamodb = _client(local_aws, "dynamodb")
    table_name = deployed.physical_ids["VisitsTable"]
    dynamodb.put_item(TableName=table_name, Item={"pk": {"S": "probe"}, "origin": {"S": "test"}})
    item = dynamodb.get_item(TableName=table_name, Key={"pk": {"S": "probe"}})["Item"]
    assert item["origin"] == {"S": "test"}


def test_function_runs_with_its_layer_and_table(deployed: DeployedStack, local_aws: LocalAws) -> None:
    """The real handler runs: it imports from the layer and writes to the table named in Globals."""
    response = _client(local_aws, "lambda").invoke(
        FunctionName=deployed.function_name("GreetingFunction"),
        Payload=json.dumps({"kind": "direct", "id": "1"}).encode(),
    )
    assert "FunctionError" not in response, response["Payload"].read()
    assert json.loads(response["Payload"].read()) == {"recorded": "direct#1"}
    assert _wait_for_items(local_aws, deployed, "direct")


def test_state_machine_definition_has_substitutions_applied(
    deployed: DeployedStack, local_aws: LocalAws
) -> None:
    definition_text = _client(local_aws, "stepfunctions").describe_state_machine(
        stateMachineArn=deployed.state_machines["GreetingStateMachine"]
    )["definition"]
    assert "${" not in definition_text
    task = json.loads(definition_text)["States"]["Greet"]
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"]["FunctionName"] == deployed.functions["GreetingFunction"].arn


def test_http_route_delivers_a_payload_v2_event(gateway: HttpGateway) -> None:
    status, headers, body, cookies = _request(
        gateway,
        "GET",
        "/hello/Ada?lang=en&tag=a&tag=b",
        headers={"X-Trace": "abc", "Cookie": "session=1; theme=dark", "User-Agent": "pytest"},
    )
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert cookies == ["visited=yes"]
    answer = json.loads(body)
    assert answer["greeting"] == "Hello, Ada!"
    event = answer["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /hello/{name}"
    assert event["rawPath"] == "/hello/Ada"
    assert event["rawQueryString"] == "lang=en&tag=a&tag=b"
    assert event["queryStringParameters"] == {"lang": "en", "tag": "a,b"}
    assert event["pathParameters"] == {"name": "Ada"}
    assert event["cookies"] == ["session=1", "theme=dark"]
    assert event["headers"]["x-trace"] == "abc" and "cookie" not in event["headers"]
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/hello/Ada",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "pytest",
    }
    assert context["routeKey"] == "GET /hello/{name}" and context["stage"] == "$default"
    assert context["accountId"] == "123456789012" and context["requestId"]
    assert isinstance(context["timeEpoch"], int) and context["time"].endswith("+0000")
    assert event["isBase64Encoded"] is False and "body" not in event
    assert gateway.access_log[-1]["status"] == 200


def test_greedy_route_base64_body_and_unknown_path(gateway: HttpGateway) -> None:
    status, _, body, _ = _request(
        gateway, "POST", "/files/a/b/c.bin", body=b"\x00\xff\x10", headers={"Content-Type": "image/png"}
    )
    assert status == 200, body
    event = json.loads(body)["event"]
    assert event["routeKey"] == "ANY /files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b/c.bin"}
    assert event["isBase64Encoded"] is True and event["body"] == "AP8Q"

    status, _, body, _ = _request(gateway, "GET", "/nowhere")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})


def test_request_over_10_mb_is_refused(gateway: HttpGateway) -> None:
    address = urlsplit(gateway.base_url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
    try:
        connection.putrequest("POST", "/files/big")
        connection.putheader("Content-Length", str(MAX_REQUEST_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (
            413,
            {"message": "Request Entity Too Large"},
        )
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("token", "expected_status"),
    [
        (None, 401),
        ("not-a-jwt", 401),
        (_token(aud="someone-else"), 401),
        (_token(exp=int(time.time()) - 60), 401),
        (_token(iss="https://other.issuer"), 401),
        (_token(scope="openid"), 403),
        (_token(), 200),
    ],
    ids=["missing", "garbage", "wrong-audience", "expired", "wrong-issuer", "scope-missing", "valid"],
)
def test_jwt_authorizer_guards_the_secure_api(
    gateway: HttpGateway, token: str | None, expected_status: int
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, _, body, _ = _request(gateway, "GET", "/v1/whoami", headers=headers)
    assert status == expected_status, body
    if expected_status == 401:
        assert json.loads(body) == {"message": "Unauthorized"}
    elif expected_status == 403:
        assert json.loads(body) == {"message": "Forbidden"}
    else:
        event = json.loads(body)["event"]
        assert event["requestContext"]["stage"] == "v1"
        jwt_context = event["requestContext"]["authorizer"]["jwt"]
        assert jwt_context["claims"]["sub"] == "ada"
        assert jwt_context["scopes"] == ["openid", "greetings/read"]


def test_scheduled_rule_fires_on_the_emulated_clock(deployed: DeployedStack, local_aws: LocalAws) -> None:
    """rate(1 minute) at time scale 600 fires about every 0.1 s; the disabled cron rule does not fire."""
    names = {schedule.logical_id: schedule.name for schedule in deployed.schedules}
    clock = Clock(time_scale=600)
    with Scheduler(deployed.schedules, endpoint_url=local_aws.endpoint_url, clock=clock) as scheduler:
        deadline = time.monotonic() + 10
        while (
            len([fired for fired in scheduler.fired if fired.schedule == names["GreetingFunctionTick"]]) < 2
        ):
            assert time.monotonic() < deadline, scheduler.fired
            time.sleep(0.05)
    ticks = [fired for fired in scheduler.fired if fired.schedule == names["GreetingFunctionTick"]]
    event = ticks[0].payload
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [f"arn:aws:events:{REGION}:123456789012:rule/{ticks[0].schedule}"]
    assert event["detail"] == {} and event["account"] == "123456789012" and event["time"].endswith("Z")
    assert not [fired for fired in scheduler.fired if fired.schedule == names["GreetingFunctionNightly"]]
    assert _wait_for_items(local_aws, deployed, "Scheduled Event")


def test_fire_now_honours_state_and_scheduler_input(deployed: DeployedStack, local_aws: LocalAws) -> None:
    scheduler = Scheduler(deployed.schedules, endpoint_url=local_aws.endpoint_url)
    try:
        assert scheduler.fire_now("GreetingFunctionNightly") == []
        assert len(scheduler.fire_now("GreetingFunctionNightly", force=True)) == 1
        (reminder,) = scheduler.fire_now("GreetingFunctionReminder")
        assert reminder.payload == {"kind": "reminder"}
    finally:
        scheduler.stop()
    assert _wait_for_items(local_aws, deployed, "reminder")


def test_matching_event_reaches_the_lambda_target(deployed: DeployedStack, local_aws: LocalAws) -> None:
    events = _client(local_aws, "events")
    entries = events.put_events(
        Entries=[
            {"Source": "fixture.app", "DetailType": "Visitor Arrived", "Detail": json.dumps({"name": "Ada"})},
            {"Source": "fixture.app", "DetailType": "Visitor Left", "Detail": json.dumps({"name": "Bob"})},
        ]
    )["Entries"]
    items = _wait_for_items(local_aws, deployed, "Visitor Arrived")
    assert [item["pk"] for item in items] == [f"Visitor Arrived#{entries[0]['EventId']}"]
    delivered = json.loads(items[0]["payload"])
    assert delivered["detail"] == {"name": "Ada"} and delivered["source"] == "fixture.app"
    assert delivered["account"] == "123456789012" and delivered["time"].endswith("Z")
    assert not _wait_for_items(local_aws, deployed, "Visitor Left", timeout=0.5)


def test_rule_target_input_is_honoured(deployed: DeployedStack, local_aws: LocalAws) -> None:
    events = _client(local_aws, "events")
    events.put_rule(Name="constant-input", EventPattern=json.dumps({"source": ["fixture.constant"]}))
    events.put_targets(
        Rule="constant-input",
        Targets=[
            {"Id": "fn", "Arn": deployed.functions["GreetingFunction"].arn, "Input": '{"kind": "constant"}'}
        ],
    )
    events.put_events(Entries=[{"Source": "fixture.constant", "DetailType": "x", "Detail": "{}"}])
    assert _wait_for_items(local_aws, deployed, "constant")


def test_second_deploy_updates_the_stack_in_place(
    deployed: DeployedStack, local_aws: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Given the app is up, when it is deployed again with a new parameter, the same stack serves it."""
    again = deploy_stack(
        SAM_APP / "template.yaml",
        stack_name=STACK_NAME,
        endpoint_url=local_aws.endpoint_url,
        region=REGION,
        parameter_overrides={"GreetingWord": "Hi"},
        build_dir=tmp_path_factory.mktemp("redeploy"),
    )
    assert again.functions == deployed.functions
    assert again.physical_ids["VisitsTable"] == deployed.physical_ids["VisitsTable"]
    configuration = _client(local_aws, "lambda").get_function_configuration(
        FunctionName=again.function_name("GreetingFunction")
    )
    assert configuration["Environment"]["Variables"]["GREETING_WORD"] == "Hi"


def test_gateway_and_scheduler_serve_stacks_added_while_running(
    deployed: DeployedStack, local_aws: LocalAws
) -> None:
    """How the local cloud wires a deploy: add_stack on a running gateway and scheduler, again on redeploy."""
    gateway = HttpGateway(endpoint_url=local_aws.endpoint_url).start()
    scheduler = Scheduler(endpoint_url=local_aws.endpoint_url, clock=Clock(time_scale=600)).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as not_yet:
            urllib.request.urlopen(f"{gateway.base_url}/hello/Bob", timeout=60)
        assert not_yet.value.code == 404
        gateway.add_stack(deployed)
        scheduler.add_stack(deployed)
        urls = gateway.api_urls()
        assert urls["SecureApi"] == f"{gateway.base_url}/v1"
        with urllib.request.urlopen(f"{urls['ServerlessHttpApi']}/hello/Bob", timeout=60) as response:
            assert json.loads(response.read())["greeting"].endswith(", Bob!")
        deadline = time.monotonic() + 10
        while not scheduler.fired:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        gateway.add_stack(deployed)  # a redeploy replaces, never duplicates
        scheduler.add_stack(deployed)
        assert len(gateway.http_apis) == len(deployed.http_apis)
        assert len(scheduler.schedules) == len(deployed.schedules)
    finally:
        scheduler.stop()
        gateway.stop()


def test_disabled_rule_delivers_nothing(deployed: DeployedStack, local_aws: LocalAws) -> None:
    events = _client(local_aws, "events")
    function_arn = deployed.functions["GreetingFunction"].arn
    for name, state in (("switched-off", "DISABLED"), ("switched-on", "ENABLED")):
        events.put_rule(Name=name, EventPattern=json.dumps({"source": ["fixture.switch"]}), State=state)
        events.put_targets(
            Rule=name, Targets=[{"Id": "fn", "Arn": function_arn, "Input": json.dumps({"kind": name})}]
        )
    events.put_events(Entries=[{"Source": "fixture.switch", "DetailType": "x", "Detail": "{}"}])
    assert _wait_for_items(local_aws, deployed, "switched-on")
    assert not _wait_for_items(local_aws, deployed, "switched-off", timeout=0.5)


def test_state_machine_runs_its_substituted_definition(deployed: DeployedStack, local_aws: LocalAws) -> None:
    """The definition's ${GreetingFunctionArn} became the real function: an execution invokes it."""
    sfn = _client(local_aws, "stepfunctions")
    execution_arn = sfn.start_execution(
        stateMachineArn=deployed.state_machines["GreetingStateMachine"],
        name="greet-e1",
        input=json.dumps({"kind": "from-execution", "id": "e1"}),
    )["executionArn"]
    deadline = time.monotonic() + 30
    while (execution := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    history = sfn.get_execution_history(executionArn=execution_arn)["events"]
    assert execution["status"] == "SUCCEEDED", (execution, history[-3:])
    assert json.loads(execution["output"]) == {"recorded": "from-execution#e1"}


def test_rule_with_a_state_machine_target_starts_an_execution(
    deployed: DeployedStack, local_aws: LocalAws
) -> None:
    events = _client(local_aws, "events")
    events.put_rule(Name="to-workflow", EventPattern=json.dumps({"source": ["fixture.workflow"]}))
    events.put_targets(
        Rule="to-workflow",
        Targets=[
            {
                "Id": "workflow",
                "Arn": deployed.state_machines["GreetingStateMachine"],
                "RoleArn": "arn:aws:iam::123456789012:role/events-to-sfn",
                "InputPath": "$.detail",
            }
        ],
    )
    events.put_events(
        Entries=[
            {"Source": "fixture.workflow", "DetailType": "x", "Detail": json.dumps({"kind": "via-workflow"})}
        ]
    )
    assert _wait_for_items(local_aws, deployed, "via-workflow")


def test_chunked_request_body_reaches_the_function(gateway: HttpGateway) -> None:
    address = urlsplit(gateway.base_url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=60)
    try:
        connection.request(
            "PUT",
            "/files/notes.txt",
            body=iter([b"hello ", b"world"]),
            headers={"Content-Type": "text/plain"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        event = json.loads(response.read())["event"]
    finally:
        connection.close()
    assert (event["body"], event["isBase64Encoded"]) == ("hello world", False)


def test_cors_preflight_and_response_headers_follow_the_api_configuration(gateway: HttpGateway) -> None:
    portal = "https://portal.fixture.local"
    status, headers, _, _ = _request(
        gateway,
        "OPTIONS",
        "/v1/whoami",
        headers={"Origin": portal, "Access-Control-Request-Method": "GET"},
    )
    assert status == 204
    assert headers["access-control-allow-origin"] == portal
    assert headers["access-control-allow-methods"] == "GET"
    assert headers["access-control-allow-headers"] == "authorization"
    assert headers["access-control-max-age"] == "300"

    status, headers, _, _ = _request(
        gateway, "GET", "/v1/whoami", headers={"Origin": portal, "Authorization": f"Bearer {_token()}"}
    )
    assert status == 200 and headers["access-control-allow-origin"] == portal

    status, headers, _, _ = _request(
        gateway,
        "GET",
        "/v1/whoami",
        headers={"Origin": "https://evil.example", "Authorization": f"Bearer {_token()}"},
    )
    assert status == 200 and "access-control-allow-origin" not in headers
