"""boto3 clients for the product, created once per process with adaptive retries.

The endpoint comes from the standard settings (``AWS_ENDPOINT_URL`` and friends), so the same code
talks to AWS or to any AWS-compatible endpoint it is pointed at.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

__all__ = ["client"]

_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@cache
def client(service_name: str) -> Any:
    """A cached boto3 client for ``service_name``."""
    return boto3.client(service_name, config=_CONFIG)  # type: ignore[call-overload]
