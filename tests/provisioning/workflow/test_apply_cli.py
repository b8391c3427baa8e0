"""`cvpn apply` and `cvpn history` against the local cloud: in place, run twice, refused, --replace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cvpn.cli import main
from tests.provisioning.workflow.harness import Provisioning


def _cvpn(product: Provisioning, *args: str) -> int:
    return main([*args, "--endpoint-url", product.cloud.endpoint_url, "--region", product.cloud.region])


def _write(tmp_path: Path, document: dict[str, Any], name: str = "request.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


@pytest.fixture
def provisioned(product: Provisioning) -> dict[str, Any]:
    document = product.request(zones=2)
    assert product.provision(document).status == "SUCCEEDED"
    return document


def test_apply_in_place_then_again_then_history(
    product: Provisioning, provisioned: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = {**provisioned, "routes": [*provisioned["routes"], {"destination_cidr": "10.60.0.0/16"}]}
    path = _write(tmp_path, changed)

    # Run twice in a row, as a retried script does: the second follows the first's execution.
    assert _cvpn(product, "apply", path) == 0
    assert "started " in capsys.readouterr().out
    assert _cvpn(product, "apply", path, "--wait", "--poll", "0.05") == 0
    out = capsys.readouterr().out
    assert "was already started" in out and "revision 2 applied to cvpn-endpoint-" in out, out
    assert "10.60.0.0/16" in out, out

    assert _cvpn(product, "apply", path, "--wait", "--poll", "0.05") == 0  # once applied: nothing to do
    again = capsys.readouterr().out
    assert "no changes" in again, again

    assert _cvpn(product, "history", provisioned["request_id"], "--json") == 0
    rows = json.loads(capsys.readouterr().out)["revisions"]
    assert [(row["revision"], row["outcome"]) for row in rows] == [(2, "SUCCEEDED"), (1, "PROVISIONED")]
    assert any("10.60.0.0/16" in change for change in rows[0]["changes"])

    endpoint_id = product.endpoints_for(provisioned["request_id"])[0]["ClientVpnEndpointId"]
    assert _cvpn(product, "history", endpoint_id) == 0
    table = capsys.readouterr().out
    assert "desired state at revision 2" in table and "SUCCEEDED" in table, table


def test_a_change_that_cannot_be_made_in_place_is_refused_then_replaced(
    product: Provisioning, provisioned: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_endpoint = product.endpoints_for(provisioned["request_id"])[0]["ClientVpnEndpointId"]
    changed = {**provisioned, "client_cidr_block": "172.20.0.0/22"}
    path = _write(tmp_path, changed)

    assert _cvpn(product, "apply", path) == 2
    err = capsys.readouterr().err
    assert "client_cidr_block" in err and "--replace" in err, err
    assert product.describe_endpoint(old_endpoint)["Status"]["Code"] == "available"  # type: ignore[index]

    assert _cvpn(product, "apply", path, "--replace", "--poll", "0.05") == 0
    out = capsys.readouterr().out
    new_id = f"{provisioned['request_id']}.r2"
    assert f"-> {new_id} (cvpn-endpoint-" in out, out
    assert "client configuration" in out, out

    new_endpoint = product.endpoints_for(new_id)[0]
    assert new_endpoint["ClientCidrBlock"] == "172.20.0.0/22"
    product.wait_until_gone(old_endpoint)
    # The old endpoint was decommissioned only after the new one's provisioning ended available.
    sfn = product.cloud.client("stepfunctions")
    created = _only(sfn, product.provision_arn, new_id)
    removed = _only(sfn, product.decommission_arn, provisioned["request_id"])
    assert json.loads(created["output"])["result"]["status"] == "available"
    assert removed["startDate"] >= created["stopDate"]


def _only(sfn: Any, machine: str, request_id: str) -> dict[str, Any]:
    mine = [
        sfn.describe_execution(executionArn=e["executionArn"])
        for e in sfn.list_executions(stateMachineArn=machine)["executions"]
        if e["name"].endswith(request_id.replace(".", "-"))
    ]
    assert len(mine) == 1, [e["name"] for e in mine]
    return mine[0]
