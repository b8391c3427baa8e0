"""A provisioning that fails after the endpoint exists rolls back to zero resources."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from localcloud.clientvpn.models import ClientVpnTimings
from localcloud.faults import get_fault_injector
from tests.provisioning.workflow.harness import ROOT, Provisioning, failure_message

TWO_WEEKS = 14 * 24 * 3600


def _created_endpoint_id(product: Provisioning, request_id: str, before: frozenset[str]) -> str:
    """The endpoint the execution created: the record names it, and it was not there before."""
    record = product.record(request_id)
    assert record is not None
    endpoint_id = str(record["endpoint_id"]["S"])
    assert endpoint_id not in before
    return endpoint_id


def _assert_rolled_back(product: Provisioning, request_id: str, before: frozenset[str]) -> None:
    endpoint_id = _created_endpoint_id(product, request_id, before)
    product.assert_endpoint_gone(endpoint_id)
    assert product.endpoints_for(request_id) == []
    assert product.inventory().endpoint_ids <= before
    assert product.record_status(request_id) == "ROLLED_BACK"


def test_failed_association_rolls_back(product: Provisioning) -> None:
    """Given the first subnet association ends in association-failed,
    when a 2-AZ request is provisioned,
    then the execution fails with AssociationFailed naming the subnet's failure, the endpoint and its
    other association are gone (Describe: NotFound), and the requests table records ROLLED_BACK."""
    get_fault_injector().configure("AssociateClientVpnTargetNetwork", association_failures=1)
    request = product.request()
    before = product.inventory().endpoint_ids

    progress = product.provision(request)

    assert progress.status == "FAILED"
    assert progress.error == "AssociationFailed"
    assert "could not create its network interface" in failure_message(progress)
    assert "RecordRollback" in progress.steps
    _assert_rolled_back(product, request["request_id"], before)


def test_associations_slower_than_the_overall_timeout_roll_back(
    product: Provisioning, timings: ClientVpnTimings
) -> None:
    """Given subnet associations that take two weeks (far beyond the workflow's 30-minute wait),
    when a request is provisioned,
    then the execution fails with ProvisioningTimedOut, the still-associating subnets are
    disassociated and the endpoint deleted (Describe: NotFound), and the record says ROLLED_BACK."""
    timings.association_seconds = TWO_WEEKS
    request = product.request()
    before = product.inventory().endpoint_ids

    progress = product.provision(request)

    assert progress.status == "FAILED"
    assert progress.error == "ProvisioningTimedOut"
    assert "associations: not ready after 1800 s" in failure_message(progress)
    assert "AuthorizeIngress" not in progress.steps
    _assert_rolled_back(product, request["request_id"], before)


LATER_STEP_FAILURES = {
    # operation: (error code a real endpoint can answer, the step it breaks)
    "AuthorizeClientVpnIngress": ("ClientVpnAuthorizationRuleLimitExceeded", "AuthorizeRule"),
    "CreateClientVpnRoute": ("ClientVpnRouteLimitExceeded", "CreateRoute"),
    "ApplySecurityGroupsToClientVpnTargetNetwork": ("InvalidParameterValue", "ApplySecurityGroups"),
    # A policy missing the action: AWS answers InternalError with HTTP 500, which the SDK retries.
    "ExportClientVpnClientConfiguration": ("UnauthorizedOperation", "ExportConfiguration"),
    "DescribeClientVpnRoutes": ("UnauthorizedOperation", "CheckRulesAndRoutes"),
}


@pytest.mark.parametrize("operation", list(LATER_STEP_FAILURES))
def test_failure_of_a_later_step_rolls_back(product: Provisioning, operation: str) -> None:
    """Given the first call of one Client VPN operation used after the associations answers a
    non-retryable error (rule or route limit, invalid security groups, the export or the Describe a
    check step uses not allowed),
    when a request is provisioned,
    then the execution fails with ClientVpnApiError naming that operation and code, every rule, route,
    association and the endpoint are gone (Describe: NotFound), and the record says ROLLED_BACK."""
    code, step = LATER_STEP_FAILURES[operation]
    get_fault_injector().configure(operation, fail_with=code, fail_count=1)
    request = product.request()
    before = product.inventory().endpoint_ids

    progress = product.provision(request)

    assert progress.status == "FAILED", progress.output
    assert progress.error == "ClientVpnApiError"
    assert f"{operation}: {code}" in failure_message(progress)
    assert step in progress.steps
    assert "RecordSuccess" not in progress.steps
    _assert_rolled_back(product, request["request_id"], before)


# The product's boto3 clients make 3 attempts per call.
SDK_ATTEMPTS = 3


def test_a_server_error_that_outlasts_every_retry_rolls_back(product: Provisioning) -> None:
    """Given ExportClientVpnClientConfiguration answers InternalError (HTTP 500) to every call,
    when a request is provisioned,
    then the SDK and then the workflow retry it (3 attempts per task, the task as often as its Retry
    allows), the execution then fails with ServerError naming the operation and code, and every rule,
    route, association and the endpoint are gone and the record says ROLLED_BACK."""
    definition = json.loads((ROOT / "statemachines/provisioning/provision_endpoint.asl.json").read_text())
    retry = next(
        retry
        for retry in definition["States"]["ExportConfiguration"]["Retry"]
        if "ServerError" in retry["ErrorEquals"]
    )
    get_fault_injector().configure(
        "ExportClientVpnClientConfiguration", fail_with="InternalError", fail_count=1_000_000
    )
    request = product.request()
    before = product.inventory().endpoint_ids

    progress = product.provision(request)

    injected = get_fault_injector().injected_counts()
    get_fault_injector().clear()
    assert progress.status == "FAILED", progress.output
    assert progress.error == "ServerError"
    assert "ExportClientVpnClientConfiguration: InternalError" in failure_message(progress)
    assert injected == {
        "ExportClientVpnClientConfiguration": {"InternalError": SDK_ATTEMPTS * (1 + retry["MaxAttempts"])}
    }
    assert "RecordSuccess" not in progress.steps
    _assert_rolled_back(product, request["request_id"], before)


@pytest.fixture
def requests_table_gone(product: Provisioning) -> Iterator[str]:
    """The requests table deleted (an operator's mistake); recreated, empty, afterwards (its index of
    monitored log groups included)."""
    dynamodb = product.cloud.client("dynamodb")
    name = product.stack.outputs["RequestsTableName"]
    description = dynamodb.describe_table(TableName=name)["Table"]
    dynamodb.delete_table(TableName=name)
    yield name
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=description["AttributeDefinitions"],
        KeySchema=description["KeySchema"],
        GlobalSecondaryIndexes=[
            {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
            for index in description.get("GlobalSecondaryIndexes", [])
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def test_failure_to_record_the_success_rolls_back(product: Provisioning, requests_table_gone: str) -> None:
    """Given the requests table no longer exists,
    when a request is provisioned,
    then the endpoint is ready but RecordSuccess cannot write the audit record, so the execution
    fails and the endpoint is torn down (Describe: NotFound): nothing runs that no record accounts for."""
    request = product.request()
    before = product.inventory().endpoint_ids

    progress = product.provision(request)

    assert progress.status == "FAILED"
    assert progress.error == "ResourceNotFoundException"
    assert "RecordSuccess" in progress.steps
    assert "TeardownStep" in progress.steps
    assert product.endpoints_for(request["request_id"]) == []
    assert product.inventory().endpoint_ids <= before
