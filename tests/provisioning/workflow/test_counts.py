"""What one provisioning of the seed scenario in 2 AZs costs, in the counts that do not depend on timing.

Polls depend on the emulated clock (how long associations and routes take against how fast the
loop turns), so they are read from the execution and every count that depends on them is checked
against a formula of them. ``make bench`` prints the timed figures; this test pins the untimed ones.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from localcloud.faults import api_call_counts, reset_api_call_counts
from tests.provisioning.workflow.harness import Provisioning

ZONES = 2

# Every Client VPN API call that changes something, for the seed request in 2 AZs.
EXPECTED_MUTATING_CALLS = {
    "CreateClientVpnEndpoint": 1,
    "AssociateClientVpnTargetNetwork": ZONES,
    "AuthorizeClientVpnIngress": 1,
    "CreateClientVpnRoute": 2 * ZONES,
    "ApplySecurityGroupsToClientVpnTargetNetwork": 1,
    "ExportClientVpnClientConfiguration": 1,
}

# Invocations of the tasks that run once per item, whatever the timing.
EXPECTED_TASK_INVOCATIONS = {
    "ValidateRequestFunction": 1,
    "CreateEndpointFunction": 1,
    "AssociateSubnetFunction": ZONES,
    "AuthorizeIngressFunction": 1,
    "CreateRouteFunction": 2 * ZONES,
    "ApplySecurityGroupsFunction": 1,
    "ExportConfigurationFunction": 1,
    "RecordOutcomeFunction": 1,
}
POLLING_TASKS = {
    "CheckAssociations": "CheckAssociationsFunction",
    "CheckRulesAndRoutes": "CheckRulesAndRoutesFunction",
}

# States entered once on the success path: ValidateRequest, CreateEndpoint, RevocationList? (Choice;
# the seed request has no revocation list, so ImportRevocationList is skipped), AssociateSubnets
# (Map), BeginAssociationWait, AuthorizeIngress (Map), CreateRoutes (Map), ApplySecurityGroups,
# BeginRulesAndRoutesWait, ExportConfiguration, RecordSuccess, Provisioned.
ONCE_PER_EXECUTION = 12
STATES_PER_POLL = 3  # Wait, check Task, Choice


def expected_state_transitions(*, zones: int, rules: int, routes: int, polls: int) -> int:
    """StateEntered events of a successful provisioning: fixed states, Map items, and 3 per poll.

    Per subnet an AssociateSubnet task; per rule an AuthorizeRule task; per route a ThroughEverySubnet
    Map and, per route and subnet, a CreateRoute task.
    """
    return ONCE_PER_EXECUTION + zones + rules + routes + routes * zones + STATES_PER_POLL * polls


def _history(product: Provisioning, execution_arn: str) -> list[dict[str, Any]]:
    sfn = product.cloud.client("stepfunctions")
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def _last_poll(events: list[dict[str, Any]], state_name: str) -> dict[str, Any]:
    exits = [
        json.loads(e["stateExitedEventDetails"]["output"])["poll"]
        for e in events
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == state_name
    ]
    assert exits, f"{state_name} never ran"
    return dict(exits[-1])


def test_one_provisioning_in_two_azs_makes_the_expected_calls(product: Provisioning) -> None:
    """Given the seed request in 2 AZs, when it is provisioned, the mutating Client VPN calls, the
    one-per-item task invocations and the state transitions (a formula of the polls) are as designed."""
    request = product.request(zones=ZONES)
    reset_api_call_counts()
    progress = product.provision(request)
    calls = api_call_counts()
    assert progress.status == "SUCCEEDED", (progress.error, progress.cause)
    events = _history(product, progress.execution_arn)

    mutating = {op: n for op, n in calls.items() if not op.startswith("Describe")}
    assert mutating == EXPECTED_MUTATING_CALLS

    logical_ids = {info.name: logical for logical, info in product.stack.functions.items()}
    invocations = Counter(
        logical_ids[e["lambdaFunctionScheduledEventDetails"]["resource"].split(":function:")[-1]]
        for e in events
        if e["type"] == "LambdaFunctionScheduled"
    )
    polls = {state: _last_poll(events, state)["polls"] for state in POLLING_TASKS}
    assert {
        f: n for f, n in invocations.items() if f not in POLLING_TASKS.values()
    } == EXPECTED_TASK_INVOCATIONS
    assert {state: invocations[function] for state, function in POLLING_TASKS.items()} == polls
    assert all(count >= 1 for count in polls.values())

    entered = [e for e in events if e["type"].endswith("StateEntered")]
    assert len(entered) == expected_state_transitions(
        zones=ZONES,
        rules=len(request["authorization_rules"]),
        routes=len(request["routes"]),
        polls=sum(polls.values()),
    )
