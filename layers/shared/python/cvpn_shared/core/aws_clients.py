"""AWS SDK clients for the product, created once per process with standard retries (3 attempts).

The SDK makes at most 3 attempts per call (at most 1 + 2 s of backoff) when a call is throttled or
answered with a server error (HTTP 500, 502, 503, 504): a call still failing after them raises, and
the Step Functions Retry of the task takes over by error name (backoff up to a minute, with jitter).
Longer SDK retries would sleep inside the Lambda: 5 retries back off up to 1 + 2 + 4 + 8 + 16 = 31 s
per call, past the functions' 30 s timeout.

The endpoint comes from the standard settings (``AWS_ENDPOINT_URL`` and friends), so the same code
talks to AWS or to any AWS-compatible endpoint it is pointed at.

Clients come from one botocore session, as ``boto3.client`` makes them, without importing boto3:
boto3 adds resources and S3 transfers (s3transfer, multiprocessing) that the product never uses and
that every function would otherwise load on its cold start.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from botocore.config import Config
from botocore.session import Session, get_session

__all__ = ["client"]

_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=30)
# botocore presigns S3 URLs with Signature Version 2 unless told otherwise, and S3 refuses SigV2 for
# objects encrypted with KMS, as the client configurations are.
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4"))


@cache
def _session() -> Session:
    return get_session()


@cache
def client(service_name: str) -> Any:
    """A cached client for ``service_name`` (what ``boto3.client(service_name)`` returns)."""
    config = _S3_CONFIG if service_name == "s3" else _CONFIG
    return _session().create_client(service_name, config=config)
