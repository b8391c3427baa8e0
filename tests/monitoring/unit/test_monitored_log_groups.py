"""The requests table's sparse index of monitored log groups, on moto with the table template.yaml
deploys: a request that SUCCEEDED with connection logging on is in it; every other status (failure,
rollback, decommission, failed decommission) takes it out; the ingest reads the index, page by page,
and never the requests themselves; `cvpn monitoring reindex` indexes what was recorded before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn.cli import main as cvpn_main
from cvpn.monitoring_cli import reindex_monitored_log_groups
from cvpn_shared.core.notifications import Notifier
from cvpn_shared.monitoring.dal.connection_logs import ManagedLogGroups
from cvpn_shared.provisioning.dal.requests_table import RequestRecords
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.monitored_log_groups import MONITORED_LOG_GROUPS_INDEX
from cvpn_shared.provisioning.outcome import (
    record_decommission,
    record_decommission_failure,
    record_failure,
    record_success,
)
from localcloud.sam import load_template
from tests.fixtures import REPO_ROOT

ROOT = REPO_ROOT
SEED = ROOT / "events" / "requests" / "seed-active-directory.json"
STARTED = "2026-11-28T12:00:00+00:00"


class CountedScans:
    """The DynamoDB client, with Scan pages of at most ``page_size`` items, counted."""

    def __init__(self, dynamodb: Any, page_size: int | None = None) -> None:
        self._dynamodb = dynamodb
        self._page_size = page_size
        self.pages: list[dict[str, Any]] = []

    def scan(self, **params: Any) -> dict[str, Any]:
        if self._page_size:
            params["Limit"] = self._page_size
        page: dict[str, Any] = self._dynamodb.scan(**params)
        self.pages.append({"params": params, "scanned": page["ScannedCount"]})
        return page


@pytest.fixture
def table() -> Iterator[tuple[Any, str]]:
    """The requests table as template.yaml declares it (its index included), on moto."""
    declared = load_template(ROOT / "template.yaml")["Resources"]["RequestsTable"]["Properties"]
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="requests",
            BillingMode=declared["BillingMode"],
            AttributeDefinitions=declared["AttributeDefinitions"],
            KeySchema=declared["KeySchema"],
            GlobalSecondaryIndexes=declared["GlobalSecondaryIndexes"],
        )
        yield dynamodb, "requests"


@pytest.fixture
def notifier(table: tuple[Any, str]) -> Notifier:
    """The notifications topic, in the same moto account as ``table``."""
    sns = boto3.client("sns", region_name="us-east-1")
    return Notifier(sns, sns.create_topic(Name="notifications")["TopicArn"])


def request(request_id: str, log_group: str | None) -> ProvisionRequest:
    seed = json.loads(SEED.read_text())
    seed["request_id"] = request_id
    seed["connection_log"] = (
        {"enabled": True, "log_group_name": log_group} if log_group else {"enabled": False}
    )
    return ProvisionRequest.model_validate(seed)


def succeed(records: RequestRecords, notifier: Notifier, provision: ProvisionRequest) -> None:
    endpoint_id = f"cvpn-endpoint-{provision.request_id.lower().replace('-', '')}"
    result = {
        "endpoint_id": endpoint_id,
        "dns_name": f"*.{endpoint_id}.prod.clientvpn.us-east-1.amazonaws.com",
        "associations": [{"association_id": "cvpn-assoc-1"}],
        "authorization_rules": [{}],
        "routes": [],
        "client_configuration": {"bucket": "configs", "key": "client-configurations/x/e.ovpn"},
        "cost": {"hourly_usd": 0.1},
    }
    record_success(records, notifier, provision, result, execution_id="x-1", started_at=STARTED)


def test_the_ingest_may_scan_the_index_and_nothing_else_of_the_requests_table() -> None:
    """The ingest function's policies name the requests table once: Scan on the index the data access
    reads (no SAM read policy template: that would grant every read of every request)."""
    function = load_template(ROOT / "template.yaml")["Resources"]["IngestConnectionLogsFunction"]
    policies = function["Properties"]["Policies"]
    templates = [p for p in policies if "Statement" not in p and "RequestsTable" in json.dumps(p)]
    statements = [
        s for p in policies if "Statement" in p for s in p["Statement"] if "RequestsTable" in json.dumps(s)
    ]
    assert templates == []
    (statement,) = statements
    assert statement["Action"] == "dynamodb:Scan"
    assert statement["Resource"]["Fn::Sub"].endswith(
        f":table/${{RequestsTable}}/index/{MONITORED_LOG_GROUPS_INDEX}"
    )


def test_the_index_holds_the_requests_that_succeeded_with_connection_logging(
    table: tuple[Any, str], notifier: Notifier
) -> None:
    """Given two requests that succeeded logging into the same group, one into another and one without
    connection logging, when the ingest lists the managed log groups, then it gets each group once and
    the index holds the three logging requests only; each record keeps its status and request."""
    dynamodb, name = table
    records = RequestRecords(dynamodb, name)
    succeed(records, notifier, request("NET-1", "/cvpn/shared"))
    succeed(records, notifier, request("NET-2", "/cvpn/shared"))
    succeed(records, notifier, request("NET-3", "/cvpn/own"))
    succeed(records, notifier, request("NET-4", None))

    assert ManagedLogGroups(dynamodb, name).log_group_names() == ["/cvpn/own", "/cvpn/shared"]
    indexed = dynamodb.scan(TableName=name, IndexName=MONITORED_LOG_GROUPS_INDEX)["Items"]
    assert sorted(item["request_id"]["S"] for item in indexed) == ["NET-1", "NET-2", "NET-3"]
    record = records.get("NET-3")
    assert record is not None
    assert (record["status"], record["monitored_log_group"]) == ("SUCCEEDED", "/cvpn/own")
    assert record["request"]["connection_log"]["log_group_name"] == "/cvpn/own"
    assert "monitored_log_group" not in (records.get("NET-4") or {})


def test_every_status_but_succeeded_takes_the_request_out_of_the_index(
    table: tuple[Any, str], notifier: Notifier
) -> None:
    """Given four requests that succeeded with connection logging, when one is decommissioned, one's
    decommission fails, one is later recorded as rolled back and one as failed, then the index is
    empty and no record carries the attribute; the failed decommission's record keeps what the
    provisioning wrote (its request, its endpoint) beside the new status."""
    dynamodb, name = table
    records = RequestRecords(dynamodb, name)
    for request_id in ("NET-1", "NET-2", "NET-3", "NET-4"):
        succeed(records, notifier, request(request_id, f"/cvpn/{request_id}"))
    assert len(ManagedLogGroups(dynamodb, name).log_group_names()) == 4
    common = {"execution_id": "x-2", "started_at": STARTED}

    record_decommission(
        records, notifier, request_id="NET-1", requester="a", endpoint_id="cvpn-endpoint-net1", **common
    )
    record_decommission_failure(
        records, notifier, request_id="NET-2", endpoint_id="e", error="E", cause="c", **common
    )
    for request_id, rolled_back in (("NET-3", True), ("NET-4", False)):
        record_failure(
            records,
            notifier,
            request_id=request_id,
            requester="a",
            error="E",
            cause="c",
            endpoint_id=None,
            rolled_back=rolled_back,
            **common,
        )

    assert ManagedLogGroups(dynamodb, name).log_group_names() == []
    statuses = {}
    for request_id in ("NET-1", "NET-2", "NET-3", "NET-4"):
        record = records.get(request_id) or {}
        assert "monitored_log_group" not in record, record
        statuses[request_id] = record["status"]
    assert statuses == {
        "NET-1": "DECOMMISSIONED",
        "NET-2": "DECOMMISSION_FAILED",
        "NET-3": "ROLLED_BACK",
        "NET-4": "FAILED",
    }
    kept = records.get("NET-2") or {}
    assert kept["request"]["request_id"] == "NET-2" and kept["endpoint_id"] == "e"


def test_a_write_of_another_status_never_carries_the_attribute(table: tuple[Any, str]) -> None:
    """Given outcomes written directly with the attribute but a status other than SUCCEEDED (by put
    and by update), then the index stays empty: the data access keeps the invariant itself."""
    dynamodb, name = table
    records = RequestRecords(dynamodb, name)
    records.put_outcome(
        {"request_id": "NET-1", "status": "FAILED", "monitored_log_group": "/x", "updated_at": STARTED}
    )
    records.update_outcome(
        "NET-2", {"status": "DECOMMISSIONED", "monitored_log_group": "/y", "updated_at": STARTED}
    )
    records.update_outcome(
        "NET-3", {"status": "SUCCEEDED", "monitored_log_group": "/z", "updated_at": STARTED}
    )

    assert ManagedLogGroups(dynamodb, name).log_group_names() == ["/z"]


def test_an_update_that_turns_logging_off_takes_the_endpoint_out_of_the_index(
    table: tuple[Any, str],
) -> None:
    """Given a succeeded request in the index, when an update records it with ``monitored_log_group``
    None (its connection logging turned off), then the index no longer lists its group, while an
    update that leaves the field out keeps it."""
    dynamodb, name = table
    records = RequestRecords(dynamodb, name)
    records.update_outcome(
        "NET-1", {"status": "SUCCEEDED", "monitored_log_group": "/a", "updated_at": STARTED}
    )
    records.update_outcome(
        "NET-2", {"status": "SUCCEEDED", "monitored_log_group": "/b", "updated_at": STARTED}
    )

    records.update_outcome("NET-1", {"status": "SUCCEEDED", "revision": 2, "updated_at": STARTED})
    records.update_outcome(
        "NET-2", {"status": "SUCCEEDED", "monitored_log_group": None, "revision": 2, "updated_at": STARTED}
    )

    assert ManagedLogGroups(dynamodb, name).log_group_names() == ["/a"]
    assert (records.get("NET-2") or {})["revision"] == 2


def test_the_ingest_reads_the_index_page_by_page_and_only_the_live_requests(
    table: tuple[Any, str], notifier: Notifier
) -> None:
    """Given 30 requests in the table of which 5 succeeded with connection logging, when the managed
    log groups are listed with pages of 2 items, then every page is a Scan of the index (never of the
    table), 5 items are read in all (not 30), and the 5 groups come back."""
    dynamodb, name = table
    records = RequestRecords(dynamodb, name)
    for number in range(5):
        succeed(records, notifier, request(f"NET-{number}", f"/cvpn/live-{number}"))
    for number in range(5, 30):
        records.put_outcome({"request_id": f"NET-{number}", "status": "FAILED", "updated_at": STARTED})
    counted = CountedScans(dynamodb, page_size=2)

    names = ManagedLogGroups(counted, name).log_group_names()

    assert names == [f"/cvpn/live-{number}" for number in range(5)]
    assert all(page["params"]["IndexName"] == MONITORED_LOG_GROUPS_INDEX for page in counted.pages)
    assert sum(page["scanned"] for page in counted.pages) == 5
    assert len(counted.pages) == 3


# ------------------------------------------------------------------ cvpn monitoring reindex (upgrade)
def recorded_before_the_index(
    dynamodb: Any, name: str, request_id: str, status: str, log: str | None
) -> None:
    """A record as record_success wrote it before the index existed: the request, no attribute."""
    provision = request(request_id, log).model_dump(mode="json")
    dynamodb.put_item(
        TableName=name,
        Item={
            "request_id": {"S": request_id},
            "status": {"S": status},
            "updated_at": {"S": STARTED},
            "request": {"S": json.dumps(provision, sort_keys=True)},
        },
    )


def test_reindex_indexes_the_succeeded_requests_recorded_before_the_index(
    table: tuple[Any, str], notifier: Notifier
) -> None:
    """Given records written before the index (two SUCCEEDED with logging, one SUCCEEDED without,
    one DECOMMISSIONED with logging) and one written since, when `reindex` runs, then the two old
    SUCCEEDED groups join the index beside the new one and nothing else does; their status and
    updated_at are untouched; a second run changes nothing."""
    dynamodb, name = table
    recorded_before_the_index(dynamodb, name, "NET-1", "SUCCEEDED", "/cvpn/old-1")
    recorded_before_the_index(dynamodb, name, "NET-2", "SUCCEEDED", "/cvpn/old-2")
    recorded_before_the_index(dynamodb, name, "NET-3", "SUCCEEDED", None)
    recorded_before_the_index(dynamodb, name, "NET-4", "DECOMMISSIONED", "/cvpn/gone")
    succeed(RequestRecords(dynamodb, name), notifier, request("NET-5", "/cvpn/new"))
    assert ManagedLogGroups(dynamodb, name).log_group_names() == ["/cvpn/new"]

    counts = reindex_monitored_log_groups(dynamodb, name)

    assert counts == {"succeeded": 4, "indexed": 2, "already_indexed": 1, "without_logging": 1, "changed": 0}
    assert ManagedLogGroups(dynamodb, name).log_group_names() == ["/cvpn/new", "/cvpn/old-1", "/cvpn/old-2"]
    record = RequestRecords(dynamodb, name).get("NET-1") or {}
    assert (record["status"], record["updated_at"]) == ("SUCCEEDED", STARTED)
    again = reindex_monitored_log_groups(dynamodb, name)
    assert (again["indexed"], again["already_indexed"]) == (0, 3)


class DecommissionedWhileScanned:
    """The DynamoDB client, where NET-1 is decommissioned right after the Scan that found it."""

    def __init__(self, dynamodb: Any, notifier: Notifier, name: str) -> None:
        self._dynamodb = dynamodb
        self._records = RequestRecords(dynamodb, name)
        self._notifier = notifier

    def scan(self, **params: Any) -> dict[str, Any]:
        page: dict[str, Any] = self._dynamodb.scan(**params)
        record_decommission(
            self._records,
            self._notifier,
            request_id="NET-1",
            requester="a",
            endpoint_id="cvpn-endpoint-net1",
            execution_id="x-3",
            started_at=STARTED,
        )
        return page

    def update_item(self, **params: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self._dynamodb.update_item(**params)
        return answer


def test_reindex_leaves_out_a_request_decommissioned_while_it_runs(
    table: tuple[Any, str], notifier: Notifier
) -> None:
    """Given a SUCCEEDED record from before the index, when it is decommissioned between the reindex's
    Scan and its write, then the write does not happen: the index stays empty and the record stays
    DECOMMISSIONED, without the attribute."""
    dynamodb, name = table
    recorded_before_the_index(dynamodb, name, "NET-1", "SUCCEEDED", "/cvpn/old-1")

    counts = reindex_monitored_log_groups(DecommissionedWhileScanned(dynamodb, notifier, name), name)

    assert (counts["indexed"], counts["changed"]) == (0, 1)
    assert ManagedLogGroups(dynamodb, name).log_group_names() == []
    record = RequestRecords(dynamodb, name).get("NET-1") or {}
    assert record["status"] == "DECOMMISSIONED" and "monitored_log_group" not in record


def test_cvpn_monitoring_reindex_finds_the_table_through_the_stack(
    table: tuple[Any, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a stack whose output RequestsTableName names the requests table, when an operator runs
    `cvpn monitoring reindex --stack-name ... --json`, then the old SUCCEEDED request is indexed and
    the counts are printed; the plain output says the same in words."""
    dynamodb, name = table
    recorded_before_the_index(dynamodb, name, "NET-1", "SUCCEEDED", "/cvpn/old-1")
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="cvpn-upgraded",
        TemplateBody=json.dumps(
            {
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"RequestsTableName": {"Value": name}},
            }
        ),
    )
    options = ["--stack-name", "cvpn-upgraded", "--region", "us-east-1"]

    assert cvpn_main(["monitoring", "reindex", *options, "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["indexed"] == 1
    assert ManagedLogGroups(dynamodb, name).log_group_names() == ["/cvpn/old-1"]
    assert cvpn_main(["monitoring", "reindex", *options]) == 0
    assert "0 indexed now, 1 already indexed" in capsys.readouterr().out
