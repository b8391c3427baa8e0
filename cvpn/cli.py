"""`cvpn`: the command line of Client VPN Autopilot.

cvpn local up [--port 4566] [--api-port 3000] [--time-scale 60]   serve the local cloud (and a sign-in issuer)
              [--parameter-overrides K=V ...] [--config-env NAME]   with these template parameters
              [--iam off]                                           without IAM enforcement
cvpn local connect ENDPOINT_ID --user alice [--fail REASON]      simulate a client connection
cvpn local faults OPERATION --throttle-rate 0.3                   inject API faults
cvpn local clock [--time-scale N] [--advance SECONDS]             read or steer emulated time
cvpn demo                                                         the demo on the local cloud
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvpn import intake_cli, monitoring_cli
from cvpn.common import DEFAULT_LOCAL_URL, CliError, aws_client, project_dir, require_local_cloud


def _admin(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the admin API of a running local cloud (`cvpn local up`)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{url.rstrip('/')}/_localcloud/{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            detail = json.loads(error.read())
        except ValueError:
            detail = {"message": error.reason}
        code = detail.get("code")
        raise CliError(f"{code + ': ' if code else ''}{detail.get('message')}") from error
    except urllib.error.URLError as error:
        raise CliError(
            f"no local cloud answers at {url} ({error.reason}); start one with `cvpn local up`"
        ) from error


# ---------------------------------------------------------------------------------------- local up
DEFAULT_STACK_NAME = "cvpn-autopilot"


@dataclass(frozen=True)
class LocalDeploy:
    """What `cvpn local up` deploys: the template, the stack name and the parameter values, from the
    command line over a samconfig environment, as `sam deploy` takes them."""

    template: Path
    stack_name: str
    parameter_overrides: dict[str, str]
    source: str  # where the parameter values come from, for the banner
    hidden: frozenset[str] = frozenset()  # NoEcho parameters: never printed
    notes: tuple[str, ...] = ()


def local_deploy(args: argparse.Namespace) -> LocalDeploy:
    """Read and check the template, samconfig and parameter flags of `cvpn local up`, before anything
    starts. Raises ``CliError`` naming the flag, the parameter and the reason."""
    from localcloud.deploy import DeployError, template_parameter_values
    from localcloud.sam import SamError, load_template
    from localcloud.samcli import (
        SamCliError,
        default_samconfig,
        parse_parameter_overrides,
        read_samconfig_environment,
    )

    template = Path(args.template) if args.template else project_dir() / "template.yaml"
    if not template.is_file():
        if args.template:
            raise CliError(f"--template: {template} does not exist")
        raise CliError(
            "--template: no template.yaml in the working directory; run from the project's folder "
            "or give --template PATH"
        )
    environment = None
    if args.config_env is not None or args.config_file is not None:
        # As in SAM CLI: the file is looked for next to the template, the environment is "default".
        folder = template.resolve().parent
        path = default_samconfig(folder) if args.config_file is None else folder / args.config_file
        flag = f"--config-env {args.config_env}" if args.config_env else f"--config-file {args.config_file}"
        try:
            environment = read_samconfig_environment(path, args.config_env or "default")
        except SamCliError as error:
            raise CliError(f"{flag}: {error}") from error
    notes: list[str] = []
    overrides: dict[str, str] = {}
    source = ""
    if args.parameter_overrides is not None:
        try:
            overrides = parse_parameter_overrides(args.parameter_overrides)
        except SamCliError as error:
            raise CliError(str(error)) from error
        source = "--parameter-overrides"
        from_samconfig = environment.parameter_overrides if environment is not None else None
        replaced = sorted(set(from_samconfig or {}) - set(overrides))
        if environment is not None and replaced:
            notes.append(
                f"--parameter-overrides replaces the parameter_overrides of {environment.label} as sam "
                f"deploy does; not applied: {', '.join(replaced)}"
            )
    elif environment is not None and environment.parameter_overrides is not None:
        overrides = environment.parameter_overrides
        source = environment.label
    stack_name = args.stack_name or (environment.stack_name if environment else None) or DEFAULT_STACK_NAME
    try:
        declared = load_template(template).get("Parameters") or {}
        template_parameter_values({"Parameters": declared}, overrides)
    except (SamError, DeployError) as error:
        raise CliError(f"cannot deploy {template}: {error}") from error
    hidden = frozenset(
        name
        for name, definition in declared.items()
        if isinstance(definition, dict) and str(definition.get("NoEcho", "")).lower() == "true"
    )
    return LocalDeploy(template, stack_name, overrides, source, hidden, tuple(notes))


def cmd_local_up(args: argparse.Namespace) -> int:
    require_local_cloud("cvpn local up")
    if args.no_deploy:
        given = [flag for flag in ("parameter_overrides", "config_env", "config_file") if getattr(args, flag)]
        if given:
            raise CliError(f"--{given[0].replace('_', '-')}: nothing is deployed with --no-deploy")
    plan = None if args.no_deploy else local_deploy(args)

    from localcloud.cloud import LocalCloud
    from localcloud.deploy import DeployError

    cloud = LocalCloud(
        port=args.port,
        api_port=args.api_port,
        time_scale=args.time_scale,
        oidc_port=args.oidc_port,
        iam=args.iam == "on",
    )
    cloud.start()
    stopped = threading.Event()

    def _stop(*_: object) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        print(f"AWS endpoint   {cloud.endpoint_url}   (time scale {cloud.clock.time_scale:g}x)")
        if not cloud.iam:
            print("IAM            off: functions use the fake credentials, no call is authorized")
        if plan is not None:
            try:
                stack = cloud.deploy(
                    plan.template, stack_name=plan.stack_name, parameter_overrides=plan.parameter_overrides
                )
            except DeployError as error:
                raise CliError(f"cannot deploy {plan.template}: {error}") from error
            print(f"stack          {stack.stack_name} deployed from {plan.template}")
            if stack.stack_name != DEFAULT_STACK_NAME:
                print(f"               (other commands: --local --stack-name {stack.stack_name})")
            if plan.parameter_overrides:
                print(f"parameters     from {plan.source}")
                for key, value in sorted(plan.parameter_overrides.items()):
                    print(f"  {key:<28} {'*****' if key in plan.hidden else value}")
            for note in plan.notes:
                print(f"note           {note}")
            print("outputs")
            for key, value in sorted(stack.outputs.items()):
                print(f"  {key:<28} {value}")
        if cloud.api_url:
            print(f"API base URL   {cloud.api_url}   (request form: {cloud.api_url}/)")
        if cloud.oidc is not None:
            print(f"OIDC issuer    {cloud.oidc.issuer_url}   (signs in {cloud.oidc.user.email} at once)")
        print(f"try: aws --endpoint-url {cloud.endpoint_url} ec2 describe-client-vpn-endpoints")
        print("Ctrl-C to stop.", flush=True)
        stopped.wait()
    finally:
        cloud.stop()
    return 0


# ----------------------------------------------------------------------------------- local connect
def cmd_local_connect(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "endpoint_id": args.endpoint_id,
        "device_ip": args.device_ip,
        "outcome": "failure" if args.fail else "success",
    }
    if args.user:
        body["username"] = args.user
    if args.common_name:
        body["common_name"] = args.common_name
    if args.fail:
        body["failure_reason"] = args.fail
    result = _admin(args.url, "POST", "connect", body)
    print(json.dumps(result, indent=2))
    return 0


def cmd_local_faults(args: argparse.Namespace) -> int:
    if args.clear:
        result = _admin(args.url, "DELETE", "faults")
    elif args.operation:
        knobs: dict[str, Any] = {"operation": args.operation}
        for name in (
            "throttle_rate",
            "concurrent_mutation_rate",
            "association_failures",
            "not_found_after_create_seconds",
            "fail_with",
            "fail_count",
        ):
            value = getattr(args, name)
            if value is not None:
                knobs[name] = value
        result = _admin(args.url, "POST", "faults", knobs)
    else:
        result = _admin(args.url, "GET", "faults")
    print(json.dumps(result, indent=2))
    return 0


def cmd_local_clock(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.time_scale is not None:
        body["time_scale"] = args.time_scale
    if args.advance is not None:
        body["advance_seconds"] = args.advance
    print(json.dumps(_admin(args.url, "POST", "clock", body), indent=2))
    return 0


def _aws_clients(args: argparse.Namespace) -> tuple[Any, Any]:
    return aws_client(args, "cloudformation"), aws_client(args, "stepfunctions")


def _print_step(step: str) -> None:
    print(f"  -> {step}", flush=True)


def _report(progress: Any) -> int:
    print(f"execution {progress.execution_arn}: {progress.status} after {progress.state_transitions} steps")
    if progress.status == "SUCCEEDED":
        print(json.dumps(progress.output, indent=2))
        return 0
    if progress.status == "RUNNING":
        return 0
    print(f"error: {progress.error}\ncause: {progress.cause}", file=sys.stderr)
    return 1


def cmd_provision(args: argparse.Namespace) -> int:
    from cvpn.provision import (
        PROVISION_OUTPUT,
        StackNotFound,
        follow_execution,
        stack_outputs,
        start_provisioning,
    )

    path = Path(args.request)
    try:
        request = json.loads(path.read_text())
    except OSError as error:
        raise CliError(f"REQUEST: cannot read {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise CliError(f"REQUEST: {path} is not JSON (line {error.lineno}: {error.msg})") from error
    if not isinstance(request, dict) or not request.get("request_id"):
        raise CliError(f"REQUEST: {path} must be a JSON object with a request_id")
    cloudformation, sfn = _aws_clients(args)
    try:
        machine = stack_outputs(cloudformation, args.stack_name)[PROVISION_OUTPUT]
    except (StackNotFound, KeyError) as error:
        raise CliError(f"--stack-name {args.stack_name}: {error}") from error
    execution = start_provisioning(sfn, machine, request, source="cli")
    print(f"started {execution}")
    if not args.wait:
        print(f"follow it with: cvpn status {execution}")
        return 0
    return _report(follow_execution(sfn, execution, on_step=_print_step, poll_seconds=args.poll))


def cmd_status(args: argparse.Namespace) -> int:
    from cvpn.provision import PROVISION_OUTPUT, describe_progress, execution_name, stack_outputs

    _cloudformation, sfn = _aws_clients(args)
    execution = args.id
    if not execution.startswith("arn:"):
        machine = stack_outputs(_cloudformation, args.stack_name)[PROVISION_OUTPUT]
        name = execution if execution.startswith("cli-") else execution_name(execution)
        execution = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    progress = describe_progress(sfn, execution)
    for step in progress.steps:
        _print_step(step)
    return _report(progress)


def cmd_decommission(args: argparse.Namespace) -> int:
    from cvpn.provision import DECOMMISSION_OUTPUT, follow_execution, stack_outputs

    cloudformation, sfn = _aws_clients(args)
    machine = stack_outputs(cloudformation, args.stack_name)[DECOMMISSION_OUTPUT]
    target = {"request_id": args.request_id} if args.request_id else {"endpoint_id": args.endpoint_id}
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(target))["executionArn"]
    print(f"started {execution}")
    if not args.wait:
        return 0
    return _report(follow_execution(sfn, execution, on_step=_print_step, poll_seconds=args.poll))


def cmd_demo(args: argparse.Namespace) -> int:
    require_local_cloud("cvpn demo")
    if not (project_dir() / "events").is_dir():
        raise CliError("cvpn demo runs the project's template.yaml and events/: run it from its folder")
    from cvpn.demo import run_demo

    return run_demo(time_scale=args.time_scale, out_dir=Path(args.out))


# ---------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cvpn", description="Client VPN Autopilot")
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="the local cloud (embedded AWS on loopback)")
    local_sub = local.add_subparsers(dest="local_command", required=True)

    up = local_sub.add_parser("up", help="serve the local cloud with template.yaml deployed, until Ctrl-C")
    up.add_argument("--port", type=int, default=4566, help="AWS endpoint port (default 4566)")
    up.add_argument("--api-port", type=int, default=3000, help="HTTP API port (default 3000)")
    up.add_argument(
        "--time-scale", type=_positive_float, default=60.0, help="emulated seconds per real second"
    )
    up.add_argument(
        "--template",
        help="SAM template to deploy (default: template.yaml of the working directory, else of the checkout)",
    )
    up.add_argument(
        "--stack-name", help=f"stack name (default: the samconfig environment's, else {DEFAULT_STACK_NAME})"
    )
    up.add_argument(
        "--parameter-overrides",
        nargs="+",
        metavar="KEY=VALUE",
        help="template parameters as sam deploy takes them: Key=Value pairs (quote a value with spaces: "
        "Key='a b'), ParameterKey=Key,ParameterValue=Value pairs, or file://params.yaml|.toml; "
        "replaces the samconfig environment's parameter_overrides",
    )
    up.add_argument(
        "--config-env",
        metavar="NAME",
        help="read stack_name and parameter_overrides of this samconfig environment "
        "([NAME.deploy.parameters] over [NAME.global.parameters])",
    )
    up.add_argument(
        "--config-file",
        metavar="PATH",
        help="the samconfig file, relative to the template's folder as in SAM CLI "
        "(default samconfig.toml; environment default unless --config-env)",
    )
    up.add_argument("--no-deploy", action="store_true", help="serve the embedded AWS only")
    up.add_argument(
        "--oidc-port",
        type=int,
        default=0,
        help="port of the local OIDC issuer the form signs in with (any free one)",
    )
    up.add_argument(
        "--iam",
        choices=("on", "off"),
        default="on",
        help="on (default): each function, state machine and schedule calls with its template role and "
        "the local cloud refuses what the role's policies do not allow; off: no IAM checks (debugging)",
    )
    up.set_defaults(func=cmd_local_up)

    connect = local_sub.add_parser("connect", help="simulate a client connecting to an endpoint")
    connect.add_argument("endpoint_id")
    connect.add_argument("--user", help="username (Active Directory / SAML endpoints)")
    connect.add_argument("--common-name", help="certificate common name (mutual TLS)")
    connect.add_argument("--device-ip", default="203.0.113.10", help="the client's public address")
    connect.add_argument("--fail", metavar="REASON", help="make the attempt fail with this reason")
    connect.add_argument("--url", default=DEFAULT_LOCAL_URL)
    connect.set_defaults(func=cmd_local_connect)

    faults = local_sub.add_parser("faults", help="show, set or clear injected API faults")
    faults.add_argument("operation", nargs="?", help="API operation, e.g. AssociateClientVpnTargetNetwork")
    faults.add_argument("--throttle-rate", type=float, help="share of calls answered RequestLimitExceeded")
    faults.add_argument("--concurrent-mutation-rate", type=float)
    faults.add_argument("--association-failures", type=int, help="next N associations end association-failed")
    faults.add_argument(
        "--not-found-after-create-seconds", type=float, help="NotFound for this long after a create"
    )
    faults.add_argument(
        "--fail-with",
        metavar="CODE",
        help="answer the next calls with this EC2 error code and AWS's HTTP status for it (server errors "
        "such as InternalError 500 or ServiceUnavailable 503, which the SDKs retry; client errors 400)",
    )
    faults.add_argument("--fail-count", type=int, help="how many calls --fail-with fails (default 1)")
    faults.add_argument("--clear", action="store_true")
    faults.add_argument("--url", default=DEFAULT_LOCAL_URL)
    faults.set_defaults(func=cmd_local_faults)

    clock = local_sub.add_parser("clock", help="read or steer the emulated clock")
    clock.add_argument("--time-scale", type=_positive_float)
    clock.add_argument("--advance", type=float, metavar="SECONDS")
    clock.add_argument("--url", default=DEFAULT_LOCAL_URL)
    clock.set_defaults(func=cmd_local_clock)

    def aws_options(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--stack-name", default="cvpn-autopilot", help="the deployed stack (default cvpn-autopilot)"
        )
        command.add_argument(
            "--local", action="store_true", help=f"use the local cloud at {DEFAULT_LOCAL_URL}"
        )
        command.add_argument("--endpoint-url", help="any AWS-compatible endpoint")
        command.add_argument("--region", help="AWS region (default: your AWS configuration)")
        command.add_argument(
            "--poll", type=_positive_float, default=1.0, help="seconds between progress checks"
        )

    provision = sub.add_parser("provision", help="start provisioning an endpoint from a request file")
    provision.add_argument("request", metavar="REQUEST.json")
    provision.add_argument("--wait", action="store_true", help="follow the execution until it ends")
    aws_options(provision)
    provision.set_defaults(func=cmd_provision)

    status = sub.add_parser("status", help="show where a provisioning stands")
    status.add_argument("id", help="execution ARN, or the request id")
    aws_options(status)
    status.set_defaults(func=cmd_status)

    decommission = sub.add_parser("decommission", help="tear down an endpoint the product created")
    target = decommission.add_mutually_exclusive_group(required=True)
    target.add_argument("--request-id")
    target.add_argument("--endpoint-id")
    decommission.add_argument("--wait", action="store_true")
    aws_options(decommission)
    decommission.set_defaults(func=cmd_decommission)

    demo = sub.add_parser("demo", help="run the demo on a fresh local cloud")
    demo.add_argument("--time-scale", type=_positive_float, default=120.0)
    demo.add_argument("--out", default="out", help="folder for the client configuration")
    demo.set_defaults(func=cmd_demo)
    intake_cli.register(sub)  # cvpn request submit
    monitoring_cli.register(sub)  # cvpn findings, cvpn connections, cvpn monitoring reindex
    return parser


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as error:
        print(f"cvpn: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
