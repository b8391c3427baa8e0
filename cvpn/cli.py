"""`cvpn`: the command line of Client VPN Autopilot.

cvpn local up [--port 4566] [--api-port 3000] [--time-scale 60]   serve the local cloud (and a sign-in issuer)
              [--parameter-overrides K=V ...] [--config-env NAME]   with these template parameters
              [--empty]                                             without the example network and sources
cvpn local network --local                                        the example network's ids
              [--iam off]                                           without IAM enforcement
cvpn local connect ENDPOINT_ID --user alice [--fail REASON]      simulate a client connection
cvpn local faults OPERATION --throttle-rate 0.3 [--seed N]        inject API faults
cvpn local clock [--time-scale N] [--advance SECONDS]             read or steer emulated time
cvpn provision REQUEST.json [--wait] [--retry]                    provision an endpoint
cvpn status ID | cvpn decommission --request-id ID                follow a request, tear its endpoint down
cvpn access grant|extend|revoke|list                              time-bound access to shared endpoints
cvpn plan REQUEST.json | cvpn drift [ENDPOINT]                    what a document would change, what drifted
cvpn adopt ENDPOINT_ID --request-id ID [--yes]                    manage an endpoint made elsewhere
cvpn apply REQUEST.json [--wait] [--replace] | cvpn history ID    change an endpoint in place, its revisions
cvpn server-cert check [ENDPOINT] [--days N]                      server certificates near expiry, renewals
cvpn ca create | cvpn cert list|revoke SERIAL                     client CA, personal certificates
cvpn demo                                                         the demo on the local cloud

`cvpn local up` writes where it serves to a state file (``cvpn.common.local_state_path``); ``--local``
on the other commands reads it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvpn import access_cli, apply_cli, cert_cli, intake_cli, monitoring_cli, plan_cli, server_cert_cli
from cvpn.common import (
    DEFAULT_LOCAL_URL,
    DEFAULT_STACK_NAME,
    CliError,
    LocalState,
    add_aws_options,
    aws_client,
    aws_error_message,
    project_dir,
    read_local_state,
    remove_local_state,
    require_local_cloud,
    resolve_target,
    write_local_state,
)


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


def _check_port_free(flag: str, port: int) -> None:
    """Refuse a port something already listens on, before anything starts."""
    import socket

    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            running = read_local_state()
            who = (
                f"the local cloud of process {running.pid} serves {running.endpoint_url}"
                if running is not None
                else "another program uses it"
            )
            raise CliError(
                f"{flag} {port}: already in use ({who}, {error.strerror}); stop it, or choose "
                f"another port with {flag} N (other commands then find it with --local)"
            ) from error


def cmd_local_up(args: argparse.Namespace) -> int:
    require_local_cloud("cvpn local up")
    if args.no_deploy:
        given = [flag for flag in ("parameter_overrides", "config_env", "config_file") if getattr(args, flag)]
        if given:
            raise CliError(f"--{given[0].replace('_', '-')}: nothing is deployed with --no-deploy")
    plan = None if args.no_deploy else local_deploy(args)
    for flag, port in (("--port", args.port), ("--api-port", args.api_port), ("--oidc-port", args.oidc_port)):
        _check_port_free(flag, port)

    from localcloud.cloud import LocalCloud
    from localcloud.deploy import DeployError

    cloud = LocalCloud(
        port=args.port,
        api_port=args.api_port,
        time_scale=args.time_scale,
        oidc_port=args.oidc_port,
        iam=args.iam == "on",
    )
    stopped = threading.Event()

    def _stop(*_: object) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        cloud.start()
    except OSError as error:  # a port taken between the check and the start
        cloud.stop()
        raise CliError(
            f"cannot serve the local cloud: {error.strerror or error}; choose other ports"
        ) from error
    state_written = False
    try:
        scale = cloud.clock.time_scale
        print(f"AWS endpoint   {cloud.endpoint_url}   (region {cloud.region}, time scale {scale:g}x)")
        if not cloud.iam:
            print("IAM            off: functions use the fake credentials, no call is authorized")
        stack_name = None
        secret = None
        stack = None
        if plan is not None:
            try:
                stack = cloud.deploy(
                    plan.template, stack_name=plan.stack_name, parameter_overrides=plan.parameter_overrides
                )
            except DeployError as error:
                raise CliError(f"cannot deploy {plan.template}: {error}") from error
            except OSError as error:
                raise CliError(
                    f"cannot serve the HTTP API: {error.strerror or error}; --api-port N"
                ) from error
            stack_name = stack.stack_name
            print(f"stack          {stack.stack_name} deployed from {plan.template}")
            if stack.stack_name != DEFAULT_STACK_NAME:
                also = f"(other commands: --local finds it; elsewhere --stack-name {stack.stack_name})"
                print(f"               {also}")
            if plan.parameter_overrides:
                print(f"parameters     from {plan.source}")
                for key, value in sorted(plan.parameter_overrides.items()):
                    print(f"  {key:<28} {'*****' if key in plan.hidden else value}")
            for note in plan.notes:
                print(f"note           {note}")
            print("outputs")
            for key, value in sorted(stack.outputs.items()):
                # The template's URL is API Gateway's; locally the API is served on loopback.
                shown = cloud.api_url if key == "IntakeApiUrl" and cloud.api_url else value
                print(f"  {key:<36} {shown}")
        if not args.empty:
            secret = _prepare_examples(cloud, stack)
        if cloud.api_url:
            print(f"API base URL   {cloud.api_url}   (request form: {cloud.api_url}/)")
        if cloud.oidc is not None:
            print(f"OIDC issuer    {cloud.oidc.issuer_url}   (signs in {cloud.oidc.user.email} at once)")
        state_path = write_local_state(
            LocalState(
                endpoint_url=cloud.endpoint_url,
                region=cloud.region,
                stack_name=stack_name,
                api_url=cloud.api_url,
                webhook_secret=secret,
                pid=os.getpid(),
            )
        )
        state_written = True
        print(f"state          {state_path}   (other commands find this cloud with --local)")
        print(f"try: cvpn local network --local; aws --endpoint-url {cloud.endpoint_url} ec2 describe-vpcs")
        print("Ctrl-C to stop.", flush=True)
        stopped.wait()
    finally:
        if state_written:
            remove_local_state(os.getpid())
        cloud.stop()
        _exit_without_collecting()
    return 0


def _exit_without_collecting() -> None:
    """Spare the process's exit the garbage collector's passes over a stopped local cloud.

    The interpreter collects every generation while it unloads modules; over the objects the cloud
    left behind (moto's backends, the deployed stack, every client) that took many seconds after
    Ctrl-C. Everything that needed an orderly end (workers, servers, the state file) has ended by now.
    """
    gc.freeze()


def _prepare_examples(cloud: Any, stack: Any) -> str | None:
    """Build the example network (the ids events/ names) and, with a stack, configure the example
    webhook sources with a new secret; print both. Returns the secret."""
    from cvpn.local_setup import configure_example_sources, new_webhook_secret
    from localcloud.sample_network import EXAMPLE_IDS, build_sample_network

    network = build_sample_network(cloud.client, region=cloud.region, ids=EXAMPLE_IDS)
    print(
        f"network        {network.vpc_id} ({network.vpc_cidr}): the ids events/ names; `cvpn local network`"
    )
    print(f"               subnets {', '.join(network.subnet_ids)}")
    print(f"               security group {network.security_group_id}, directory {network.directory_id}")
    if stack is None or "IntakeSecretsPrefix" not in stack.outputs:
        return None
    secret = new_webhook_secret()
    sources = configure_example_sources(
        cloud.client, stack.outputs, project_dir() / "events" / "webhooks", secret
    )
    if not sources:
        return None
    names = ", ".join(f"{source.name} ({source.approval})" for source in sources)
    print(f"webhooks       example sources {names}, signed with the local secret {secret}")
    print("               cvpn request submit events/webhooks/jira-issue-updated.json --source jira --local")
    return secret


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
    result = _admin(_local_url(args), "POST", "connect", body)
    print(json.dumps(result, indent=2))
    return 0


_FAULT_KNOBS = (
    "throttle_rate",
    "concurrent_mutation_rate",
    "association_failures",
    "not_found_after_create_seconds",
    "fail_with",
    "fail_count",
    "latency_seconds",
    "unprocessed_keys_rate",
)


def cmd_local_faults(args: argparse.Namespace) -> int:
    url = _local_url(args)
    knobs: dict[str, Any] = {
        name: getattr(args, name) for name in _FAULT_KNOBS if getattr(args, name) is not None
    }
    if args.clear:
        if knobs or args.operation:
            raise CliError("--clear: removes every fault; give it alone")
        result = _admin(url, "DELETE", "faults")
    elif args.operation or args.seed is not None:
        if knobs and not args.operation:
            flags = ", ".join(f"--{name.replace('_', '-')}" for name in knobs)
            raise CliError(
                f"OPERATION: required with {flags} (e.g. AssociateClientVpnTargetNetwork, or * for all)"
            )
        if args.operation and not knobs:
            raise CliError(f"{args.operation}: give at least one fault, e.g. --throttle-rate 0.3")
        body: dict[str, Any] = {**knobs}
        if args.operation:
            body["operation"] = args.operation
        if args.seed is not None:
            body["seed"] = args.seed
        result = _admin(url, "POST", "faults", body)
    elif knobs:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in knobs)
        raise CliError(
            f"OPERATION: required with {flags} (e.g. AssociateClientVpnTargetNetwork, or * for all)"
        )
    else:
        result = _admin(url, "GET", "faults")
    print(json.dumps(result, indent=2))
    return 0


def cmd_local_clock(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.time_scale is not None:
        body["time_scale"] = args.time_scale
    if args.advance is not None:
        body["advance_seconds"] = args.advance
    print(json.dumps(_admin(_local_url(args), "POST", "clock", body), indent=2))
    return 0


def _local_url(args: argparse.Namespace) -> str:
    """The admin API of the local cloud: --url, else the running `cvpn local up`'s, else the default."""
    if args.url:
        return str(args.url)
    state = read_local_state()
    return state.endpoint_url if state is not None else DEFAULT_LOCAL_URL


def cmd_local_network(args: argparse.Namespace) -> int:
    from cvpn.local_setup import describe_network

    network = describe_network(lambda service: aws_client(args, service))
    if network is None:
        raise CliError(
            f"no example network at {args.endpoint_url or 'your AWS account'}: `cvpn local up` builds it "
            "(unless --empty)"
        )
    if args.json:
        print(json.dumps(network, indent=2))
        return 0
    print(f"{'vpc':<28} {network['vpc_id']}  ({network['vpc_cidr']})")
    for subnet in network["subnets"]:
        print(f"{'subnet':<28} {subnet['subnet_id']}  ({subnet['availability_zone']}, {subnet['cidr']})")
    for key in (
        "security_group_id",
        "directory_id",
        "server_certificate_arn",
        "client_root_certificate_arn",
        "saml_provider_arn",
        "log_group_name",
    ):
        print(f"{key.removesuffix('_id').removesuffix('_arn').replace('_', ' '):<28} {network[key] or '-'}")
    return 0


def _print_step(step: str) -> None:
    print(f"  -> {step}", flush=True)


def _report(progress: Any, args: argparse.Namespace | None = None) -> int:
    print(f"execution {progress.execution_arn}: {progress.status} after {progress.state_transitions} steps")
    if progress.status == "SUCCEEDED":
        print(json.dumps(progress.output, indent=2))
        if args is not None:
            _print_configuration_link(args, progress.output)
        return 0
    if progress.status == "RUNNING":
        return 0
    print(f"error: {progress.error}\ncause: {progress.cause}", file=sys.stderr)
    return 1


def _print_configuration_link(args: argparse.Namespace, output: Any) -> None:
    """A fresh link to the stored client configuration, signed with the caller's credentials: the
    workflow keeps only where the configuration is, never a link anyone reading it could use."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    from cvpn.provision import CONFIGURATION_LINK_SECONDS, configuration_link

    s3 = aws_client(args, "s3", config=Config(signature_version="s3v4"))
    try:
        link = configuration_link(s3, output)
    except (BotoCoreError, ClientError) as error:
        print(f"client configuration: no link could be made ({error})", file=sys.stderr)
        return
    if link is not None:
        url, key = link
        minutes = CONFIGURATION_LINK_SECONDS // 60
        print(f"client configuration ({key}), link valid {minutes} minutes:\n{url}")


def _state_machine(args: argparse.Namespace, output: str) -> str:
    from cvpn.provision import StackNotFound, stack_outputs

    try:
        outputs = stack_outputs(aws_client(args, "cloudformation"), args.stack_name)
    except StackNotFound as error:
        raise CliError(f"--stack-name {args.stack_name}: {error}") from error
    if output not in outputs:
        raise CliError(
            f"--stack-name {args.stack_name}: the stack has no output {output}; is it this product's?"
        )
    return outputs[output]


def _ended(execution: dict[str, Any]) -> str:
    from datetime import UTC

    stopped = execution.get("stopDate")
    return f" at {stopped.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if stopped is not None else ""


def cmd_provision(args: argparse.Namespace) -> int:
    from cvpn.provision import (
        PROVISION_OUTPUT,
        follow_execution,
        request_executions,
        retry_name,
        start_provisioning,
    )

    path = Path(args.request)
    try:
        request = json.loads(path.read_text())
    except OSError as error:
        raise CliError(f"REQUEST: cannot read {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise CliError(f"REQUEST: {path} is not JSON (line {error.lineno}: {error.msg})") from error
    except UnicodeDecodeError as error:
        raise CliError(f"REQUEST: {path} is not UTF-8 text ({error.reason})") from error
    if (
        not isinstance(request, dict)
        or not isinstance(request.get("request_id"), str)
        or not request["request_id"]
    ):
        raise CliError(f"REQUEST: {path} must be a JSON object with a request_id (text)")
    request_id = request["request_id"]
    machine = _state_machine(args, PROVISION_OUTPUT)
    sfn = aws_client(args, "stepfunctions")
    runs = [e for e in request_executions(sfn, machine, request_id) if str(e["name"]).startswith("cli-")]
    flags = _target_flags(args)
    if runs and runs[0]["status"] == "RUNNING":
        running = runs[0]["executionArn"]
        if args.retry:
            raise CliError(
                f"--retry: request {request_id} is still running ({running}); follow it with "
                f"`cvpn status {request_id}{flags}` and retry once it has ended"
            )
        if _input_of(sfn, running) != request:
            raise CliError(
                f"REQUEST: request {request_id} is running with another document ({running}); wait for it "
                f"to end (`cvpn status {request_id}{flags}`), then run this one with --retry"
            )
        execution = running
        print(f"following {execution} (already running)")
    else:
        if runs and not args.retry:
            last = runs[0]
            changed = _input_of(sfn, last["executionArn"]) != request
            print(
                f"request {request_id} already ran: {last['executionArn']} ended {last['status']}"
                f"{_ended(last)}{' with another document' if changed else ''}; nothing started."
            )
            print(f"  see how it went:  cvpn status {request_id}{flags}")
            wait = " --wait" if args.wait else ""
            print(f"  run it again:     cvpn provision {args.request} --retry{wait}{flags}")
            return 0 if last["status"] == "SUCCEEDED" and not changed else 1
        # Each run has a name of its own; a later run finds the endpoint an earlier one left.
        name = retry_name(request_id, len(runs) + 1) if runs else None
        execution = start_provisioning(sfn, machine, request, source="cli", name=name)
        print(f"started {execution}")
    if not args.wait:
        print(f"follow it with: cvpn status {request_id}{_target_flags(args)}")
        return 0
    return _report(follow_execution(sfn, execution, on_step=_print_step, poll_seconds=args.poll), args)


def _input_of(sfn: Any, execution_arn: str) -> Any:
    described = sfn.describe_execution(executionArn=execution_arn)
    try:
        return json.loads(described.get("input") or "{}").get("request")
    except (ValueError, AttributeError):
        return None


def _target_flags(args: argparse.Namespace) -> str:
    """The flags that point a follow-up command at the same stack and endpoint as this one."""
    flags = []
    if args.local:
        flags.append(" --local")
    elif args.endpoint_url:
        flags.append(f" --endpoint-url {args.endpoint_url}")
    if args.stack_name != DEFAULT_STACK_NAME:
        flags.append(f" --stack-name {args.stack_name}")
    return "".join(flags)


def cmd_status(args: argparse.Namespace) -> int:
    from cvpn.provision import INTAKE_OUTPUT, PROVISION_OUTPUT, describe_progress, request_executions

    sfn = aws_client(args, "stepfunctions")
    execution = args.id
    if not execution.startswith("arn:"):
        from cvpn.provision import StackNotFound, stack_outputs

        try:
            outputs = stack_outputs(aws_client(args, "cloudformation"), args.stack_name)
        except StackNotFound as error:
            raise CliError(f"--stack-name {args.stack_name}: {error}") from error
        found: list[dict[str, Any]] = []
        waiting = ""
        for output in (PROVISION_OUTPUT, INTAKE_OUTPUT):
            if output in outputs:
                found = request_executions(sfn, outputs[output], args.id)
            if found:
                waiting = " (the intake: no provisioning started yet)" if output == INTAKE_OUTPUT else ""
                break
        if not found:
            raise CliError(
                f"ID: no execution for request {args.id} in stack {args.stack_name}; check the request id "
                f"(the request's request_id, or the ticket key of a webhook) or give the execution ARN"
            )
        execution = found[0]["executionArn"]
        print(f"request {args.id}: {found[0]['name']}{waiting}")
        if len(found) > 1:
            earlier = ", ".join(f"{e['name']} {e['status']}" for e in found[1:])
            print(f"  earlier runs: {earlier}")
    progress = describe_progress(sfn, execution)
    for step in progress.steps:
        _print_step(step)
    return _report(progress, args)


def cmd_decommission(args: argparse.Namespace) -> int:
    from cvpn.provision import DECOMMISSION_OUTPUT, follow_execution

    machine = _state_machine(args, DECOMMISSION_OUTPUT)
    sfn = aws_client(args, "stepfunctions")
    target = {"request_id": args.request_id} if args.request_id else {"endpoint_id": args.endpoint_id}
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(target))["executionArn"]
    print(f"started {execution}")
    if not args.wait:
        print(f"follow it with: cvpn status {execution}{_target_flags(args)}")
        return 0
    return _report(follow_execution(sfn, execution, on_step=_print_step, poll_seconds=args.poll))


def cmd_demo(args: argparse.Namespace) -> int:
    require_local_cloud("cvpn demo")
    if not (project_dir() / "events").is_dir():
        raise CliError("cvpn demo runs the project's template.yaml and events/: run it from its folder")
    from cvpn.demo import run_demo

    try:
        return run_demo(time_scale=args.time_scale, out_dir=Path(args.out))
    finally:
        _exit_without_collecting()


# ---------------------------------------------------------------------------------------- parser
LOCAL_URL_HELP = f"the local cloud (default: the one `cvpn local up` runs, else {DEFAULT_LOCAL_URL})"


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
        "--empty",
        action="store_true",
        help="build no example network and configure no example webhook source",
    )
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
    connect.add_argument("--url", help=LOCAL_URL_HELP)
    connect.set_defaults(func=cmd_local_connect)

    faults = local_sub.add_parser("faults", help="show, set or clear injected API faults")
    faults.add_argument(
        "operation",
        nargs="?",
        help="a Client VPN API operation, e.g. AssociateClientVpnTargetNetwork, or * for every one; "
        "another service's as service:Operation, e.g. dynamodb:BatchGetItem",
    )
    faults.add_argument(
        "--throttle-rate", type=_rate, help="share of calls answered RequestLimitExceeded, 0 to 1"
    )
    faults.add_argument(
        "--concurrent-mutation-rate",
        type=_rate,
        help="share answered ConcurrentMutationLimitExceeded, 0 to 1",
    )
    faults.add_argument(
        "--association-failures", type=_count, help="next N associations end association-failed"
    )
    faults.add_argument(
        "--not-found-after-create-seconds", type=_seconds, help="NotFound for this long after a create"
    )
    faults.add_argument(
        "--fail-with",
        metavar="CODE",
        help="answer the next calls with this EC2 error code and AWS's HTTP status for it (server errors "
        "such as InternalError 500 or ServiceUnavailable 503, which the SDKs retry; client errors 400)",
    )
    faults.add_argument("--fail-count", type=_count, help="how many calls --fail-with fails (default 1)")
    faults.add_argument(
        "--latency-seconds",
        type=_seconds,
        help="real seconds to wait before answering (other services: name the operation as "
        "service:Operation, e.g. dynamodb:BatchGetItem)",
    )
    faults.add_argument(
        "--unprocessed-keys-rate",
        type=_rate,
        help="share of dynamodb:BatchGetItem calls left all unprocessed, 0 to 1",
    )
    faults.add_argument("--clear", action="store_true")
    faults.add_argument(
        "--seed",
        type=int,
        help="draw the random faults (rates) from this seed from now on: same seed, same faults",
    )
    faults.add_argument("--url", help=LOCAL_URL_HELP)
    faults.set_defaults(func=cmd_local_faults)

    clock = local_sub.add_parser("clock", help="read or steer the emulated clock")
    clock.add_argument("--time-scale", type=_positive_float)
    clock.add_argument("--advance", type=float, metavar="SECONDS")
    clock.add_argument("--url", help=LOCAL_URL_HELP)
    clock.set_defaults(func=cmd_local_clock)

    def aws_options(command: argparse.ArgumentParser) -> None:
        add_aws_options(command)
        command.add_argument(
            "--poll", type=_positive_float, default=1.0, help="seconds between progress checks"
        )

    network = local_sub.add_parser(
        "network", help="print the ids of the example network `cvpn local up` built"
    )
    add_aws_options(network)
    network.add_argument("--json", action="store_true", help="print JSON")
    network.set_defaults(func=cmd_local_network)

    provision = sub.add_parser("provision", help="start provisioning an endpoint from a request file")
    provision.add_argument("request", metavar="REQUEST.json")
    provision.add_argument("--wait", action="store_true", help="follow the execution until it ends")
    provision.add_argument(
        "--retry",
        action="store_true",
        help="run a request that already ran again, as a new execution (with this document)",
    )
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
    decommission.add_argument("--wait", action="store_true", help="follow the execution until it ends")
    aws_options(decommission)
    decommission.set_defaults(func=cmd_decommission)

    demo = sub.add_parser("demo", help="run the demo on a fresh local cloud")
    demo.add_argument("--time-scale", type=_positive_float, default=120.0)
    demo.add_argument("--out", default="out", help="folder for the client configuration")
    demo.set_defaults(func=cmd_demo)
    intake_cli.register(sub)  # cvpn request submit
    monitoring_cli.register(sub)  # cvpn findings, cvpn connections, cvpn monitoring reindex
    access_cli.register(sub)  # cvpn access grant|extend|revoke|list
    cert_cli.register(sub)  # cvpn ca create, cvpn cert list|revoke
    plan_cli.register(sub)  # cvpn plan, cvpn drift, cvpn adopt
    apply_cli.register(sub)  # cvpn apply, cvpn history
    server_cert_cli.register(sub)  # cvpn server-cert check
    return parser


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _rate(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a share of calls from 0 to 1, got {text}")
    return value


def _seconds(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"seconds >= 0, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a whole number >= 0, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "endpoint_url"):
            resolve_target(args)
        return int(args.func(args))
    except CliError as error:
        print(f"cvpn: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cvpn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`cvpn status ... | head`): stop quietly, as other command lines do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:
        message = aws_error_message(error, args)
        if message is None:
            raise
        print(f"cvpn: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
