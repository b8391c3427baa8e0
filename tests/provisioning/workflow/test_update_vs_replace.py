"""The figures `make bench` prints for a typical change (one route, one group), counted on the local
cloud with Client VPN changes that complete at once, so every wait loop checks exactly once."""

from __future__ import annotations

from typing import Any

from bench.update_vs_replace import measure_replace, measure_update
from localcloud.clientvpn.models import ClientVpnTimings
from tests.provisioning.workflow.harness import Provisioning

# The update's path: validate, plan, record the start, then per change apply/wait/check, then the
# final settle, no new configuration, record the success.
CHANGES = 3  # the group rule, then the route through each of the 2 associated subnets
START_STATES = ["ValidateUpdate", "PlanUpdate", "WhatToDo?", "RecordStart", "BeginChanges", "NextChange?"]
PER_CHANGE_STATES = [
    "ApplyChange",
    "WaitAfterChange?",
    "WaitForChange",
    "CheckChange",
    "ChangeSettled?",
    "NextChange?",
]
END_STATES = [
    "BeginFinalSettle",
    "WaitForFinalSettle",
    "CheckFinalSettle",
    "FinalSettled?",
    "NewConfiguration?",
    "NoNewConfiguration",
    "RecordSuccess",
    "Updated",
]
# Describe calls: validation lists the endpoints; the plan reads the endpoint, its associations,
# rules, routes and connections; each settle check reads associations, rules, routes and the endpoint.
DESCRIBES = 1 + 5 + 4 * (CHANGES + 1)


def _instant(timings: ClientVpnTimings) -> None:
    for name in ("association_seconds", "authorization_seconds", "route_seconds", "deletion_seconds"):
        setattr(timings, name, 0.0)
    timings.disassociation_seconds = 0.0


def test_update_counts_and_replacement_costs_more(product: Provisioning, timings: ClientVpnTimings) -> None:
    _instant(timings)
    document: dict[str, Any] = product.request(zones=2)
    assert product.provision(document).status == "SUCCEEDED"

    update = measure_update(product, document)
    assert update.status == "SUCCEEDED"
    assert update.transitions == len(START_STATES) + CHANGES * len(PER_CHANGE_STATES) + len(END_STATES)
    names = {info.name: logical for logical, info in product.stack.functions.items()}
    assert {names[name]: count for name, count in update.invocations.items()} == {
        "ValidateUpdateFunction": 1,
        "PlanUpdateFunction": 1,
        "RecordRevisionFunction": 2,
        "ApplyChangeFunction": CHANGES,
        "CheckUpdateFunction": CHANGES + 1,
    }
    assert update.ec2_mutations == CHANGES
    assert {op: n for op, n in update.ec2_calls.items() if n} == {
        "DescribeClientVpnEndpoints": 1 + 1 + (CHANGES + 1),
        "DescribeClientVpnTargetNetworks": 1 + (CHANGES + 1),
        "DescribeClientVpnAuthorizationRules": 1 + (CHANGES + 1),
        "DescribeClientVpnRoutes": 1 + (CHANGES + 1),
        "DescribeClientVpnConnections": 1,
        "AuthorizeClientVpnIngress": 1,
        "CreateClientVpnRoute": 2,
    }
    assert sum(update.ec2_calls.values()) == DESCRIBES + CHANGES

    replace = measure_replace(product, document)
    assert replace.status == "SUCCEEDED"
    assert replace.transitions > update.transitions
    assert replace.lambda_invocations > update.lambda_invocations
    assert replace.ec2_mutations > update.ec2_mutations
    assert replace.usd > update.usd
