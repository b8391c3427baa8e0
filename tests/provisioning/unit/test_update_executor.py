"""The update's executor with an in-memory stand-in for the Client VPN API: order, undo, idempotency."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cvpn.apply_cli import apply_execution_name, history_rows, replacement_request_id
from cvpn_shared.provisioning.errors import ClientVpnApiError
from cvpn_shared.provisioning.models.plan import ApiCall, Change, ChangeAction
from cvpn_shared.provisioning.update import (
    LastAssociation,
    apply_change,
    change_token,
    complete_undo,
    record_no_changes,
    record_update_failure,
    record_update_success,
    undo_changes,
)
from tests.fixtures import REPO_ROOT


class StandIn:
    """Records every call; answers with ``answers[operation]`` or raises ``errors[operation]``."""

    def __init__(self, networks: list[dict[str, Any]] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.errors: dict[str, str] = {}
        self.networks = networks or []

    def perform(self, operation: str, parameters: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, parameters))
        if operation in self.errors:
            raise ClientVpnApiError(self.errors.pop(operation), "stand-in", operation)
        if operation == "AssociateClientVpnTargetNetwork":
            return {
                "AssociationId": f"cvpn-assoc-{parameters['SubnetId'][-4:]}",
                "Status": {"Code": "associating"},
            }
        return {}

    def target_networks(self, endpoint_id: str) -> list[dict[str, Any]]:
        return self.networks


def _as_api(stand_in: object) -> Any:
    """A stand-in where the code expects the data access it stands in for."""
    return stand_in


def _change(action: ChangeAction, forward: ApiCall, undo: ApiCall | None, summary: str) -> Change:
    return Change(group="routes", action=action, summary=summary, field="x", forward=forward, undo=undo)


ROUTE = _change(
    "create-route",
    ApiCall(
        operation="CreateClientVpnRoute",
        parameters={"DestinationCidrBlock": "10.1.0.0/16", "TargetVpcSubnetId": "subnet-1"},
    ),
    ApiCall(
        operation="DeleteClientVpnRoute",
        parameters={"DestinationCidrBlock": "10.1.0.0/16", "TargetVpcSubnetId": "subnet-1"},
    ),
    "add route",
)
ASSOCIATE = _change(
    "associate-subnet",
    ApiCall(operation="AssociateClientVpnTargetNetwork", parameters={"SubnetId": "subnet-0a0b"}),
    ApiCall(operation="DisassociateClientVpnTargetNetwork", parameters={"SubnetId": "subnet-0a0b"}),
    "associate subnet-0a0b",
)
TAG = _change(
    "update-tags",
    ApiCall(operation="CreateTags", parameters={"Tags": [{"Key": "Team", "Value": "b"}]}),
    None,
    "tag Team",
)


def _run(api: StandIn, changes: list[Change]) -> dict[str, Any]:
    progress: dict[str, Any] = {"index": 0, "applied": []}
    for _ in changes:
        progress = apply_change(
            _as_api(api),
            request_id="NET-1",
            endpoint_id="cvpn-endpoint-1",
            revision=2,
            changes=changes,
            progress=progress,
        )
    return progress


def test_each_call_names_the_endpoint_and_carries_a_token_of_its_change() -> None:
    api = StandIn()
    progress = _run(api, [ASSOCIATE, ROUTE, TAG])
    (_, assoc), (_, route), (_, tag) = api.calls
    assert assoc["ClientVpnEndpointId"] == route["ClientVpnEndpointId"] == "cvpn-endpoint-1"
    assert assoc["ClientToken"] == change_token("NET-1", 2, 0, "forward")
    assert route["ClientToken"] == change_token("NET-1", 2, 1, "forward") != assoc["ClientToken"]
    assert tag == {"Tags": [{"Key": "Team", "Value": "b"}], "Resources": ["cvpn-endpoint-1"]}
    assert progress["index"] == 3 and [a["index"] for a in progress["applied"]] == [0, 1, 2]
    assert progress["wait"] is False  # a tag needs no wait; an association and a route do
    assert change_token("NET-1", 3, 0, "forward") != change_token("NET-1", 2, 0, "forward")


def test_undo_runs_newest_first_with_the_association_the_forward_call_made() -> None:
    api = StandIn()
    progress = _run(api, [ASSOCIATE, ROUTE, TAG])
    api.calls.clear()
    outcome = undo_changes(
        _as_api(api),
        request_id="NET-1",
        endpoint_id="cvpn-endpoint-1",
        revision=2,
        changes=[ASSOCIATE, ROUTE, TAG],
        progress=progress,
        in_flight=False,
    )
    assert [op for op, _ in api.calls] == ["DeleteClientVpnRoute", "DisassociateClientVpnTargetNetwork"]
    assert api.calls[1][1] == {"AssociationId": "cvpn-assoc-0a0b", "ClientVpnEndpointId": "cvpn-endpoint-1"}
    assert outcome == {
        "undone": ["add route", "associate subnet-0a0b"],
        "not_undone": ["tag Team"],
        "then": [],
    }


def test_the_change_that_failed_in_flight_is_undone_too() -> None:
    api = StandIn()
    api.errors["CreateClientVpnRoute"] = "InvalidParameterValue"
    progress = _run(api, [ASSOCIATE])
    with pytest.raises(ClientVpnApiError):
        apply_change(
            _as_api(api),
            request_id="NET-1",
            endpoint_id="cvpn-endpoint-1",
            revision=2,
            changes=[ASSOCIATE, ROUTE],
            progress=progress,
        )
    api.calls.clear()
    api.errors["DeleteClientVpnRoute"] = "InvalidClientVpnRouteNotFound"  # it never took effect
    outcome = undo_changes(
        _as_api(api),
        request_id="NET-1",
        endpoint_id="cvpn-endpoint-1",
        revision=2,
        changes=[ASSOCIATE, ROUTE],
        progress=progress,
        in_flight=True,
    )
    assert [op for op, _ in api.calls] == ["DeleteClientVpnRoute", "DisassociateClientVpnTargetNetwork"]
    assert outcome["undone"] == ["add route", "associate subnet-0a0b"]


def test_a_duplicate_on_add_counts_as_done_and_other_errors_stop() -> None:
    api = StandIn()
    api.errors["CreateClientVpnRoute"] = "InvalidClientVpnDuplicateRoute"
    assert _run(api, [ROUTE])["applied"][0]["answer"] == {"already": "InvalidClientVpnDuplicateRoute"}
    api.errors["CreateClientVpnRoute"] = "InvalidParameterValue"
    with pytest.raises(ClientVpnApiError):
        _run(api, [ROUTE])


def test_the_last_association_is_never_removed() -> None:
    api = StandIn(
        networks=[
            {"AssociationId": "cvpn-assoc-1", "TargetNetworkId": "subnet-1", "Status": {"Code": "associated"}}
        ]
    )
    remove = _change(
        "disassociate-subnet",
        ApiCall(operation="DisassociateClientVpnTargetNetwork", parameters={"AssociationId": "cvpn-assoc-1"}),
        None,
        "disassociate",
    )
    with pytest.raises(LastAssociation, match="last association"):
        _run(api, [remove])
    assert api.calls == []


class Revisions:
    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def start(self, item: dict[str, Any]) -> None:
        self.started.append(item)


class Records:
    def __init__(self) -> None:
        self.updates: list[tuple[str, dict[str, Any]]] = []

    def update_outcome(self, request_id: str, fields: dict[str, Any]) -> None:
        self.updates.append((request_id, fields))


def test_no_changes_records_nothing_for_the_recorded_document_and_a_revision_otherwise() -> None:
    document = {"request_id": "NET-1", "requester": "a"}
    validated = {
        "request": document,
        "previous_document": dict(document),
        "revision": 3,
        "previous_revision": 2,
        "endpoint_id": "e",
    }
    revisions, records = Revisions(), Records()
    same = record_no_changes(_as_api(revisions), _as_api(records), validated, {}, execution_id="x")
    assert same == {"status": "NO_CHANGES", "revision": 2, "recorded": False}
    assert revisions.started == [] and records.updates == []

    validated["request"] = {**document, "requester": "b"}
    other = record_no_changes(_as_api(revisions), _as_api(records), validated, {}, execution_id="x")
    assert other["recorded"] is True and revisions.started[0]["revision"] == 3
    assert records.updates[0][1]["revision"] == 3


def test_execution_names_are_stable_valid_and_differ_by_document_and_revision() -> None:
    document = {"request_id": "NET-1/ü", "routes": []}
    name = apply_execution_name("NET-1/ü" * 20, 12, document)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name), name
    assert name == apply_execution_name("NET-1/ü" * 20, 12, dict(document))
    assert name != apply_execution_name("NET-1/ü" * 20, 13, document)
    assert name != apply_execution_name("NET-1/ü" * 20, 12, {**document, "routes": [1]})
    assert replacement_request_id("NET-1", 4) == "NET-1.r4"


def test_history_adds_the_provisioning_as_revision_one() -> None:
    item = {"started_at": "2026-01-01T00:00:00", "requester": "jane", "endpoint_id": "cvpn-endpoint-1"}
    rows = history_rows(
        item,
        [
            {
                "revision": 2,
                "status": "FAILED",
                "plan": {"changes": [{"summary": "add route"}]},
                "outcome": {"error": {"message": "boom"}},
            }
        ],
    )
    assert [(r["revision"], r["outcome"]) for r in rows] == [(2, "FAILED"), (1, "PROVISIONED")]
    assert rows[0]["changes"] == ["add route"] and rows[0]["error"] == "boom"
    assert history_rows(item, [{"revision": 1, "status": "SUCCEEDED"}])[0]["outcome"] == "SUCCEEDED"


OFFICE = {"DestinationCidrBlock": "10.50.0.0/16", "TargetVpcSubnetId": "subnet-0c0d", "Description": "o"}
DISASSOCIATE = Change(
    group="associations",
    action="disassociate-subnet",
    summary="disassociate subnet-0c0d",
    field="subnet_ids",
    forward=ApiCall(operation="DisassociateClientVpnTargetNetwork", parameters={"AssociationId": "a-1"}),
    undo=ApiCall(operation="AssociateClientVpnTargetNetwork", parameters={"SubnetId": "subnet-0c0d"}),
    undo_then=[ApiCall(operation="CreateClientVpnRoute", parameters=OFFICE)],
)


def test_the_undo_of_a_disassociation_recreates_its_routes_once_it_settled() -> None:
    associated = {"AssociationId": "a-1", "TargetNetworkId": "subnet-0c0d", "Status": {"Code": "associated"}}
    other = {"AssociationId": "a-2", "TargetNetworkId": "subnet-0a0b", "Status": {"Code": "associated"}}
    api = StandIn(networks=[associated, other])
    progress = _run(api, [DISASSOCIATE])
    api.calls.clear()
    first = undo_changes(
        _as_api(api),
        request_id="NET-1",
        endpoint_id="cvpn-endpoint-1",
        revision=2,
        changes=[DISASSOCIATE],
        progress=progress,
        in_flight=False,
    )
    # the association first: AWS refuses a route through a subnet not yet associated again
    assert [op for op, _ in api.calls] == ["AssociateClientVpnTargetNetwork"]
    assert first["then"] == [
        {"index": 0, "position": 0, "call": {"operation": "CreateClientVpnRoute", "parameters": OFFICE}}
    ]
    api.calls.clear()
    api.errors["CreateClientVpnRoute"] = "InvalidClientVpnDuplicateRoute"  # a retried task: done
    done = complete_undo(
        _as_api(api), request_id="NET-1", endpoint_id="cvpn-endpoint-1", revision=2, undo=first
    )
    assert api.calls == [
        (
            "CreateClientVpnRoute",
            {
                **OFFICE,
                "ClientVpnEndpointId": "cvpn-endpoint-1",
                "ClientToken": change_token("NET-1", 2, 0, "undo-then-0"),
            },
        )
    ]
    assert done == {**first, "then": []}


class Notifications:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def publish(self, subject: str, message: dict[str, Any], attributes: dict[str, str]) -> str:
        self.sent.append(message)
        return "m-1"


class Finished:
    def __init__(self) -> None:
        self.finished: list[tuple[int, dict[str, Any]]] = []

    def finish(self, request_id: str, revision: int, fields: dict[str, Any]) -> None:
        self.finished.append((revision, fields))


@pytest.mark.parametrize("rolled_back", [True, False])
def test_a_restored_endpoint_gets_its_previous_desired_state_written_back(rolled_back: bool) -> None:
    """RecordSuccess may have written the new document before it failed: once the endpoint is
    restored, the record says the previous one again; when it could not be restored, the record is
    left as it is (the revision says the endpoint may be between the two)."""
    previous = json.loads((REPO_ROOT / "events" / "requests" / "seed-active-directory.json").read_text())
    validated = {
        "request": {**previous, "session_timeout_hours": 24},
        "previous_document": previous,
        "revision": 4,
        "previous_revision": 3,
        "endpoint_id": "cvpn-endpoint-1",
    }
    revisions, records, notifications = Finished(), Records(), Notifications()
    answer = record_update_failure(
        _as_api(revisions),
        _as_api(records),
        _as_api(notifications),
        validated,
        error="ClientError",
        cause=json.dumps({"errorMessage": "UpdateItem: ValidationException"}),
        undo={"undone": ["session timeout"], "not_undone": [], "then": []},
        rolled_back=rolled_back,
    )
    assert revisions.finished[0][0] == 4 and revisions.finished[0][1]["status"] == "FAILED"
    if rolled_back:
        assert [(rid, f["request"], f["revision"]) for rid, f in records.updates] == [
            (previous["request_id"], previous, 3)
        ]
        assert "restored the previous state" in answer["cause"]
    else:
        assert records.updates == []
        assert "could NOT restore" in answer["cause"]


def test_a_configuration_not_exported_is_said_in_the_success_notification() -> None:
    document = json.loads((REPO_ROOT / "events" / "requests" / "seed-active-directory.json").read_text())
    validated = {"request": document, "revision": 4, "endpoint_id": "cvpn-endpoint-1"}
    notifications = Notifications()
    cause = json.dumps({"errorMessage": "ExportClientVpnClientConfiguration: InvalidParameterValue: no"})
    answer = record_update_success(
        _as_api(Finished()),
        _as_api(Records()),
        _as_api(notifications),
        validated,
        ["VPN port: 443 -> 1194"],
        configuration={"client_configuration": None, "export_error": {"Error": "E", "Cause": cause}},
        execution_id="x",
    )
    assert answer["status"] == "SUCCEEDED" and answer["client_configuration"] is None
    assert (
        answer["configuration_not_exported"]
        == "ExportClientVpnClientConfiguration: InvalidParameterValue: no"
    )
    message = notifications.sent[0]
    assert (
        "export-client-vpn-client-configuration --client-vpn-endpoint-id cvpn-endpoint-1"
        in message["download"]
    )


def test_apply_wait_reports_a_configuration_that_could_not_be_exported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse
    from types import SimpleNamespace

    from cvpn.apply_cli import _report

    cause = json.dumps({"errorMessage": "ExportClientVpnClientConfiguration: InvalidParameterValue: gone"})
    progress = SimpleNamespace(
        status="SUCCEEDED",
        error=None,
        cause=None,
        output={
            "status": "SUCCEEDED",
            "endpoint_id": "cvpn-endpoint-0123456789abcdef0",
            "revision": 3,
            "changes": ["add route 10.9.0.0/16 via subnet-1"],
            "result": {
                "client_configuration": None,
                "export_error": {"Error": "ClientVpnApiError", "Cause": cause},
            },
        },
    )
    assert _report(argparse.Namespace(), progress) == 0
    printed = capsys.readouterr()
    assert "revision 3 applied to cvpn-endpoint-0123456789abcdef0" in printed.out
    assert "could not be exported (ClientVpnApiError: ExportClientVpnClientConfiguration" in printed.err
    assert "--client-vpn-endpoint-id cvpn-endpoint-0123456789abcdef0" in printed.err
