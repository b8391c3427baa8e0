"""What every `cvpn` command shares: its user-facing error, AWS clients for a deployed stack through
the usual credentials, the local cloud (`--local`) or any AWS-compatible endpoint (`--endpoint-url`),
and the check that the local cloud is installed for the commands that run it. The command modules
import this, never each other."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_LOCAL_URL",
    "LOCAL_CLOUD_INSTALL",
    "CliError",
    "aws_client",
    "project_dir",
    "require_local_cloud",
]

DEFAULT_LOCAL_URL = "http://127.0.0.1:4566"
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


def aws_client(args: argparse.Namespace, service: str, *, config: Any = None) -> Any:
    """A boto3 client for ``service`` as the command's --local / --endpoint-url / --region ask
    (``config``: a botocore ``Config`` for this client)."""
    import boto3

    endpoint_url = args.endpoint_url or (DEFAULT_LOCAL_URL if args.local else None)
    kwargs: dict[str, Any] = {"region_name": args.region} if args.region else {}
    if config is not None:
        kwargs["config"] = config
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
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
