"""What every `cvpn` command shares: its user-facing error, AWS clients for a deployed stack through
the usual credentials, the local cloud (`--local`) or any AWS-compatible endpoint (`--endpoint-url`),
and the check that the local cloud is installed for the commands that run it. The command modules
import this, never each other."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_LOCAL_REGION",
    "DEFAULT_LOCAL_URL",
    "DEFAULT_STACK_NAME",
    "LOCAL_CLOUD_INSTALL",
    "LOCAL_STATE_ENVIRONMENT",
    "CliError",
    "LocalState",
    "add_aws_options",
    "aws_client",
    "aws_error_message",
    "local_state_path",
    "project_dir",
    "read_local_state",
    "remove_local_state",
    "require_local_cloud",
    "resolve_target",
    "write_local_state",
]

DEFAULT_LOCAL_URL = "http://127.0.0.1:4566"
DEFAULT_LOCAL_REGION = "us-east-1"  # the local cloud's region
DEFAULT_STACK_NAME = "cvpn-autopilot"
LOCAL_STATE_ENVIRONMENT = "CVPN_LOCAL_STATE"
LOCAL_CLOUD_INSTALL = "pip install 'client-vpn-autopilot[local]'"

# What the `local` extra brings (pyproject.toml), by the module each distribution provides: the
# emulator the local cloud imports, and what the product's handlers import in its Lambda workers.
LOCAL_CLOUD_MODULES = {
    "moto": "moto",
    "samtranslator": "aws-sam-translator",
    "awslambdaric": "awslambdaric",
    "jsonata": "jsonata-python",
    "cfnlint": "cfn-lint",
    "joserfc": "joserfc",
    "werkzeug": "Werkzeug",
    "cryptography": "cryptography",
    "yaml": "PyYAML",
    "aws_lambda_powertools": "aws-lambda-powertools",
    "pydantic": "pydantic",
    "orjson": "orjson",
}


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


# ------------------------------------------------------------------------------ the running local cloud
@dataclass(frozen=True)
class LocalState:
    """What a running `cvpn local up` tells the other commands: where it serves and what it deployed.
    ``webhook_secret`` signs the example webhook sources it configured (loopback only)."""

    endpoint_url: str
    region: str
    stack_name: str | None = None
    api_url: str | None = None
    webhook_secret: str | None = None
    pid: int | None = None


def local_state_path() -> Path:
    """Where `cvpn local up` writes its state: ``$CVPN_LOCAL_STATE``, else the user's state folder
    (``$XDG_STATE_HOME/cvpn``, ``~/.local/state/cvpn``), else the temporary folder."""
    explicit = os.environ.get(LOCAL_STATE_ENVIRONMENT)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "cvpn" / "local.json"
    home = os.environ.get("HOME")
    if home:
        return Path(home) / ".local" / "state" / "cvpn" / "local.json"
    return Path(tempfile.gettempdir()) / f"cvpn-local-{os.getuid()}.json"


def write_local_state(state: LocalState) -> Path:
    """Write ``state`` readable by this user only (it holds the local webhook secret)."""
    path = local_state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(asdict(state), handle, indent=2)
    temporary.replace(path)
    return path


def read_local_state() -> LocalState | None:
    """The state of the local cloud that is running, None when none wrote one (or its process ended)."""
    path = local_state_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    endpoint_url, region, pid = data.get("endpoint_url"), data.get("region"), data.get("pid")
    texts = {key: data.get(key) for key in ("stack_name", "api_url", "webhook_secret")}
    if not isinstance(endpoint_url, str) or not isinstance(region, str):
        return None
    if isinstance(pid, bool) or not isinstance(pid, int | None):
        return None
    if not all(isinstance(value, str | None) for value in texts.values()):
        return None
    state = LocalState(endpoint_url=endpoint_url, region=region, pid=pid, **texts)
    if state.pid is not None and not _process_alive(state.pid):
        return None  # a local cloud killed without a clean shutdown left it behind
    return state


def remove_local_state(pid: int) -> None:
    """Remove the state file if the local cloud of process ``pid`` wrote it (not a newer one's)."""
    path = local_state_path()
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resolve_target(args: argparse.Namespace) -> None:
    """Fill in where an AWS command goes, once, before any client is made.

    ``--local`` is complete: the endpoint and stack of the local cloud `cvpn local up` started (from its
    state file), else ``DEFAULT_LOCAL_URL``, with its region and fake credentials; an explicit
    ``--endpoint-url``, ``--region`` or ``--stack-name`` wins. An endpoint without a region anywhere
    (flag, environment, AWS configuration) gets the local cloud's, so no command stops on a missing
    region when it talks to an emulator.
    """
    state = read_local_state() if getattr(args, "local", False) else None
    if getattr(args, "local", False):
        if not args.endpoint_url:
            args.endpoint_url = state.endpoint_url if state else DEFAULT_LOCAL_URL
        if not args.region:
            args.region = state.region if state and state.endpoint_url == args.endpoint_url else None
        if not args.region:
            args.region = DEFAULT_LOCAL_REGION
    if hasattr(args, "stack_name") and not args.stack_name:
        local_stack = state.stack_name if state and state.endpoint_url == args.endpoint_url else None
        args.stack_name = local_stack or DEFAULT_STACK_NAME
    if args.endpoint_url and not args.region and not _configured_region():
        args.region = DEFAULT_LOCAL_REGION


def _configured_region() -> str | None:
    import botocore.exceptions
    import botocore.session

    try:
        return botocore.session.Session().get_config_variable("region")  # type: ignore[no-any-return]
    except botocore.exceptions.BotoCoreError:
        return None  # a broken AWS configuration: the client reports it


def add_aws_options(command: argparse.ArgumentParser) -> None:
    """The options of every command that talks to AWS: which stack, and where."""
    command.add_argument(
        "--stack-name",
        help=f"the deployed stack (default: the local cloud's with --local, else {DEFAULT_STACK_NAME})",
    )
    command.add_argument(
        "--local",
        action="store_true",
        help="use the local cloud `cvpn local up` runs (its endpoint, region and stack; else "
        f"{DEFAULT_LOCAL_URL})",
    )
    command.add_argument("--endpoint-url", help="any AWS-compatible endpoint")
    command.add_argument("--region", help="AWS region (default: your AWS configuration)")


def aws_error_message(error: BaseException, args: argparse.Namespace) -> str | None:
    """One line for an error an AWS call ended with: the cause and what to do. None for anything
    else (a bug, which keeps its traceback)."""
    try:
        from botocore import exceptions
    except ImportError:
        return None
    where = getattr(args, "endpoint_url", None)
    if isinstance(error, exceptions.NoRegionError):
        return "no AWS region: give --region, set AWS_DEFAULT_REGION, or use --local for the local cloud"
    if isinstance(error, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return (
            "no AWS credentials: configure them (aws configure, AWS_PROFILE, AWS_ACCESS_KEY_ID), "
            "or use --local for the local cloud"
        )
    if isinstance(error, exceptions.ProfileNotFound):
        return f"{error}: fix AWS_PROFILE or --profile in your AWS configuration"
    if isinstance(
        error,
        exceptions.EndpointConnectionError | exceptions.ConnectTimeoutError | exceptions.ReadTimeoutError,
    ):
        url = getattr(error, "kwargs", {}).get("endpoint_url") or where or "AWS"
        if where or getattr(args, "local", False):
            hint = "is the local cloud running? start it with `cvpn local up` (or fix --endpoint-url)"
        else:
            hint = "check your network connection and --region"
        return f"cannot reach {url}: {hint}"
    if isinstance(error, exceptions.ClientError):
        detail = error.response.get("Error", {})
        code = detail.get("Code", "Error")
        message = f"{error.operation_name}: {code}: {detail.get('Message', '')}".rstrip(": ")
        if code in (
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "ExpiredToken",
            "ExpiredTokenException",
        ):
            message += " (refresh your AWS credentials, or use --local for the local cloud)"
        return message
    if isinstance(error, exceptions.BotoCoreError):
        return str(error)
    return None


def aws_client(args: argparse.Namespace, service: str, *, config: Any = None) -> Any:
    """A boto3 client for ``service`` as the command's --local / --endpoint-url / --region ask
    (``resolve_target`` has run; ``config``: a botocore ``Config`` for this client)."""
    import boto3

    kwargs: dict[str, Any] = {"region_name": args.region} if args.region else {}
    if config is not None:
        kwargs["config"] = config
    if args.endpoint_url:
        kwargs["endpoint_url"] = args.endpoint_url
        if args.local:
            kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    return boto3.client(service, **kwargs)  # type: ignore[call-overload]


def require_local_cloud(command: str) -> None:
    """Refuse ``command`` with the install line when the ``local`` extra is missing. The commands
    that only talk to a running local cloud over HTTP (``--local``, ``cvpn local clock``, ...) need
    no such check."""
    from importlib.util import find_spec

    missing = [name for module, name in LOCAL_CLOUD_MODULES.items() if find_spec(module) is None]
    if missing:
        partly = f" (missing: {', '.join(missing)})" if len(missing) < len(LOCAL_CLOUD_MODULES) else ""
        raise CliError(
            f"{command} runs the local cloud, which is not installed{partly}; install it with: "
            f"{LOCAL_CLOUD_INSTALL} (from a checkout: pip install '.[local]')"
        )


def project_dir() -> Path:
    """The project's folder (template.yaml, functions/, events/): the working directory when it holds
    a template.yaml, where SAM CLI looks too, else the checkout this command line runs from (an
    installed copy of the command line carries no template)."""
    working = Path.cwd()
    if (working / "template.yaml").is_file():
        return working
    return Path(__file__).resolve().parent.parent
