"""Builds the client-connect handler's settings and its lookup (blocklist and grants), once per process.

Apart from ``wiring`` (which loads botocore and pydantic through the other functions' clients and
settings) so that a login's cold start loads neither: the three settings are read here from the
environment, each checked with an error naming its variable, and the lookup calls DynamoDB through
``dal.dynamodb_json``. Without ``ACCESS_GRANTS_TABLE_NAME`` no endpoint enforces grants.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import NamedTuple

from cvpn_shared.monitoring.client_connect import FailMode
from cvpn_shared.monitoring.dal.blocklist import BlocklistLookup
from cvpn_shared.monitoring.dal.connect_lookup import ConnectLookup
from cvpn_shared.monitoring.dal.dynamodb_json import (
    BatchGetWithinBudget,
    DynamoDbJsonClient,
    LookupBudget,
    dynamodb_endpoint,
)

__all__ = ["ConnectSettings", "blocklist", "connect_lookup", "get_connect_settings"]

# BLOCKLIST_LOOKUP_BUDGET_SECONDS' bounds: room for one call, well inside the function's timeout.
MIN_BUDGET_SECONDS = 1.2
MAX_BUDGET_SECONDS = 20.0


class ConnectSettings(NamedTuple):
    """What the template passes the client-connect function."""

    blocklist_table_name: str = ""
    fail_mode: FailMode = "open"
    lookup_budget_seconds: float = 2.0
    region: str = ""
    grants_table_name: str = ""
    form_url: str = ""  # where a user refused for want of a grant asks for one

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> ConnectSettings:
        """The settings in the environment; ``ValueError`` naming the variable when one is wrong."""
        env = dict(os.environ if environ is None else environ)
        mode = env.get("CLIENT_CONNECT_FAIL_MODE", "open")
        fail_mode: FailMode
        if mode == "open":
            fail_mode = "open"
        elif mode == "closed":
            fail_mode = "closed"
        else:
            raise ValueError(f"CLIENT_CONNECT_FAIL_MODE: must be open or closed, not {mode!r}")
        text = env.get("BLOCKLIST_LOOKUP_BUDGET_SECONDS", "2")
        try:
            budget = float(text.strip())
        except ValueError:
            raise ValueError(f"BLOCKLIST_LOOKUP_BUDGET_SECONDS: not a number: {text!r}") from None
        if not (math.isfinite(budget) and MIN_BUDGET_SECONDS <= budget <= MAX_BUDGET_SECONDS):
            raise ValueError(
                "BLOCKLIST_LOOKUP_BUDGET_SECONDS: must be "
                f"{MIN_BUDGET_SECONDS:g} to {MAX_BUDGET_SECONDS:g} seconds"
            )
        return cls(
            blocklist_table_name=env.get("BLOCKLIST_TABLE_NAME", ""),
            fail_mode=fail_mode,
            lookup_budget_seconds=budget,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            grants_table_name=env.get("ACCESS_GRANTS_TABLE_NAME", ""),
            form_url=_form_url(env.get("REQUEST_FORM_URL", "")),
        )


def _form_url(text: str) -> str:
    """The request form's URL; ``ValueError`` naming the variable when it is not an http(s) URL."""
    url = text.strip()
    if url and not (url.startswith(("https://", "http://")) and len(url) <= 200 and url.isprintable()):
        raise ValueError("REQUEST_FORM_URL: must be an http(s) URL of at most 200 characters")
    return url


@lru_cache(maxsize=1)
def get_connect_settings() -> ConnectSettings:
    """The settings, read on first use."""
    return ConnectSettings.from_environment()


@lru_cache(maxsize=1)
def connect_lookup() -> ConnectLookup:
    """The blocklist and the grants, read together in one BatchGetItem to the same time budget."""
    settings = get_connect_settings()
    found = blocklist()
    return ConnectLookup(found.reader, found, settings.grants_table_name)


@lru_cache(maxsize=1)
def blocklist() -> BlocklistLookup:
    """The blocklist, read to a time budget: one attempt per call with the budget's socket timeouts,
    so that the lookup, not a client's own retries, decides how long to keep trying."""
    settings = get_connect_settings()
    budget = LookupBudget(total_seconds=settings.lookup_budget_seconds)
    client = DynamoDbJsonClient(
        region=settings.region,
        endpoint=dynamodb_endpoint(settings.region),
        connect_timeout=budget.connect_timeout,
        read_timeout=budget.read_timeout,
    )
    return BlocklistLookup(BatchGetWithinBudget(client, budget=budget), settings.blocklist_table_name)
