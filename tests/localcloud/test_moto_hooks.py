"""Tripwires for the moto internals the local cloud hooks into (moto 5.2.5).

If a moto upgrade moves or changes any of these, a test here fails and names the hook point, before
the emulators break in confusing ways.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws


def test_ec2_actions_dispatch_to_methods_named_in_snake_case() -> None:
    """BaseResponse.call_action finds the handler among the class's functions by snake_case name."""
    from moto.core.responses import BaseResponse
    from moto.core.utils import camelcase_to_underscores, method_names_from_class
    from moto.ec2.responses import EC2Response

    from localcloud.clientvpn import install

    install()
    source = inspect.getsource(BaseResponse.call_action)
    assert "camelcase_to_underscores(self._get_action())" in source
    assert "method_names_from_class(self.__class__)" in source
    assert camelcase_to_underscores("ApplySecurityGroupsToClientVpnTargetNetwork") == (
        "apply_security_groups_to_client_vpn_target_network"
    )
    assert "describe_client_vpn_endpoints" in method_names_from_class(EC2Response)


def test_install_is_idempotent() -> None:
    from moto.ec2.responses import EC2Response

    from localcloud.clientvpn import install
    from localcloud.clientvpn.responses import RESPONSE_METHODS

    install()
    before = {name: EC2Response.__dict__.get(name) for name in dir(EC2Response) if "client_vpn" in name}
    install()
    after = {name: EC2Response.__dict__.get(name) for name in dir(EC2Response) if "client_vpn" in name}
    assert before == after
    assert len(before) == len(RESPONSE_METHODS)


def test_probe_method_sees_parsed_params_and_its_result_is_serialized() -> None:
    """A method attached to EC2Response is dispatched, reads typed params, and ActionResult renders."""
    from moto.core.responses import ActionResult
    from moto.ec2.responses import EC2Response

    from localcloud.clientvpn import install

    seen: dict[str, Any] = {}

    def probe(self: Any) -> ActionResult:
        seen["filters"] = self._get_param("Filters")
        seen["max_results"] = self._get_param("MaxResults")
        return ActionResult(
            {
                "ClientVpnTargetNetworks": [
                    {"AssociationId": "cvpn-assoc-probe", "Status": {"Code": "associated"}}
                ]
            }
        )

    assert EC2Response().automated_parameter_parsing is True
    try:
        EC2Response.describe_client_vpn_target_networks = probe  # type: ignore[attr-defined]
        with mock_aws():
            ec2: Any = boto3.client("ec2", region_name="us-east-1")
            response = ec2.describe_client_vpn_target_networks(
                ClientVpnEndpointId="cvpn-endpoint-probe",
                MaxResults=7,
                Filters=[{"Name": "vpc-id", "Values": ["vpc-1", "vpc-2"]}],
            )
    finally:
        del EC2Response.describe_client_vpn_target_networks  # type: ignore[attr-defined]
        install()
    assert seen == {"filters": [{"Name": "vpc-id", "Values": ["vpc-1", "vpc-2"]}], "max_results": 7}
    assert response["ClientVpnTargetNetworks"] == [
        {"AssociationId": "cvpn-assoc-probe", "Status": {"Code": "associated"}}
    ]


def test_action_result_serializes_from_the_output_shape() -> None:
    from moto.core.responses import ActionResult

    assert list(inspect.signature(ActionResult.__init__).parameters) == ["self", "result"]
    assert callable(ActionResult.execute_result)


def test_ec2_client_errors_keep_code_and_message() -> None:
    from moto.ec2.exceptions import EC2ClientError

    error = EC2ClientError("InvalidClientVpnEndpointId.NotFound", "nope")
    assert error.code == "InvalidClientVpnEndpointId.NotFound"
    assert error.message == "nope"


def test_round_trip_through_mock_aws_and_backend_reset() -> None:
    """A Client VPN call works under mock_aws, nested structures parse, and moto's reset clears us."""
    from moto.core.base_backend import BackendDict

    from localcloud.clientvpn import install
    from localcloud.clientvpn.models import clientvpn_backends

    install()
    with mock_aws():
        ec2: Any = boto3.client("ec2", region_name="us-east-1")
        assert ec2.describe_client_vpn_endpoints()["ClientVpnEndpoints"] == []
        backend = clientvpn_backends["123456789012"]["us-east-1"]
        backend.endpoints["cvpn-endpoint-00000000000000000"] = object()  # type: ignore[assignment]
        BackendDict.reset()
        assert clientvpn_backends["123456789012"]["us-east-1"].endpoints == {}


def test_lambda_simple_invoke_signature() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    parameters = list(inspect.signature(LambdaSimpleBackend.invoke).parameters)
    assert parameters == ["self", "function_name", "qualifier", "body", "headers", "response_headers"]


def test_stepfunctions_wait_function_module_path() -> None:
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    assert hasattr(wait_function, "WaitFunction")
    assert hasattr(wait_function.WaitFunction, "_wait_interval")
    assert wait_function.time is __import__("time")


def test_stepfunctions_retrier_sleeps_with_time_sleep() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    tree = ast.parse(textwrap.dedent(inspect.getsource(retrier_decl)))
    sleeps = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "sleep"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "time"
    ]
    assert sleeps, "RetrierDecl no longer calls time.sleep: the local cloud's retry clock hook needs updating"


@pytest.mark.parametrize(
    "module",
    ["moto.ec2.models", "moto.acm.models", "moto.ds.models", "moto.iam.models", "moto.logs.models"],
)
def test_backend_dicts_the_emulator_reads_exist(module: str) -> None:
    import importlib

    names = {
        "moto.ec2.models": "ec2_backends",
        "moto.acm.models": "acm_backends",
        "moto.ds.models": "ds_backends",
        "moto.iam.models": "iam_backends",
        "moto.logs.models": "logs_backends",
    }
    assert hasattr(importlib.import_module(module), names[module])


# -- the emulated clock (localcloud.moto_clock, localcloud.logs, localcloud.stepfunctions) ----------------

# The moto services the local cloud serves to the product and its users.
_SERVED_SERVICES = (
    "acm", "awslambda", "awslambda_simple", "cloudformation", "cloudwatch", "core", "dynamodb", "ds",
    "ec2", "events", "iam", "kms", "logs", "s3", "secretsmanager", "sns", "sqs", "ssm", "stepfunctions",
    "sts",
)  # fmt: skip
_NOT_HOOKED = {
    # Not imported by moto's server (it needs LocalStack), so never run by the local cloud.
    "moto.stepfunctions.parser.provider",
    # Its one wall-clock read is in WaitFunction._wait_interval, which localcloud.stepfunctions replaces.
    "moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function",
}
_WALL_CLOCK_CALL = re.compile(
    r"\b(?:time\.time|time\.time_ns|datetime\.now|datetime\.utcnow|datetime\.today|date\.today)\("
)


def test_every_direct_wall_clock_read_in_the_served_services_is_hooked() -> None:
    """moto modules that read the wall clock without moto's utcnow are in WALL_CLOCK_MODULES."""
    import moto

    from localcloud.moto_clock import WALL_CLOCK_MODULES

    root = Path(moto.__file__).parent
    reading: set[str] = set()
    for service in _SERVED_SERVICES:
        for path in (root / service).rglob("*.py"):
            code = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
            if _WALL_CLOCK_CALL.search(code):
                reading.add("moto." + ".".join(path.relative_to(root).with_suffix("").parts))
    reading -= {"moto.core.utils"} | _NOT_HOOKED  # core.utils: utcnow itself, replaced by name
    assert reading == set(WALL_CLOCK_MODULES)


def test_moto_takes_now_from_core_utils_utcnow() -> None:
    from moto.core import utils

    assert "utcnow()" in inspect.getsource(utils.unix_time)
    assert utils.iso_8601_datetime_with_milliseconds.__module__ == "moto.core.utils"


def test_moto_clock_install_puts_moto_on_the_current_clock_and_uninstall_restores() -> None:
    from moto.core import utils
    from moto.logs import models as logs_models
    from moto.s3 import models as s3_models

    from localcloud import moto_clock
    from localcloud.clock import Clock, get_clock, set_clock

    was_installed = moto_clock.installed()
    moto_clock.uninstall()
    previous = get_clock()
    set_clock(Clock(time_scale=1, start=86400.0))
    try:
        assert utils.utcnow().year > 2000
        moto_clock.install()
        assert utils.unix_time() < 2 * 86400
        assert logs_models.utcnow().year == 1970
        assert s3_models.datetime.datetime.now().year == 1970
        assert isinstance(s3_models.datetime.datetime.now(), s3_models.datetime.datetime)
        moto_clock.uninstall()
        assert logs_models.utcnow().year > 2000
        assert s3_models.datetime is __import__("datetime")
    finally:
        set_clock(previous)
        if was_installed:
            moto_clock.install()


def test_logs_backend_methods_the_time_rules_wrap() -> None:
    from moto.logs.models import LogsBackend, LogStream

    from localcloud import logs

    was_installed = logs.installed()
    logs.uninstall()
    try:
        assert list(inspect.signature(LogsBackend.put_log_events).parameters) == [
            "self",
            "log_group_name",
            "log_stream_name",
            "log_events",
        ]
        assert all(callable(getattr(LogsBackend, name)) for name in logs._READERS)
        stream_attributes = inspect.getsource(LogStream.__init__)
        assert "self.events" in stream_attributes and "self.stored_bytes" in stream_attributes
    finally:
        if was_installed:
            logs.install()


def test_stepfunctions_timestamp_wait_and_jsonata_now_hook_points() -> None:
    """The Wait state's Timestamp and JSONata's evaluation time that localcloud.stepfunctions replaces
    (read from the module sources: the methods themselves may already be replaced)."""
    import jsonata
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import timestamp

    source = inspect.getsource(timestamp)
    assert "def _get_wait_seconds(self, env: Environment) -> int:" in source
    assert "delta = timestamp - datetime.datetime.now()" in source
    assert hasattr(timestamp.Timestamp, "_from_timestamp_string")
    assert hasattr(timestamp.Timestamp, "_create_failure_event")
    assert "self.timestamp = timebox.Timebox.current_milli_time()" in inspect.getsource(
        jsonata.Jsonata.evaluate
    )
