"""Every state machine file and template.yaml agree: each ${Name} a definition uses is supplied by
its DefinitionSubstitutions, each substitution is used, and every Lambda task names a function of
the template. Nothing account-specific is written into a definition."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.language_extensions import load_expanded_template
from tests.fixtures import REPO_ROOT

ROOT = REPO_ROOT


def _template() -> dict[str, Any]:
    """template.yaml as CloudFormation deploys it: Fn::ForEach loops expanded, long-form intrinsics."""
    return load_expanded_template(ROOT / "template.yaml")


def _state_machines() -> list[tuple[str, dict[str, Any]]]:
    resources = _template()["Resources"]
    return [
        (name, resource["Properties"])
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    ]


def test_template_has_the_provisioning_state_machines() -> None:
    names = {name for name, _ in _state_machines()}
    assert {"ProvisionEndpointStateMachine", "DecommissionEndpointStateMachine"} <= names


@pytest.mark.parametrize("name,properties", _state_machines(), ids=lambda v: v if isinstance(v, str) else "")
def test_substitutions_match_the_definition(name: str, properties: dict[str, Any]) -> None:
    text = (ROOT / properties["DefinitionUri"]).read_text()
    used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))
    supplied = set(properties.get("DefinitionSubstitutions", {}))
    assert used - supplied == set(), f"{name}: used but not supplied"
    assert supplied - used == set(), f"{name}: supplied but never used"
    assert not re.search(r"\d{12}", text), f"{name}: an account id is written into the definition"


@pytest.mark.parametrize("name,properties", _state_machines(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_substituted_function_exists_and_may_be_invoked(name: str, properties: dict[str, Any]) -> None:
    resources = _template()["Resources"]
    invocable = {
        policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for policy in properties.get("Policies", [])
        if isinstance(policy, dict) and "LambdaInvokePolicy" in policy
    }
    for key, value in properties.get("DefinitionSubstitutions", {}).items():
        if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn":
            function = value["Fn::GetAtt"][0]
            assert resources[function]["Type"] == "AWS::Serverless::Function", key
            assert function in invocable, f"{name} may not invoke {function}"


@pytest.mark.parametrize("name,properties", _state_machines(), ids=lambda v: v if isinstance(v, str) else "")
def test_definition_is_valid_json_with_reachable_states(name: str, properties: dict[str, Any]) -> None:
    definition = json.loads((ROOT / properties["DefinitionUri"]).read_text())

    def check(machine: dict[str, Any]) -> None:
        states = machine["States"]
        assert machine["StartAt"] in states
        for state_name, state in states.items():
            for target in [state.get("Next"), state.get("Default")] + [
                c.get("Next") for c in state.get("Choices", []) + state.get("Catch", [])
            ]:
                if target is not None:
                    assert target in states, f"{name}.{state_name} -> {target}"
            for nested in [state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])]:
                if nested:
                    check(nested)

    check(definition)


def _states(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state of ``machine``, those of its Map and Parallel bodies included."""
    for state_name, state in machine["States"].items():
        yield state_name, state
        for nested in [state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])]:
            if nested:
                yield from _states(nested)


@pytest.mark.parametrize("name,properties", _state_machines(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_task_that_retries_throttling_retries_every_transient_error(
    name: str, properties: dict[str, Any]
) -> None:
    """A task that retries throttling also retries every other named, retryable error a task raises
    (server errors, concurrency limits, not yet visible): one that it did not would fail the whole
    workflow on a transient error."""
    from cvpn_shared.provisioning.errors import RETRYABLE_ERROR_CODES

    retryable = {error.__name__ for error in RETRYABLE_ERROR_CODES.values()}
    assert "ServerError" in retryable
    definition = json.loads((ROOT / properties["DefinitionUri"]).read_text())
    checked = 0
    for state_name, state in _states(definition):
        retried = {error for retry in state.get("Retry", []) for error in retry["ErrorEquals"]}
        if "RequestLimitExceeded" in retried:
            checked += 1
            assert retryable <= retried, f"{name}.{state_name} does not retry {sorted(retryable - retried)}"
    if "provisioning" in properties["DefinitionUri"]:
        assert checked, f"{name}: no task retries throttling"


def _all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _all_states(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _all_states(processor["States"])


@pytest.mark.parametrize("path", sorted((ROOT / "statemachines").rglob("*.asl.json")), ids=lambda p: p.name)
def test_fail_states_take_their_error_from_a_task_that_chose_it(path: Any) -> None:
    """A Fail state refuses an error name that begins with States. (the execution ends States.Runtime
    instead), and a caught error is often one (States.TaskFailed, States.Timeout): a Fail state's
    ErrorPath reads what a task returned after choosing the name, never the caught error itself."""
    for name, state in _all_states(json.loads(path.read_text())["States"]):
        if state["Type"] != "Fail":
            continue
        if "Error" in state:
            assert not state["Error"].startswith("States."), name
        if "ErrorPath" in state:
            assert state["ErrorPath"] in ("$.record.error", "$.outcome.error.Error"), name


def _every_path_reaches(states: dict[str, Any], start: str, goal: str) -> bool:
    """Every way on from ``start`` (Next, Choices, Default, Catch) comes to ``goal`` before an end."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name == goal or name in seen:
            continue
        seen.add(name)
        state = states[name]
        following = [state.get("Next"), state.get("Default")]
        following += [choice["Next"] for choice in state.get("Choices", [])]
        following += [catch["Next"] for catch in state.get("Catch", [])]
        following = [item for item in following if item]
        if not following:
            return False
        todo.extend(following)
    return True


def test_every_ending_of_the_intake_passes_through_end_intake() -> None:
    """Whatever the outcome, EndIntake runs (it gives back the client CIDR) before the ticket hears."""
    states = json.loads((ROOT / "statemachines" / "access" / "intake_request.asl.json").read_text())["States"]
    outcomes = [name for name in states if name.startswith("Outcome") and name != "OutcomeUnexplained"]
    assert sorted(outcomes) == [
        "OutcomeExpired",
        "OutcomeFailed",
        "OutcomeGranted",
        "OutcomeRejected",
        "OutcomeSucceeded",
    ]
    for name in outcomes:
        assert _every_path_reaches(states, name, "EndIntake"), name
    assert states["EndIntake"]["Next"] == "HasCallback?"
    assert [c["Next"] for c in states["EndIntake"]["Catch"]] == ["OutcomeUnexplained"]
    assert states["OutcomeUnexplained"]["Next"] == "HasCallback?"
