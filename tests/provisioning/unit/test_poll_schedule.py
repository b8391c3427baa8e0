"""The wait loops' schedule: the first wait, polls that grow to a bound, and the overall timeout.

The association wait of the provisioning is read from its definition, so the figures here are those a
deployed state machine uses.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from pydantic import ValidationError

from cvpn_shared.provisioning.errors import ProvisioningTimedOut
from cvpn_shared.provisioning.models.workflow_state import PollState
from cvpn_shared.provisioning.steps import next_poll
from tests.fixtures import REPO_ROOT

MACHINES = sorted((REPO_ROOT / "statemachines" / "provisioning").glob("*.asl.json"))


def _definition(name: str) -> dict[str, Any]:
    return json.loads((REPO_ROOT / "statemachines" / "provisioning" / name).read_text())


def _association_wait() -> PollState:
    return PollState.model_validate(
        _definition("provision_endpoint.asl.json")["States"]["BeginAssociationWait"]["Result"]
    )


def _checks_until(poll: PollState, ready_at: int) -> list[int]:
    """The seconds into the loop at which each check runs, until one finds the resource ready (it is
    from ``ready_at`` on); ProvisioningTimedOut propagates."""
    seen: list[int] = []
    while True:
        at = poll.waited_seconds + poll.next_wait_seconds
        poll = next_poll(poll, ready=at >= ready_at)
        seen.append(poll.waited_seconds)
        if poll.ready:
            return seen


def test_the_association_wait_backs_off_from_the_first_poll_to_its_bound() -> None:
    """Given the definition's association wait, when the associations never come,
    then the checks run after the first wait and then 10, 20, 40 s apart and every 60 s after,
    the last one exactly at the 30-minute timeout, which fails naming the seconds and checks."""
    start = _association_wait()
    assert (start.next_wait_seconds, start.poll_seconds, start.max_poll_seconds) == (240, 10, 60)
    assert start.timeout_seconds == 1800
    checks: list[int] = []
    poll = start
    with pytest.raises(ProvisioningTimedOut) as raised:
        while True:
            poll = next_poll(poll, ready=False)
            checks.append(poll.waited_seconds)
    gaps = [later - earlier for earlier, later in itertools.pairwise(checks)]
    assert checks[0] == 240
    assert gaps[:3] == [10, 20, 40]
    assert set(gaps[3:]) == {60}
    # The last wait is cut short so that the check that times out runs at the timeout exactly.
    assert checks[-1] < 1800 == checks[-1] + poll.next_wait_seconds
    assert poll.next_wait_seconds < 60
    assert str(raised.value) == (
        f"associations: not ready after 1800 s of waiting (timeout 1800 s, {len(checks) + 1} checks)"
    )
    # Far fewer checks than polls of 10 s all along (1 + (1800 - 240) / 10 of them).
    assert len(checks) + 1 == 29 < 1 + (1800 - 240) // 10


def test_an_association_is_seen_at_most_one_bounded_poll_late() -> None:
    """Given associations ready at any second of the 30-minute wait, the check that sees them runs
    at most 60 s (the longest poll) after they are ready or the first wait ends, and never before."""
    start = _association_wait()
    for ready_at in range(0, 1801):
        seen = _checks_until(start, ready_at)
        assert seen[-1] >= ready_at
        assert seen[-1] - max(ready_at, 240) <= 60, ready_at
        assert all(at < ready_at for at in seen[:-1])


def test_a_wait_never_goes_past_the_timeout() -> None:
    """Given a timeout that is no sum of the polls, the last wait is cut so its check falls on it."""
    poll = PollState(what="associations", next_wait_seconds=5, poll_seconds=10, max_poll_seconds=60)
    poll = poll.model_copy(update={"timeout_seconds": 100})
    checks: list[int] = []
    with pytest.raises(ProvisioningTimedOut, match="not ready after 100 s"):
        while True:
            poll = next_poll(poll, ready=False)
            checks.append(poll.waited_seconds)
    assert checks == [5, 15, 35, 75]


def test_without_a_bound_every_poll_lasts_poll_seconds() -> None:
    """Given the rules-and-routes wait (no max_poll_seconds), the checks stay poll_seconds apart."""
    result = _definition("provision_endpoint.asl.json")["States"]["BeginRulesAndRoutesWait"]["Result"]
    start = PollState.model_validate(result)
    assert start.max_poll_seconds is None
    seen = _checks_until(start, ready_at=200)
    gaps = {later - earlier for earlier, later in itertools.pairwise(seen)}
    assert seen[0] == start.next_wait_seconds
    assert gaps == {start.poll_seconds}
    assert seen[-1] == 200


def test_a_bound_below_the_first_poll_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError, match=r"max_poll_seconds: 5 is below poll_seconds \(10\)"):
        PollState(what="associations", next_wait_seconds=0, poll_seconds=10, max_poll_seconds=5)


def test_each_check_carries_every_setting_its_loop_starts_with() -> None:
    """A check task's ResultSelector rebuilds the loop's state: dropping a setting its loop starts
    with (the polls' bound, say) would silently change the schedule after the first check."""
    checked: list[str] = []
    for path in MACHINES:
        for states in _state_scopes(json.loads(path.read_text())):
            for name, begin in states.items():
                result = begin.get("Result")
                if begin["Type"] != "Pass" or not isinstance(result, dict) or "what" not in result:
                    continue  # not the start of a Wait / check / Choice loop
                wait = states[begin["Next"]]
                assert wait["Type"] == "Wait", f"{path.name}: {name} is followed by a Wait"
                check = states[wait["Next"]]
                carried = {key.removesuffix(".$") for key in check["ResultSelector"]}
                assert set(result) <= carried, (
                    f"{path.name}: {wait['Next']} drops {sorted(set(result) - carried)}"
                )
                checked.append(wait["Next"])
    assert {"CheckAssociations", "CheckRulesAndRoutes"} <= set(checked)


def _state_scopes(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The States of ``definition`` and of every branch and Map iterator in it."""
    scopes = [definition.get("States", {})]
    for state in definition.get("States", {}).values():
        for branch in state.get("Branches", []):
            scopes += _state_scopes(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                scopes += _state_scopes(state[key])
    return scopes
