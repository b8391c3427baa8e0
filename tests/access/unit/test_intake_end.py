"""The end of an intake: what a request without an endpoint held goes back to the pool, and a failure
is reduced to the error and cause that explain it, as a Fail state accepts them."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from cvpn_shared.access.intake_end import IntakeEndTask, end_intake, failure_of


class Pool:
    def __init__(self, **held: str) -> None:
        self.held = {ipaddress.IPv4Network(block): owner for block, owner in held.items()}
        self.calls: list[tuple[str, str]] = []

    def release(self, block: ipaddress.IPv4Network, *, request_id: str) -> bool:
        self.calls.append((str(block), request_id))
        if self.held.get(block) != request_id:
            return False
        del self.held[block]
        return True


def _task(
    status: str, error: dict[str, Any] | None = None, block: str | None = "172.16.4.0/22"
) -> IntakeEndTask:
    return IntakeEndTask.model_validate(
        {
            "source": "request-form",
            "request": {"request_id": "REQ-1", "client_cidr_block": block, "name": "x"},
            "outcome": {"status": status, "error": error, "provisioning": {"output": {"result": {}}}},
        }
    )


def _provisioning_failed(error: str, cause: str) -> dict[str, str]:
    """What startExecution.sync:2 puts in the Catch: States.TaskFailed, the execution described."""
    described = {
        "ExecutionArn": "arn:...:execution:p:REQ-1",
        "Status": "FAILED",
        "Error": error,
        "Cause": cause,
    }
    return {"Error": "States.TaskFailed", "Cause": json.dumps(described)}


@pytest.mark.parametrize("status", ["REJECTED", "EXPIRED", "FAILED"])
def test_a_request_that_ended_without_an_endpoint_gives_its_block_back(status: str) -> None:
    pool = Pool(**{"172.16.4.0/22": "REQ-1"})
    answer = end_intake(_task(status, {"Error": "X", "Cause": "y"}), allocations=pool)
    assert pool.held == {}
    assert answer["released_client_cidr_block"] == "172.16.4.0/22"
    assert answer["status"] == status and not answer["error"]["Error"].startswith("States.")


def test_a_provisioned_request_keeps_its_block_and_its_result() -> None:
    pool = Pool(**{"172.16.4.0/22": "REQ-1"})
    answer = end_intake(_task("SUCCEEDED"), allocations=pool)
    assert pool.calls == [] and len(pool.held) == 1
    assert answer == {
        "status": "SUCCEEDED",
        "provisioning": {"output": {"result": {}}},
        "released_client_cidr_block": None,
    }


def test_a_block_another_request_holds_is_never_released() -> None:
    pool = Pool(**{"172.16.4.0/22": "REQ-2"})
    answer = end_intake(_task("REJECTED"), allocations=pool)
    assert len(pool.held) == 1 and answer["released_client_cidr_block"] is None


@pytest.mark.parametrize("block", [None, "", "not-a-cidr", "172.16.4.1/22", "2001:db8::/64"])
def test_a_request_without_a_pool_block_releases_nothing(block: str | None) -> None:
    pool = Pool()
    assert end_intake(_task("FAILED", block=block), allocations=pool)["released_client_cidr_block"] is None
    assert pool.calls == []


def test_the_provisionings_own_error_and_cause_come_out_of_the_task_failure() -> None:
    lambda_error = json.dumps({"errorType": "AssociationFailed", "errorMessage": "subnet-1: capacity"})
    answer = end_intake(
        _task("FAILED", _provisioning_failed("AssociationFailed", lambda_error)), allocations=Pool()
    )
    assert answer["error"] == {"Error": "AssociationFailed", "Cause": "subnet-1: capacity"}


def test_a_reserved_error_name_becomes_provisioning_failed_with_the_name_in_the_cause() -> None:
    answer = end_intake(
        _task("FAILED", _provisioning_failed("States.Timeout", "took too long")), allocations=Pool()
    )
    assert answer["error"] == {"Error": "ProvisioningFailed", "Cause": "States.Timeout: took too long"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, ("Unknown", "")),
        ({"Error": "ApprovalRejected", "Cause": "nope"}, ("ApprovalRejected", "nope")),
        (
            {"Error": "Lambda.Unknown", "Cause": '{"errorType": "KeyError", "errorMessage": "x"}'},
            ("KeyError", "x"),
        ),
        ({"Error": "States.TaskFailed", "Cause": "[1, 2]"}, ("States.TaskFailed", "[1, 2]")),
        (
            {"Error": "States.TaskFailed", "Cause": '{"Status": "FAILED"}'},
            ("States.TaskFailed", '{"Status": "FAILED"}'),
        ),
    ],
)
def test_failure_of_takes_what_it_cannot_unwrap_as_it_is(
    error: dict[str, str] | None, expected: tuple[str, str]
) -> None:
    assert failure_of(error) == expected


def test_the_cause_is_bounded() -> None:
    answer = end_intake(_task("FAILED", {"Error": "Boom", "Cause": "c" * 50_000}), allocations=Pool())
    assert len(answer["error"]["Cause"]) == 4000
