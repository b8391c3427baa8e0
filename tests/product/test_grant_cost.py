"""The grants cost model of ``make bench`` (bench/grants.py): what one grant does, priced line by line
with the unit prices written down in bench/stack_cost.py, for a month of grants."""

from __future__ import annotations

import json

import pytest

from bench.grants import (
    INTAKE,
    GrantUsage,
    approved_grant_path,
    connection_usd,
    endpoint_per_request_usd,
    grant_costs,
    percentile,
    report_costs,
)
from bench.stack_cost import PRICES, load_inventory

MEMORY = {
    "RequestApiFunction": 256,
    "ApprovalDecisionFunction": 256,
    "RequestApprovalFunction": 256,
    "GrantDecisionFunction": 256,
    "EndIntakeFunction": 256,
    "ExpireGrantFunction": 256,
    "ClientConnectFunction": 512,
}
USAGE = GrantUsage(
    grant_item_bytes=1500,  # 2 KB as DynamoDB bills writes
    connect_item_bytes=300,  # 1 KB
    page_views=4,
    connects=3,
    connect_hours=1.5,
    grant_hours=4,
    intake_transitions=7,
    subnets=3,
    connect_billed_ms=20,
    other_billed_ms=100,
)


def _lines(grants: int, usage: GrantUsage = USAGE) -> dict[str, tuple[float, float]]:
    return {
        f"{line.service}: {line.item}": (line.usd, line.usd_after_free_tier)
        for line in grant_costs(usage, grants, MEMORY, log_bytes_per_invocation=2000)
    }


def test_each_line_is_quantity_per_grant_times_grants_times_its_price() -> None:
    lines = _lines(1000)

    assert lines["API Gateway: HTTP API requests"][0] == pytest.approx(1000 * (2 + 4) * 1.00 / 1e6)
    request_api = 1000 * 5  # the request and 4 page views
    assert lines["Lambda: RequestApiFunction"][0] == pytest.approx(
        request_api * 0.20 / 1e6 + request_api * 0.1 * 0.25 * 0.0000133334
    )
    assert lines["Lambda: ClientConnectFunction"][0] == pytest.approx(
        3000 * 0.20 / 1e6 + 3000 * 0.02 * 0.5 * 0.0000133334
    )
    # reads: 2 at request, 4 views, 3 at approval, 2 at expiry, 5 keys per login
    reads = 1000 * (2 + 4 + 3 + 2 + 5 * 3)
    # transactional writes: a 2 KB grant (4 WRU) three times, a 1 KB connect item (2 WRU) twice; a policy put
    writes = 1000 * (4 * 3 + 2 * 2 + 1)
    assert lines["DynamoDB: grants and blocklist reads and writes"][0] == pytest.approx(
        reads * 0.125 / 1e6 + writes * 0.625 / 1e6
    )
    assert lines["EventBridge Scheduler: at() expiry schedules"] == (pytest.approx(1000 * 1e-6), 0.0)
    assert lines["Step Functions: intake transitions"][0] == pytest.approx(7000 * 0.025 / 1000)
    assert lines["Step Functions: intake transitions"][1] == pytest.approx(3000 * 0.025 / 1000)  # 4,000 free
    invocations = 1000 * (5 + 2 + 3 + 1 + 3)  # request and views, decision, intake tasks, expiry, logins
    assert lines["CloudWatch: function logs"][0] == pytest.approx(invocations * 2000 / 1e9 * 0.50)
    assert lines["DynamoDB: storage of a month's grant records"][0] == pytest.approx(1000 * 1500 / 1e9 * 0.25)


def test_the_cost_grows_with_the_grants_and_none_cost_nothing() -> None:
    assert all(usd == 0.0 for usd, _ in _lines(0).values())
    one, thousand = _lines(1), _lines(1000)
    assert {name: usd * 1000 for name, (usd, _) in one.items()} == pytest.approx(
        {name: usd for name, (usd, _) in thousand.items()}
    )


def test_larger_grant_items_cost_more_write_units() -> None:
    small = _lines(1000)["DynamoDB: grants and blocklist reads and writes"][0]
    large_usage = GrantUsage(**{**USAGE.__dict__, "grant_item_bytes": 2049})  # 3 KB: 6 WRU a write
    large = _lines(1000, large_usage)["DynamoDB: grants and blocklist reads and writes"][0]

    assert large - small == pytest.approx(1000 * 3 * 2 * 0.625 / 1e6)


def test_connections_and_an_endpoint_per_request_are_priced_apart() -> None:
    assert connection_usd(USAGE, 1000) == pytest.approx(1000 * 3 * 1.5 * 0.05)
    assert endpoint_per_request_usd(USAGE, 1000) == pytest.approx(1000 * 3 * 4 * 0.10)


def test_the_report_names_every_price_it_uses_with_its_source() -> None:
    text = report_costs(USAGE, 1000, MEMORY)

    for key in ("http_api_request", "scheduler_invocation", "state_transition", "dynamodb_write_unit"):
        assert PRICES[key].source in text
    assert "1,000 grants a month" in text


def test_a_negative_number_of_grants_is_refused() -> None:
    with pytest.raises(ValueError, match="grants"):
        grant_costs(USAGE, -1, MEMORY)


def test_a_function_the_template_does_not_size_is_named() -> None:
    with pytest.raises(KeyError, match="ClientConnectFunction"):
        grant_costs(USAGE, 1, {name: mb for name, mb in MEMORY.items() if name != "ClientConnectFunction"})


def test_percentile_is_nearest_rank() -> None:
    samples = [float(value) for value in range(1, 101)]
    assert (percentile(samples, 0.5), percentile(samples, 0.99), percentile(samples, 1.0)) == (50, 99, 100)
    assert percentile([], 0.5) != percentile([], 0.5)  # NaN


def test_the_intake_path_of_an_approved_grant_is_read_from_the_definition() -> None:
    path = approved_grant_path(json.loads(INTAKE.read_text()))

    assert path[0] == "ApprovalRequired?" and path[-1] == "Granted"
    assert "RequestApproval" in path and "ActivateGrant" in path and "Provision" not in path


def test_a_choice_without_the_approved_branch_is_named() -> None:
    definition = {
        "StartAt": "Kind?",
        "States": {
            "Kind?": {"Type": "Choice", "Choices": [{"Next": "A"}], "Default": "B"},
            "A": {"Type": "Succeed"},
            "B": {"Type": "Succeed"},
        },
    }
    with pytest.raises(ValueError, match=r"Kind\?: no branch"):
        approved_grant_path(definition)
    assert approved_grant_path(definition, {"Kind?": "B"}) == ["Kind?", "B"]


def test_every_function_a_grant_uses_is_one_of_the_template() -> None:
    functions = load_inventory().functions

    assert {use.function for use in GrantUsage().lambdas()} <= set(functions)
