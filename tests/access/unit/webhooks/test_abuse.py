"""Unauthenticated callers against the webhook function as deployed (its real wiring, AWS mocked by
moto): a flood of made-up source names, of bad signatures and of odd paths must not turn into AWS
calls, cache entries or billed metric dimensions per request; and a source configured after a 404
works on its next delivery."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn_shared.access import settings as access_settings
from cvpn_shared.access import wiring
from cvpn_shared.access.signatures import SignatureScheme, sign
from cvpn_shared.core import aws_clients
from tests.fixtures.handlers import LambdaContext, load_handler_module

from .conftest import example_payload, source_config

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

REGION = "us-east-1"
STACK = "stack"
SOURCES_PATH = f"/{STACK}/intake/sources"
JIRA_SECRET = "jira-current"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:123456789012:stateMachine:{STACK}-intake-request"


@dataclass
class Deployed:
    """The webhook handler over moto, and every AWS call its clients made, by service and operation."""

    app: ModuleType
    calls: Counter[str] = field(default_factory=Counter)

    def post(self, source: str, body: bytes | str, headers: dict[str, str]) -> dict[str, Any]:
        text = body.decode() if isinstance(body, bytes) else body
        event = {
            "version": "2.0",
            "routeKey": "POST /webhooks/{source}",
            "rawPath": f"/webhooks/{source}",
            "rawQueryString": "",
            "headers": {name.lower(): value for name, value in headers.items()},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "domainName": "api.example",
                "http": {"method": "POST", "path": f"/webhooks/{source}", "protocol": "HTTP/1.1"},
                "requestId": "id",
                "routeKey": "POST /webhooks/{source}",
                "stage": "$default",
            },
            "pathParameters": {"source": source},
            "body": text,
            "isBase64Encoded": False,
        }
        return dict(self.app.lambda_handler(event, LambdaContext("webhook")))

    def count(self, service: str) -> int:
        return sum(n for name, n in self.calls.items() if name.startswith(service + "."))


def _clear_process_caches() -> None:
    aws_clients.client.cache_clear()
    aws_clients._session.cache_clear()
    access_settings.get_settings.cache_clear()
    for builder in (wiring.webhook_intake, wiring.form_submissions, wiring.intake_secrets):
        builder.cache_clear()


def _table(dynamodb: Any, name: str, key: str) -> None:
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def configure_source(name: str, secret: str) -> None:
    """What an operator does: the signing secret and the source's parameter."""
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"{STACK}/intake/{name}", SecretString=json.dumps({"current": secret, "previous": ""})
    )
    config = source_config("jira")
    config.update(secret_id=f"{STACK}/intake/{name}", callback=None)
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=f"{SOURCES_PATH}/{name}", Type="String", Value=json.dumps(config)
    )


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    environment = {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
        "POWERTOOLS_SERVICE_NAME": "cvpn-autopilot",
        "INTAKE_SOURCES_PARAMETER_PATH": SOURCES_PATH,
        "WEBHOOK_DELIVERIES_TABLE_NAME": "deliveries",
        "INTAKE_TICKETS_TABLE_NAME": "tickets",
        "REQUEST_FORM_TABLE_NAME": "form",
        "INTAKE_STATE_MACHINE_ARN": STATE_MACHINE_ARN,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        _clear_process_caches()
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        _table(dynamodb, "deliveries", "delivery_key")
        _table(dynamodb, "tickets", "ticket_key")
        _table(dynamodb, "form", "pk")
        boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name=f"{STACK}-intake-request",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/intake",
        )
        configure_source("jira", JIRA_SECRET)
        deployed = Deployed(load_handler_module("access/webhook_intake"))
        for service in ("ssm", "secretsmanager", "dynamodb", "stepfunctions"):
            aws_clients.client(service).meta.events.register(
                f"before-call.{service}",
                lambda model, _service=service, **_: deployed.calls.update([f"{_service}.{model.name}"]),
            )
        try:
            yield deployed
        finally:
            _clear_process_caches()


def _signed_jira(secret: str = JIRA_SECRET, **issue: Any) -> tuple[bytes, dict[str, str]]:
    payload = example_payload("jira")
    payload["issue"].update(issue)
    body = json.dumps(payload).encode()
    return body, sign(SignatureScheme.JIRA, body, secret, timestamp=0)


def _source_dimensions(output: str) -> set[str]:
    """The ``Source`` dimension of every metric the function emitted (CloudWatch EMF on stdout)."""
    values = set()
    for line in output.splitlines():
        if '"_aws"' in line:
            document = json.loads(line)
            for names in document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]:
                if "Source" in names:
                    values.add(document["Source"])
    return values


def test_a_flood_of_made_up_source_names_costs_no_ssm_read_per_name(deployed: Deployed) -> None:
    body, headers = _signed_jira()
    names = [f"src-{index}" for index in range(2000)]
    answers = Counter(deployed.post(name, body, headers)["statusCode"] for name in names)
    assert answers == {404: len(names)}
    # one catalog read on the first delivery, then only the few early reloads a token allows
    assert deployed.count("ssm") <= 6, deployed.calls
    assert deployed.count("secretsmanager") == 0 and deployed.count("dynamodb") == 0
    assert len(wiring.webhook_intake().sources) == 1  # type: ignore[arg-type]  # jira, nothing asked for


def test_names_off_the_pattern_are_refused_before_any_call_or_body_check(deployed: Deployed) -> None:
    for name in ("JIRA", "../jira", "a" * 33, "jira%2f..", "-jira", "jira.x"):
        answer = deployed.post(name, "x" * (2 * 1024 * 1024), {})
        assert answer["statusCode"] == 404, name  # not 413: the name is checked first
    assert deployed.count("ssm") == 0


def test_every_metric_dimension_is_a_configured_source_or_unknown(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    body, headers = _signed_jira()
    huge = "x" * (2 * 1024 * 1024)
    for index in range(300):
        deployed.post(f"made-up-{index}", huge if index % 2 else body.decode(), headers)
        deployed.post(f"UPPER-{index}", huge, headers)
    deployed.post("jira", huge, headers)  # a configured source's 413
    deployed.post("jira", body, {**headers, "X-Hub-Signature": "sha256=" + "0" * 64})
    assert _source_dimensions(capsys.readouterr().out) == {"unknown", "jira"}


def test_bad_signatures_read_the_secret_at_most_once_a_minute(deployed: Deployed) -> None:
    for index in range(1000):
        body, headers = _signed_jira(secret=f"guess-{index}", key=f"NET-{index}")
        assert deployed.post("jira", body, headers)["statusCode"] == 401
    assert deployed.count("secretsmanager") <= 2, deployed.calls
    assert deployed.count("stepfunctions") == 0 and deployed.count("dynamodb") == 0


def test_a_source_configured_after_a_404_works_on_its_next_delivery(deployed: Deployed) -> None:
    body, headers = _signed_jira(secret="new-secret")
    assert deployed.post("servicedesk", body, headers)["statusCode"] == 404
    configure_source("servicedesk", "new-secret")
    answer = deployed.post("servicedesk", body, headers)
    assert answer["statusCode"] == 202, answer["body"]
