"""How `cvpn plan` prints a plan: phases in execution order, disruptions, refusals, findings."""

from __future__ import annotations

import pytest

from cvpn.plan_cli import print_plan
from cvpn_shared.provisioning.models.plan import PlanFinding
from cvpn_shared.provisioning.planning import plan_update
from tests.provisioning.unit.test_planning import SUBNET_A, SUBNET_C, document, live_endpoint


def test_phases_print_in_execution_order_with_disruptions(capsys: pytest.CaptureFixture[str]) -> None:
    desired = document(
        dns_servers=["10.0.0.9"],
        subnet_ids=[SUBNET_A, SUBNET_C],
        routes=[{"destination_cidr": "10.50.0.0/16", "description": "office"}],
    )
    finding = PlanFinding(severity="warning", field="routes[0]", message="no rule covers it")
    plan = plan_update(desired, live_endpoint(), revision=4, live_connections=5, findings=[finding])
    print_plan(plan, previous_revision=3)
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("(revision 3 -> 4); live connections now: 5")
    headings = [line for line in out.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert headings == [
        "Endpoint options:",
        "Associations added:",
        "Routes created:",
        "Associations removed:",
        "Findings:",
    ]
    assert " !  1. DNS servers: 10.0.0.2 -> 10.0.0.9  [dns_servers]" in out
    assert "disrupts: AWS resets every connection when the DNS servers change: the 5 live connections" in out
    assert f"    3. add route 10.50.0.0/16 via {SUBNET_C}  [routes[0]]" in out
    assert "  - warning: routes[0]: no rule covers it" in out
    assert "4 change(s), 2 disruptive (marked !); apply with `cvpn apply`" in out


def test_no_changes_and_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    print_plan(plan_update(document(), live_endpoint(), revision=2, live_connections=0), previous_revision=1)
    assert "No changes: the endpoint matches the document." in capsys.readouterr().out
    refused = plan_update(document(transport_protocol="tcp"), live_endpoint(), revision=2, live_connections=0)
    print_plan(refused, previous_revision=1)
    out = capsys.readouterr().out
    assert "Refused (cannot be changed in place):" in out and "instead: run `cvpn apply --replace`" in out
    assert "apply with" not in out
