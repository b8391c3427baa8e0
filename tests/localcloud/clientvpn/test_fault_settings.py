"""`cvpn local faults` refuses what it cannot do instead of accepting it silently: a rate outside
[0, 1], an operation no fault reaches, knobs without an operation; and `--seed` reseeds the faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cvpn.cli import main
from localcloud.cloud import AdminError, LocalCloud
from localcloud.faults import (
    FaultInjector,
    get_fault_injector,
    register_fault_operations,
    set_fault_injector,
    supported_operations,
)


@pytest.fixture
def injector() -> Iterator[FaultInjector]:
    previous = get_fault_injector()
    yield set_fault_injector(FaultInjector(seed=0))
    set_fault_injector(previous)


@pytest.mark.parametrize(
    "operation,knobs,message",
    [
        ("AssociateClientVpnTargetNetwork", {"throttle_rate": 3}, "throttle_rate: a probability in [0, 1]"),
        ("AssociateClientVpnTargetNetwork", {"concurrent_mutation_rate": -0.1}, "in [0, 1]"),
        ("AssociateClientVpnTargetNetwork", {"throttle_rate": "often"}, "throttle_rate: must be a number"),
        ("AssociateClientVpnTargetNetwork", {"association_failures": -1}, "a whole number >= 0"),
        ("AssociateClientVpnTargetNetwork", {"association_failures": 1.5}, "a whole number >= 0"),
        ("CreateClientVpnEndpoint", {"not_found_after_create_seconds": -5}, "seconds >= 0"),
        ("CreateClientVpnEndpoint", {"fail_with": " "}, "fail_with: a non-empty text"),
        ("AssociateClientVpnTargetNetwrok", {"throttle_rate": 0.5}, "faults are injected only into"),
        ("PutItem", {"throttle_rate": 0.5}, "got 'PutItem'"),
        ("GetClientVpnEndpointAuthorizationPolicy", {"throttle_rate": 0.5}, "faults are injected only into"),
    ],
)
def test_configure_refuses_what_it_cannot_inject(
    injector: FaultInjector, operation: str, knobs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        injector.configure(operation, **knobs)
    assert message in str(refused.value)
    assert injector.to_dict()["operations"] == {}


def test_the_supported_operations_are_the_client_vpn_api_and_what_extensions_register(
    injector: FaultInjector, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localcloud import faults

    monkeypatch.setattr(faults, "_extra_operations", set())
    operations = supported_operations()
    assert "AssociateClientVpnTargetNetwork" in operations and "CreateClientVpnRoute" in operations
    assert "PutItem" not in operations
    injector.configure("*", throttle_rate=1.0)
    register_fault_operations(["TestOnlyOperation"])
    injector.configure("TestOnlyOperation", throttle_rate=0.0)
    assert "TestOnlyOperation" in supported_operations()


def test_the_admin_api_reseeds_and_wants_an_operation_for_knobs(injector: FaultInjector) -> None:
    cloud = LocalCloud()
    with pytest.raises(AdminError, match="operation: required with throttle_rate"):
        cloud._admin_faults({"throttle_rate": 0.5})
    with pytest.raises(AdminError, match="seed: a whole number"):
        cloud._admin_faults({"seed": "x"})
    answer = cloud._admin_faults({"seed": 42})
    assert answer["seed"] == 42
    draws = [get_fault_injector()._random.random() for _ in range(3)]
    cloud._admin_faults({"seed": 42, "operation": "DescribeClientVpnEndpoints", "throttle_rate": 0.5})
    assert [get_fault_injector()._random.random() for _ in range(3)] == draws
    assert get_fault_injector().to_dict()["operations"]["DescribeClientVpnEndpoints"]["throttle_rate"] == 0.5


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--throttle-rate", "0.3"], "OPERATION: required with --throttle-rate"),
        (["CreateClientVpnRoute"], "give at least one fault"),
        (["CreateClientVpnRoute", "--throttle-rate", "0.3", "--clear"], "--clear: removes every fault"),
    ],
)
def test_the_command_line_refuses_incomplete_settings(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local", "faults", *argv, "--url", "http://127.0.0.1:9"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("value", ["3", "-0.5", "nan", "often"])
def test_the_command_line_refuses_a_rate_outside_0_to_1(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["local", "faults", "CreateClientVpnRoute", "--throttle-rate", value])
    assert exit_.value.code == 2
    assert "--throttle-rate" in capsys.readouterr().err


def test_faults_know_every_client_vpn_operation_the_local_cloud_serves() -> None:
    from localcloud.clientvpn.responses import RESPONSE_METHODS, UNSUPPORTED_OPERATIONS
    from localcloud.faults import CLIENT_VPN_OPERATIONS

    assert set(CLIENT_VPN_OPERATIONS) == set(RESPONSE_METHODS) - set(UNSUPPORTED_OPERATIONS)
