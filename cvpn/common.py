"""What every `cvpn` command shares: its user-facing error, and AWS clients for a deployed stack
through the usual credentials, the local cloud (`--local`) or any AWS-compatible endpoint
(`--endpoint-url`). The command modules import this, never each other."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["DEFAULT_LOCAL_URL", "CliError", "aws_client"]

DEFAULT_LOCAL_URL = "http://127.0.0.1:4566"


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def aws_client(args: argparse.Namespace, service: str) -> Any:
    """A boto3 client for ``service`` as the command's --local / --endpoint-url / --region ask."""
    import boto3

    endpoint_url = args.endpoint_url or (DEFAULT_LOCAL_URL if args.local else None)
    kwargs: dict[str, Any] = {"region_name": args.region} if args.region else {}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
        if args.local:
            kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    return boto3.client(service, **kwargs)  # type: ignore[call-overload]
