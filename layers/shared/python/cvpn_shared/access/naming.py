"""The execution name of a request: derived from its source and ticket key, so retries never start twice.

Step Functions names allow ``[A-Za-z0-9_-]`` and at most 80 characters; every other character becomes
``-``. This is the rule ``cvpn.provision.execution_name`` follows for the command line (the command line
does not ship the layer; a unit test keeps the two equal).
"""

from __future__ import annotations

import re

__all__ = ["MAX_EXECUTION_NAME_LENGTH", "execution_name", "run_execution_name"]

MAX_EXECUTION_NAME_LENGTH = 80
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]")


def execution_name(request_id: str, source: str = "cli") -> str:
    """``<source>-<request id>`` with disallowed characters replaced by ``-``, cut to 80 characters."""
    return _NOT_ALLOWED.sub("-", f"{source}-{request_id}")[:MAX_EXECUTION_NAME_LENGTH]


def run_execution_name(request_id: str, source: str, run: int) -> str:
    """The execution name of a ticket's ``run`` (1 is the first start, one more per re-open).

    The first run keeps ``execution_name``; a later run ends in ``_run<n>``, cut from the name rather
    than from the suffix, so every run of a ticket has its own name.
    """
    if run <= 1:
        return execution_name(request_id, source)
    suffix = f"_run{run}"
    return execution_name(request_id, source)[: MAX_EXECUTION_NAME_LENGTH - len(suffix)] + suffix
